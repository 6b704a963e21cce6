"""The package's import structure: which layer may import which, read from the source and from a real import.

The layers run one way: the networks (``laformer.models``) and restoring photos (``laformer.inference``) below,
training (``laformer.training``, Lightning) above. A photo restored by ``laformer-restore`` then never pays for
Lightning's training code, a network can be built and loaded without Lightning installed, and no module's import
order matters (an import circle works or breaks on which module happens to be imported first).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "laformer"


def module_files() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its ``__init__.py``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(name: str, path: Path) -> set[str]:
    """What ``name`` imports anywhere in its file, function bodies included (a deferred import still runs when
    the function is called), but not under ``if TYPE_CHECKING:`` (never run). ``from a import b`` names ``a.b``
    when that is a module, else ``a``; relative imports are resolved."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package[: len(package) - child.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                names.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from a import b`` counts ``a.b`` only where ``b`` is a
    module, else ``a``); imports of other distributions are kept under their own names for the layer checks."""
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(name, path):
            if imported.startswith("laformer"):
                parent = imported.rpartition(".")[0]
                if imported in modules:
                    targets.add(imported)
                elif parent in modules:  # ``from a import b`` where b is a name inside a
                    targets.add(parent)
            else:
                targets.add(imported)
        targets.discard(name)
        graph[name] = targets
    return graph


def internal(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: {t for t in targets if t in graph} for name, targets in graph.items()}


def test_the_graph_sees_the_imports_it_judges() -> None:
    graph = import_graph()
    assert "laformer.inference.checkpoint" in graph["laformer.inference.restore"] or any(
        t.startswith("laformer.models") for t in graph["laformer.inference.restore"]
    )
    assert "laformer.runs" in graph["laformer.sweeps"]  # the one arrow between the two (issue 24)
    assert any(t.startswith("lightning") for t in graph["laformer.training.progress"])


def test_no_import_circle_inside_the_package() -> None:
    try:
        TopologicalSorter(internal(import_graph())).prepare()
    except CycleError as circle:
        pytest.fail(f"import circle: {' -> '.join(circle.args[1])}")


@pytest.mark.parametrize("layer", ["laformer.inference", "laformer.models"])
def test_networks_and_restoring_never_import_training(layer: str) -> None:
    wrong = {
        f"{name} -> {target}"
        for name, targets in internal(import_graph()).items()
        if name == layer or name.startswith(layer + ".")
        for target in targets
        if target == "laformer.training" or target.startswith("laformer.training.")
    }
    assert not wrong, f"{layer} imports training code: {sorted(wrong)}"


def test_models_never_import_lightning() -> None:
    wrong = {
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        if name.startswith("laformer.models")
        for target in targets
        if target.split(".")[0] in ("lightning", "pytorch_lightning")
    }
    assert not wrong, f"laformer.models imports Lightning: {sorted(wrong)}"


def test_laformer_restore_imports_no_training_code() -> None:
    """What a real import of ``laformer-restore``'s entry module loads, in a fresh interpreter."""
    code = "import json, sys; import laformer.cli.restore; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "laformer.cli.restore" in loaded
    training = [m for m in loaded if m == "laformer.training" or m.startswith("laformer.training.")]
    callbacks = [m for m in loaded if m.startswith("lightning.pytorch.callbacks")]
    assert not training, training
    assert not callbacks, callbacks
