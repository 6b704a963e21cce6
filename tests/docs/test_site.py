"""The documentation site and the README that leads to it.

The site is built exactly as ``make docs`` builds it (``mkdocs build --strict``), into a temporary folder: a broken
link or anchor, a nav entry without a page, a page left out of the nav, or an API page naming a module or member
that no longer exists fails the build. The other tests keep the README short and hold the commands that the
README and the pages name to the Makefile, the console scripts and the files that exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 160
# The two commands on a fresh machine, as the README, the site's home page and the demo page give them.
QUICK_START = (
    "make demo   # sets up .venv (pinned CPU torch first, then this project) and trains the demo",
    "make test   # same set-up, then the test suite (pytest; slow tests excluded)",
)


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def documents() -> dict[Path, str]:
    """The README and every page of the site, by path."""
    return {path: path.read_text(encoding="utf-8") for path in [README, *pages()]}


def nav_files(entries) -> list[str]:
    """The page files named in mkdocs.yml's nav, at any depth."""
    found = []
    for entry in entries:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                found.extend(nav_files(value) if isinstance(value, list) else [value])
    return found


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, flags=re.MULTILINE))


def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (site / "index.html").is_file()
    # The pictures the README shows are published by the site under the same docs/ paths.
    assert (site / "images" / "demo_val_grid.png").is_file()
    # The API pages were generated from the docstrings, not left empty.
    for module, member in [
        ("models", "laformer.models.LAformer"),
        ("inference", "laformer.inference.restore_image"),
        ("data", "laformer.data.BenchmarkDataModule"),
        ("metrics", "laformer.metrics.psnr"),
        ("training", "laformer.training.RestorationModule"),
    ]:
        html = (site / "api" / f"{module}.html").read_text(encoding="utf-8")
        assert f'id="{member}"' in html, f"api/{module}.md rendered no entry for {member}"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = nav_files(config["nav"])
    on_disk = {path.relative_to(DOCS).as_posix() for path in pages()}
    assert sorted(set(listed) - on_disk) == [], "nav entries without a page"
    assert sorted(on_disk - set(listed)) == [], "pages missing from mkdocs.yml's nav"
    assert len(listed) == len(set(listed)), "a page is listed twice in the nav"


def test_readme_is_short_and_leads_into_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    for line in QUICK_START:
        assert line in text.splitlines()
    assert "![" in text and "(docs/images/demo_val_grid.png)" in text
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == [], f"README links to missing files: {missing}"
    # Every page of the guide is reachable from the README (the API pages through docs/api/index.md).
    linked = {link.removeprefix("docs/") for link in local}
    unlinked = [p for p in pages() if p.parent == DOCS and p.relative_to(DOCS).as_posix() not in linked]
    assert unlinked == [], f"README does not link {unlinked}"


@pytest.mark.parametrize("page", ["index.md", "demo.md"])
def test_site_gives_the_same_two_commands(page: str) -> None:
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    for line in QUICK_START:
        assert line in lines


def test_make_targets_named_in_the_docs_exist() -> None:
    targets = makefile_targets()
    for path, text in documents().items():
        # `make X` in running text, or a line of a code block that starts with it
        named = set(re.findall(r"(?:`|^)make ([a-z][\w-]*)", text, flags=re.MULTILINE))
        assert named <= targets, f"{path.relative_to(ROOT)} names make targets the Makefile lacks: {named - targets}"


def console_scripts() -> set[str]:
    """The names under pyproject.toml's [project.scripts] (tomllib needs Python 3.11; the project allows 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([\w-]+)\s*=", section, flags=re.MULTILINE))


def test_console_scripts_named_in_the_docs_exist() -> None:
    scripts = console_scripts()
    assert "laformer-train" in scripts
    for path, text in documents().items():
        # laformer-demo-tiny and the like are folder names, not commands.
        named = set(re.findall(r"\blaformer-[a-z]+(?![\w-])", text))
        assert named <= scripts, f"{path.relative_to(ROOT)} names commands that are not installed: {named - scripts}"


def expand_braces(text: str) -> list[str]:
    """``results.{csv,md}`` -> ``results.csv``, ``results.md`` (the shell's brace expansion, as the docs use it)."""
    match = re.search(r"\{([^{}]*)\}", text)
    if not match:
        return [text]
    head, tail = text[: match.start()], text[match.end() :]
    return [name for alt in match.group(1).split(",") for name in expand_braces(head + alt + tail)]


def test_repository_paths_named_in_the_docs_exist() -> None:
    # Paths inside the repository that the README and the pages name (scripts to run, tests, configs, results);
    # those with a placeholder (<run>, *) are patterns, not files.
    pattern = re.compile(r"(?<![\w./-])((?:experiments|tests|conf|notebooks|src)/[\w./{},<>*-]*[\w}/])")
    for path, text in documents().items():
        for token in pattern.findall(text):
            if any(mark in token for mark in "<>*"):
                continue
            missing = [name for name in expand_braces(token) if not (ROOT / name).exists()]
            assert missing == [], f"{path.relative_to(ROOT)} names {missing}, which do not exist"
