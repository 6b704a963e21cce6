"""``experiments/efficiency/modes.py --quick``: LAformer and NAFNet of the tiny point in eager and ONNX Runtime
modes, each with its latency, GMAC/s and the pair's ratio (a smoke run: the figures come from a quiet machine)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_reports_both_networks_per_mode_and_the_per_pixel_time(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    spec = importlib.util.spec_from_file_location("efficiency_modes", REPO / "experiments/efficiency/modes.py")
    modes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(modes)
    assert modes.main(["--quick", "--per-pixel", "--cpu-heap", "on", "off", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "results_modes.csv").open()))
    # eager under both heap policies, the pair always under the same one; ONNX Runtime (its own arena) once
    assert sorted((r["mode"], r["cpu_heap"], r["network"]) for r in rows) == sorted(
        [("eager", heap, net) for heap in ("on", "off") for net in ("laformer_rela", "nafnet")]
        + [("onnxruntime", "on", net) for net in ("laformer_rela", "nafnet")]
    )
    assert all(float(r["gmac_per_s"]) > 0 for r in rows)
    assert all(float(r["laformer_over_nafnet"]) > 0 for r in rows if r["network"] == "laformer_rela")
    pixels = list(csv.DictReader((tmp_path / "results_per_pixel.csv").open()))
    assert {(r["cpu_heap"], r["size"]) for r in pixels} == {(h, s) for h in ("on", "off") for s in ("64", "96")}
    assert "LAformer / NAFNet" in (tmp_path / "results_modes.md").read_text()


@pytest.mark.slow
def test_restore_4k_quick_run_measures_one_pass_and_tiles(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("restore_4k", REPO / "experiments/efficiency/restore_4k.py")
    restore_4k = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(restore_4k)
    csv_path = tmp_path / "r4k.csv"
    restore_4k.main(["--quick", "--csv", str(csv_path), "--work-dir", str(tmp_path / "work")])
    rows = {r["mode"]: r for r in csv.DictReader(csv_path.open())}
    assert rows["one-pass"]["status"] == rows["tiled"]["status"] == "ok"
    assert float(rows["one-pass"]["peak_mem_mb"]) > 0
