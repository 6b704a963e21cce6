"""Shared pieces of the reliability tests: override lists, CLI subprocesses, checkpoint comparison."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from tests.conftest import FAST_DEMO

REPO = Path(__file__).resolve().parents[2]

# The parts of a checkpoint that decide how training continues.
TRAINING_STATE = (
    "global_step",
    "epoch",
    "state_dict",  # with EMA on: the average
    "current_model_state",  # with EMA on: the raw weights
    "averaging_state",
    "optimizer_states",
    "lr_schedulers",
    "DemoDataModule",
    "laformer_skipped_nonfinite",
)


def merged(*groups: Iterable[str]) -> list[str]:
    """Hydra overrides with later ``key=value`` entries replacing earlier ones of the same key."""
    out: dict[str, str] = {}
    for group in groups:
        for item in group:
            out[item.split("=", 1)[0]] = item
    return list(out.values())


def fast(*extra: str) -> list[str]:
    return merged(FAST_DEMO, extra)


def cli_env() -> dict[str, str]:
    # One thread per process: reproducible float reductions, and fair to a shared machine.
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def cli_command(run_dir: Path, overrides: Iterable[str]) -> list[str]:
    return [sys.executable, "-m", "laformer.cli.train", *overrides, f"hydra.run.dir={run_dir}"]


def start_cli(run_dir: Path, overrides: Iterable[str], log: Path) -> subprocess.Popen:
    """``laformer-train`` in its own process, output to ``log``."""
    handle = open(log, "wb")  # noqa: SIM115 - closed by the caller through the process object
    return subprocess.Popen(
        cli_command(run_dir, overrides), cwd=REPO, env=cli_env(), stdout=handle, stderr=subprocess.STDOUT
    )


def run_cli(run_dir: Path, overrides: Iterable[str], timeout: float = 600) -> str:
    """Run ``laformer-train`` to the end; its output, or an assertion error carrying it."""
    proc = subprocess.run(
        cli_command(run_dir, overrides), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=timeout
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"laformer-train exited {proc.returncode}:\n{output[-4000:]}"
    return output


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Every place two checkpoint trees differ, tensors compared bit for bit."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(map(str, set(a) ^ set(b)))} in only one"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or not torch.equal(a, b):
            gap = (a.double() - b.double()).abs().max().item() if a.shape == b.shape else "shape"
            return [f"{where}: tensors differ (max gap {gap})"]
        return []
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def assert_same_training_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    found = []
    for key in TRAINING_STATE:
        found += differences(a.get(key), b.get(key), key)
    ema = [k for k in a["callbacks"] if k.startswith("EMAWeightAveraging")]
    for key in ema:
        found += differences(a["callbacks"][key], b["callbacks"].get(key), f"callbacks/{key}")
    assert not found, "resumed run differs from the uninterrupted one:\n" + "\n".join(found[:20])


def wait_for_step(run_dir: Path, proc: subprocess.Popen, step: int, timeout: float = 300) -> int:
    """Poll ``last.ckpt`` until it holds at least ``step`` steps; the step it holds."""
    last, deadline = run_dir / "checkpoints" / "last.ckpt", time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended (status {proc.returncode}) before reaching step {step}"
        if last.is_file():
            reached = load(last)["global_step"]  # never a half-written file: saves are atomic
            if reached >= step:
                return reached
        time.sleep(0.05)
    raise TimeoutError(f"{last} did not reach step {step} in {timeout} s")


def signal_at_step(
    run_dir: Path, overrides: Iterable[str], log: Path, step: int, signum: int, wait: float = 120
) -> tuple[subprocess.Popen, int, str]:
    """Start a real ``laformer-train``, send ``signum`` once ``last.ckpt`` holds ``step`` steps, and wait for it.

    Returns the finished process, the step ``last.ckpt`` held when the signal went out, and the run's log.
    """
    proc = start_cli(run_dir, overrides, log)
    try:
        reached = wait_for_step(run_dir, proc, step)
        proc.send_signal(signum)
        proc.wait(wait)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(60)
    return proc, reached, log.read_text()
