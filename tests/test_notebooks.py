"""The walkthrough notebooks: in step with their generator, and (slow) executed top to bottom on the CPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make_notebooks = _generator()


@pytest.mark.parametrize("name", sorted(make_notebooks.NOTEBOOKS))
def test_committed_notebook_matches_its_generator(name: str) -> None:
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(committed)
    built = make_notebooks.build(name)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in built.cells], (
        f"{name} differs from notebooks/make_notebooks.py: run `python notebooks/make_notebooks.py --execute {name}`"
    )


def _outputs(notebook: nbformat.NotebookNode) -> tuple[str, int]:
    text, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text.append(output["text"])
            images += any(kind in output.get("data", {}) for kind in ("image/png", "image/jpeg"))
    return "".join(text), images


@pytest.mark.slow  # trains the demo model for 60 steps inside the notebook: ~2-3 minutes on the shared 2-core CPU
def test_restore_a_photo_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAFORMER_CKPT", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's training run folder
    notebook = make_notebooks.execute(nbformat.read(NOTEBOOKS / "01_restore_a_photo.ipynb", as_version=4))
    text, images = _outputs(notebook)
    assert "checkpoint: " + str(tmp_path) in text
    noisy = float(text.split("noisy:    PSNR ")[1].split(" dB")[0])
    restored = float(text.split("restored: PSNR ")[1].split(" dB")[0])
    assert 19 < noisy < 22 and restored > noisy  # sigma 25 on chelsea; even a short run removes some noise
    assert images == 1
    assert list(tmp_path.glob("laformer_notebook_*/checkpoints/last.ckpt"))


@pytest.mark.slow  # SVDs of 1024 x 1024 maps for every RELA channel: ~1-2 minutes on the shared 2-core CPU
def test_attention_rank_runs_top_to_bottom(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAFORMER_CKPT_LINEAR", raising=False)
    monkeypatch.delenv("LAFORMER_CKPT_RELA", raising=False)
    notebook = make_notebooks.execute(nbformat.read(NOTEBOOKS / "02_attention_rank.ipynb", as_version=4))
    text, images = _outputs(notebook)
    assert images == 3
    lines = {
        tuple(line.split()[:3]): line.split()[3:]
        for line in text.splitlines()
        if line.split()[:1] in (["linear"], ["rela"])
    }
    assert lines[("linear", "1024", "8")] == ["3", "8", "8"]  # heads, rank min, rank max: bounded by d
    assert int(lines[("rela", "1024", "8")][1]) > 1000  # close to full rank N
