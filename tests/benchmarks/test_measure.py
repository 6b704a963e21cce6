"""The shared measurements (laformer.benchmarks.measure), in-process at toy sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.benchmarks.inputs import noisy_photo
from laformer.benchmarks.measure import TrainRun, forward_benchmark, forward_memory, restore_once
from laformer.benchmarks.networks import build, network_config
from laformer.data.io import write_image

TOY = ["model=tiny", "model.width=8"]


def _spec(**changes: object) -> dict:
    spec = {"config": network_config(TOY), "height": 24, "width": 40, "precision": "fp32", "device": "cpu"}
    return {**spec, "warmup": 1, "repeats": 2, "threads": 1, **changes}


def test_forward_benchmark_times_every_pass_and_measures_from_the_built_network() -> None:
    result = forward_benchmark(_spec())
    assert result["status"] == "ok", result
    assert len(result["times"]) == 2 and all(t > 0 for t in result["times"])
    assert result["peak_mem_mb"] >= result["baseline_mem_mb"] > 0
    assert result["delta_mem_mb"] == pytest.approx(result["peak_mem_mb"] - result["baseline_mem_mb"])


def test_forward_benchmark_reports_failures_as_a_status() -> None:
    stopped = forward_benchmark(_spec(repeats=1000, deadline_s=1e-3))
    assert stopped["status"] == "timeout" and "stopped after call" in stopped["note"]
    broken = forward_benchmark(_spec(config={**network_config(TOY), "name": "no-such-preset"}))
    assert broken["status"] == "error" and "no-such-preset" in broken["note"]


def test_forward_memory_is_the_growth_of_one_pass() -> None:
    net = build(TOY).eval()
    assert forward_memory(net, torch.rand(1, 3, 256, 256)) > 1  # a 256² pass needs activations


def test_restore_once_writes_the_output_and_its_figures(tmp_path: Path) -> None:
    _, noisy = noisy_photo(40, 64)
    write_image(tmp_path / "in.png", noisy, bit_depth=16)
    spec = {"config": network_config(TOY), "input": str(tmp_path / "in.png"), "output": str(tmp_path / "out.npy")}
    result = restore_once({**spec, "tile": 32, "overlap": 8, "precision": "fp32", "device": "cpu", "threads": 1})
    assert result["status"] == "ok" and result["time_s"] > 0 and result["model"] == "tiny rela (untrained)"
    assert result["peak_mem_mb"] >= result["baseline_mem_mb"]
    assert np.load(tmp_path / "out.npy").shape == (3, 40, 64)


def test_a_train_run_reads_its_speed_and_says_why_it_failed() -> None:
    summary = {"steps": 3, "metrics": {"train/loss": 0.5}, "throughput": {"images_per_s": 12.5, "train_time_s": 0.4}}
    speed = TrainRun(0, "", summary).speed()
    assert speed == {"steps": 3, "loss": 0.5, "finite_loss": True, "images_per_s": 12.5, "train_time_s": 0.4}
    failed = TrainRun(1, "starting\nTraceback ...\nValueError: bad override\n", None)
    assert not failed.ok and failed.tail(1) == "ValueError: bad override"
    assert TrainRun(0, "", {"metrics": {"train/loss": float("nan")}}).speed()["finite_loss"] is False
