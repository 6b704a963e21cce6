"""experiments/data_throughput: its measurements on a tiny layout (in-process), and the whole script (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from laformer.cli.data import main as data_main
from tests.experiments.scripts import ROOT, load_script

pytest.importorskip("litdata", reason="packed stores need the stream extra (pyproject.toml)")
study = load_script("experiments/data_throughput/data_throughput.py", "data_throughput_study")


def test_loader_rates_and_format_reads_on_a_tiny_layout(tmp_path: Path) -> None:
    setup = study.Setup.quick()
    root, store = study.write_layout(tmp_path / "data", setup), tmp_path / "store"
    assert len(list((root / "GOPRO_Large" / "train").glob("*/blur/*.png"))) == setup.pairs
    pack = ["pack", "data=gopro", f"data.root={root}", "data.test_sets=[gopro]", "--out", str(store)]
    assert data_main(pack) == 0
    for path in ("files", "packed"):
        spec = {"overrides": study.overrides(root, store, setup, path, 0), "workers": 0, "batch": 2, "batches": 2}
        measured = study.loader_rate(spec)
        assert measured["pairs_per_s"] > 0 and measured["peak_mem_mb"] > 0
    rows = study.format_reads({"root": str(root), "store": str(store), "patch": setup.patch, "reads": 2})
    assert [r["format"] for r in rows][:2] == ["PNG files (decode)", "LitData chunk item"]
    assert all(r["ms_per_pair"] > 0 for r in rows)


@pytest.mark.slow
def test_the_quick_mode_writes_every_table(tmp_path: Path) -> None:
    script = ROOT / "experiments" / "data_throughput" / "data_throughput.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = (tmp_path / "results.md").read_text()
    assert "quick check, not a result" in text and "| packed | 1 |" in text and "workers per GPU" in text
    for name in ("results.csv", "results_formats.csv", "results_workers_per_gpu.csv"):
        assert (tmp_path / name).is_file()
