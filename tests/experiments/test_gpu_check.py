"""The prepared GPU check (experiments/gpu/check.py): its dry run on the CPU writes a row for every part, and a
part that fails or overruns is recorded while the others still run."""

from __future__ import annotations

import csv
import math
import subprocess
import time
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from tests.experiments.scripts import ROOT, load_script

check = load_script("experiments/gpu/check.py", "gpu_check")


@pytest.fixture(autouse=True)
def _leave_no_hydra_state():
    """The check composes configs as ``hydra.main`` would; later tests must not see them."""
    yield
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


def read_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="") as handle:
        return {(row["part"], row["case"]): row for row in csv.DictReader(handle)}


@pytest.mark.slow  # every part of the GPU check on the CPU: 48 s on the AVX2 EPYC (2026-12-07)
def test_dry_run_writes_every_parts_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert check.main(["--dry-run", "--out", str(tmp_path)]) == 0
    rows = read_rows(tmp_path / "results_dry-run-cpu.csv")
    assert {part for part, _ in rows} == set(check.PARTS)
    assert not [key for key, row in rows.items() if row["status"] in ("error", "timeout")], rows

    for label in ("demo", "small@32"):
        for precision in ("32-true", "bf16-mixed"):
            row = rows["train", f"{label}/{precision}"]
            assert row["status"] == "ok" and row["steps"] == "2"
            assert math.isfinite(float(row["loss"])) and float(row["images_per_s"]) > 0
        assert rows["train", f"{label}/16-mixed"]["status"] == "skipped"  # fp16 is for GPUs

    assert rows["restore_4k", "one-pass/fp32"]["status"] == "ok"
    assert 30 < float(rows["restore_4k", "one-pass/bf16"]["psnr_db"]) < 100  # close to fp32, not identical
    assert rows["restore_4k", "one-pass/fp16"]["status"] == "skipped"

    assert float(rows["peer_latency", "LAformer-base/fp32"]["ratio"]) == 1.0
    for peer in ("Restormer", "NAFNet-32"):
        found = [row for (part, case), row in rows.items() if part == "peer_latency" and case.startswith(peer)]
        assert found, f"no row for {peer}"
        assert all((row["status"] == "ok" and float(row["ratio"]) > 0) or row["note"] for row in found)

    for variant in check.DRY_PLAN.scaling_attentions:
        small, large = (rows["attention_scaling", f"{variant}/{side}"] for side in check.DRY_PLAN.scaling_sizes)
        assert small["status"] == large["status"] == "ok"
        assert float(large["ratio"]) > 0 and not small["ratio"]

    # The gradient layout behind DDP's "Grad strides do not match" warning, on the real small network.
    assert rows["ddp", "grad-layout"]["status"] == "ok"
    assert rows["ddp", "2-process"]["status"] == "skipped"
    assert float(rows["compile", "eager"]["images_per_s"]) > 0
    assert rows["compile", "compiled"]["note"].startswith("backend=eager")

    markdown = (tmp_path / "results_dry-run-cpu.md").read_text()
    assert "dry run on the CPU" in markdown
    for part in check.PARTS:
        assert f"## {part}" in markdown
    for _, case in rows:
        assert f"| {case} |" in markdown


def _results(tmp_path: Path):
    return check.Results(tmp_path, "unit", {"mode": "test"})


def _context(results, budget: float):
    return check.Context(check.DRY_PLAN, torch.device("cpu"), results.out_dir, results, time.monotonic() + budget)


def test_a_failing_part_is_recorded_and_the_rest_still_runs(tmp_path: Path) -> None:
    results = _results(tmp_path)

    def broken(ctx):
        yield check.Row("train", "first", note="measured")
        raise RuntimeError("CUDA error: an illegal memory access")

    def case_fails(ctx):
        yield ctx.attempt(check.Row("restore_4k", "one"), lambda row: 1 / 0)
        yield check.Row("restore_4k", "two")

    check.run_part("train", broken, _context(results, 30), 30)
    check.run_part("restore_4k", case_fails, _context(results, 30), 30)
    rows = read_rows(results.csv_path)
    assert rows["train", "first"]["status"] == "ok"
    assert rows["train", "(part)"]["status"] == "error"
    assert "illegal memory access" in rows["train", "(part)"]["note"]
    assert rows["restore_4k", "one"]["status"] == "error" and "ZeroDivisionError" in rows["restore_4k", "one"]["note"]
    assert rows["restore_4k", "two"]["status"] == "ok"  # the part went on after the failed case


def test_a_part_over_its_budget_is_stopped_and_says_which_case(tmp_path: Path) -> None:
    results = _results(tmp_path)

    def slow(ctx):
        yield ctx.attempt(check.Row("compile", "quick"), lambda row: None)
        yield ctx.attempt(check.Row("compile", "hangs"), lambda row: time.sleep(60))
        yield check.Row("compile", "never")

    started = time.monotonic()
    check.run_part("compile", slow, _context(results, 3), 3)  # each case also runs gc.collect(): not too short
    assert time.monotonic() - started < 20
    rows = read_rows(results.csv_path)
    assert rows["compile", "quick"]["status"] == "ok"
    assert rows["compile", "hangs"]["status"] == "timeout"
    assert "budget" in rows["compile", "hangs"]["note"]
    assert ("compile", "never") not in rows


def test_the_markdown_explains_each_ratio_and_the_file_names_the_gpu(tmp_path: Path) -> None:
    assert check.slug("NVIDIA H200") == "nvidia-h200"
    assert check.slug("NVIDIA A100-SXM4-80GB") == "nvidia-a100-sxm4-80gb"
    results = _results(tmp_path)
    results.add(check.Row("peer_latency", "Restormer/fp32", time_s=0.5, ratio=1.25))
    markdown = results.md_path.read_text()
    assert "ratio: latency / LAformer-base's at the same precision." in markdown
    assert "| Restormer/fp32 | ok | 0.5 | 1.25 |" in markdown


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_a_gpu_the_real_check_refuses_and_points_to_the_dry_run(tmp_path: Path, capsys) -> None:
    assert check.main(["--out", str(tmp_path)]) == 2
    assert "--dry-run" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # two gloo processes and a compile worker in fresh interpreters: a minute or two on 2 cores
def test_full_dry_run_through_check_sh_runs_ddp_and_the_compile_subprocess(tmp_path: Path) -> None:
    cmd = ["bash", str(ROOT / "experiments/gpu/check.sh"), "--dry-run", "full", "--parts", "ddp", "compile"]
    done = subprocess.run([*cmd, "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(tmp_path / "results_dry-run-cpu.csv")
    ddp = rows["ddp", "2-process"]
    assert ddp["status"] == "ok" and ddp["steps"] == "2", ddp
    assert "no grad-stride warning" in ddp["note"]
    assert rows["compile", "eager"]["status"] == rows["compile", "compiled"]["status"] == "ok"
