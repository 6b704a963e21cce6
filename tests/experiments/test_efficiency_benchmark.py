"""The efficiency benchmark script: real worker processes on tiny sizes, planning of skipped sizes, the plot."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from pathlib import Path

import pytest

from laformer.benchmarks import parse_size, size_label
from laformer.inference.restore import is_out_of_memory

ROOT = Path(__file__).resolve().parents[2] / "experiments" / "efficiency"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"efficiency_{name}", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


benchmark = _load("benchmark")


def _row(attention: str, side: int, **measured) -> object:
    row = benchmark.Row("tiny", attention, str(side), side, side, side * side, "fp32", "cpu")
    row.macs_g = (side * side) ** (2 if attention == "softmax" else 1) / 1e6
    for key, value in measured.items():
        setattr(row, key, value)
    return row


def _args(**overrides) -> argparse.Namespace:
    return argparse.Namespace(**{"softmax_max_pixels": 256 * 256, "max_mem_gb": 24.0, **overrides})


def test_sizes_and_lists_parse_with_spaces_or_commas() -> None:
    assert parse_size("3840x2160") == (2160, 3840)  # (height, width) everywhere (laformer.benchmarks.sizes)
    assert parse_size("512") == (512, 512)
    assert benchmark._split(["tiny,base", "small"]) == ["tiny", "base", "small"]
    assert size_label(2160, 3840) == "3840x2160"


def test_memory_beyond_the_limit_is_predicted_not_run() -> None:
    reference = _row("rela", 1024, status="ok", time_median_s=10.0, baseline_mem_mb=500.0, delta_mem_mb=3000.0)
    big = _row("rela", 4096)
    assert benchmark.plan(big, reference, _args(max_mem_gb=24.0)) == "oom-predicted"
    assert big.est_peak_mem_mb == pytest.approx(500 + 3000 * 16)
    assert big.est_time_s == pytest.approx(160.0)
    assert "24" in big.note and "1024" in big.note
    assert benchmark.plan(_row("rela", 2048), reference, _args(max_mem_gb=24.0)) is None  # ~12 GiB fits
    assert benchmark.plan(_row("rela", 4096), reference, _args(max_mem_gb=0)) is None  # 0: never predict


def test_softmax_above_the_limit_is_skipped_with_a_quadratic_estimate() -> None:
    reference = _row("softmax", 128, status="ok", time_median_s=2.0, baseline_mem_mb=300.0, delta_mem_mb=100.0)
    row = _row("softmax", 512)
    assert benchmark.plan(row, reference, _args(softmax_max_pixels=256 * 256)) == "skipped (quadratic)"
    assert row.est_time_s == pytest.approx(2.0 * 16**2)  # 16x the pixels, 256x the time
    assert benchmark.plan(_row("softmax", 256), reference, _args(softmax_max_pixels=256 * 256)) is None


def test_oom_errors_are_recognised() -> None:
    import torch

    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    cpu_oom = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")
    assert is_out_of_memory(cpu_oom)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


@pytest.mark.slow  # three worker processes, each importing torch: ~25 s on 2 cores
def test_end_to_end_tiny_run_writes_csv_table_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "results.csv"
    benchmark.main(
        ["--presets", "tiny", "--attention", "linear", "softmax", "--sizes", "32", "48", "--repeats", "1",
         "--warmup", "0", "--threads", "1", "--softmax-max-pixels", "1024", "--device", "cpu", "--csv", str(out),
         "--plot"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    rows = {(r["attention"], r["size"]): r for r in csv.DictReader(out.open())}
    assert rows[("linear", "32")]["status"] == "ok" and rows[("linear", "48")]["status"] == "ok"
    assert float(rows[("linear", "48")]["time_median_s"]) > 0 and float(rows[("linear", "48")]["peak_mem_mb"]) > 0
    assert rows[("softmax", "32")]["status"] == "ok"
    skipped = rows[("softmax", "48")]
    assert skipped["status"] == "skipped (quadratic)" and float(skipped["est_time_s"]) > 0
    assert "| tiny | linear | 32->48 | 2.25 |" in printed  # the scaling ratio row
    assert out.with_suffix(".md").read_text().count("| tiny |") == 5
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_plot_and_report_from_a_committed_results_csv(tmp_path: Path) -> None:
    """The plot and the Markdown report of the measurements kept in the folder."""
    plot = _load("plot")
    source = ROOT / "results_cpu.csv"
    png = plot.plot_results(source, tmp_path / "scaling.png")
    assert png.stat().st_size > 10_000
    rows = benchmark.read_csv(source)
    text = benchmark.write_report(rows, tmp_path / "report.md", "# header")
    assert (tmp_path / "report.md").read_text() == text
    assert text.count("| tiny | rela |") >= 2 and "256->512" in text


@pytest.mark.slow  # three fresh processes, each compiling the tiny LAformer cold: minutes on 2 cores
def test_compile_shapes_buckets_compile_once_for_two_sizes_of_one_bucket(tmp_path: Path) -> None:
    """64x64 then 56x60: a static graph compiles again for the second size; the bucket of 64 (both sizes pad to
    64x64) does not. Dynamic and static give eager's output; the bucket pads, so it moves pixels. (The dynamic
    graph is not asserted: it compiled again for 360x480 after 375x500 on 2026-12-07, the cause not looked into.)"""
    import subprocess

    script = ROOT / "compile_shapes.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=1800)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "results_compile_shapes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_mode = {mode: [r for r in rows if r["shapes"] == mode] for mode in ("dynamic", "static", "buckets")}
    assert all(len(found) == 2 and all(r["latency_s"] for r in found) for found in by_mode.values()), rows
    compilations = {mode: [int(r["compilations"]) for r in found] for mode, found in by_mode.items()}
    assert compilations["static"][1] > compilations["static"][0] >= 1
    assert compilations["buckets"][1] == compilations["buckets"][0] >= 1
    assert max(float(r["max_abs_diff"]) for r in by_mode["dynamic"] + by_mode["static"]) < 1e-4
    assert float(by_mode["buckets"][1]["max_abs_diff"]) > 1e-4  # 56x60 padded to 64x64: global attention sees it
    assert "| graph | compilations |" in (tmp_path / "results_compile_shapes.md").read_text()
