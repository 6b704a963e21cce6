"""The measuring toolkit (laformer.benchmarks): sizes, the timer, peak memory, the spawned worker, networks."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from laformer.benchmarks import (
    PeakMemory,
    WorkerCrashed,
    WorkerTimeout,
    parse_size,
    reset_peak,
    run_isolated,
    size_label,
    time_calls,
)
from laformer.benchmarks.inputs import noisy_photo, random_image
from laformer.benchmarks.machine import BudgetSpent, machine_facts, time_limit
from laformer.benchmarks.networks import build, cost, model_overrides


def test_parse_size_is_height_then_width() -> None:
    assert parse_size("3840x2160") == (2160, 3840)
    assert parse_size(" 512 ") == (512, 512)
    assert parse_size("64X40") == (40, 64)
    assert size_label(*parse_size("3840x2160")) == "3840x2160" and size_label(512, 512) == "512"
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("4k")


def test_time_calls_times_each_call_after_the_warm_up() -> None:
    calls = []

    def work() -> float:
        calls.append(1)
        time.sleep(0.01)
        return 1.0

    timing = time_calls(work, repeats=3, warmup=2)
    assert len(calls) == 5 and len(timing.times) == 3 and not timing.stopped
    assert all(t >= 0.009 for t in timing.times)
    assert timing.median == sorted(timing.times)[1] and timing.min == min(timing.times)


def test_time_calls_checks_results_and_stops_at_the_deadline() -> None:
    def finite(value: float) -> None:
        if value != value:
            raise FloatingPointError("nan")

    with pytest.raises(FloatingPointError):
        time_calls(lambda: float("nan"), 1, check=finite)
    timing = time_calls(lambda: time.sleep(0.05), repeats=100, deadline=time.perf_counter() + 0.2)
    assert 1 <= len(timing.times) < 10 and "stopped after call" in timing.stopped
    with pytest.raises(ValueError):
        time_calls(lambda: None, repeats=0)


def test_peak_memory_sees_a_large_allocation_after_a_reset() -> None:
    reset_peak()
    with PeakMemory() as memory:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, written, so resident
        time.sleep(0.05)
        del block
        time.sleep(0.01)
    assert memory.baseline_mb > 0
    assert memory.delta_mb > 48, (memory.baseline_mb, memory.peak_mb)
    frozen = memory.peak_mb
    kept = torch.ones(32 * 2**20 // 4)
    assert memory.peak_mb == frozen  # fixed once the span ended
    del kept
    with PeakMemory() as quiet:
        time.sleep(0.01)
    assert quiet.delta_mb < 48  # the earlier allocation does not count in a later span


def test_worker_runs_in_another_process_and_returns_its_result() -> None:
    pid = run_isolated(os.getpid)
    assert isinstance(pid, int) and pid != os.getpid()
    assert run_isolated(os.getenv, "LAFORMER_TOOLKIT_TEST", env={"LAFORMER_TOOLKIT_TEST": "yes"}) == "yes"
    assert "LAFORMER_TOOLKIT_TEST" not in os.environ
    with pytest.raises(ZeroDivisionError):  # the worker's own exception comes back
        run_isolated(divmod, 1, 0)


def test_worker_crash_and_hang_are_reported_clearly() -> None:
    with pytest.raises(WorkerCrashed, match="exit code 3") as crashed:
        run_isolated(os._exit, 3)
    assert crashed.value.exitcode == 3 and not crashed.value.out_of_memory
    with pytest.raises(WorkerTimeout, match="1 s"):
        run_isolated(time.sleep, 60, timeout=1)


def test_networks_come_from_composed_model_configs() -> None:
    assert model_overrides("tiny", "linear") == ["model=tiny", "model.attention=linear"]
    assert model_overrides("nafnet:small", "-") == ["model=nafnet", "model.preset=small"]
    net = build(["model=tiny", "model.width=8", "model.attention=linear"])
    assert net.info.attention == "linear" and net.info.preset == "tiny"
    again = build(["model=tiny", "model.width=8", "model.attention=linear"])
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    params_m, macs_g = cost(["model=tiny"], 256, 256)
    # 3.94 G as executed: the linear attention's block-diagonal kv product (one matmul for all heads, no layout
    # copies) multiplies its zero blocks too; 3.88 G before that change, per head
    assert params_m == pytest.approx(1.00, abs=0.01) and macs_g == pytest.approx(3.94, abs=0.01)


def test_inputs_have_the_asked_shape() -> None:
    x = random_image(3, 40, 64, channels_last=True)
    assert x.shape == (1, 3, 40, 64) and x.is_contiguous(memory_format=torch.channels_last)
    clean, noisy = noisy_photo(40, 64, sigma=25)
    assert clean.shape == noisy.shape == (3, 40, 64)
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1 and not torch.equal(clean, noisy)


def test_the_toolkit_does_not_import_lightning() -> None:
    code = (
        "import sys, laformer.benchmarks.measure, laformer.benchmarks.networks; "
        "print(any(m.startswith('lightning') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_time_limit_stops_an_overrun_and_machine_facts_name_the_cpu() -> None:
    started = time.monotonic()
    with pytest.raises(BudgetSpent, match="budget"), time_limit(0.2):
        time.sleep(5)
    assert time.monotonic() - started < 2
    with time_limit(5):
        pass  # a span that ends in time raises nothing, and the alarm is off afterwards
    time.sleep(0.05)
    facts = machine_facts("cpu")
    assert facts["torch"] == torch.__version__ and "logical cores" in facts["host CPU"]
