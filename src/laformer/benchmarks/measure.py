"""The measurements the studies share: a network's forward pass, one restoration, and ``laformer-train``'s speed.

:func:`forward_benchmark` and :func:`restore_once` are meant to run in a fresh process
(``run_isolated(forward_benchmark, spec)``): their memory figures are then theirs alone. A failure to run, out of
memory above all, is returned as a status, because for a benchmark it is a result.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laformer.benchmarks.memory import PeakMemory
from laformer.benchmarks.timing import Timing, time_calls


def finite_output(output: Any) -> None:
    """Refuse a non-finite network output: a measurement of NaNs measures nothing."""
    import torch

    if not torch.isfinite(output).all():
        raise FloatingPointError("non-finite output")


def forward_memory(net: Any, x: Any) -> float:
    """The peak memory growth (MiB) of one inference pass of ``net`` on ``x``, over what was in use before it."""
    import torch

    with PeakMemory(x.device) as memory, torch.inference_mode():
        finite_output(net(x))
    return memory.delta_mb


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line of a results table: ``Type: message``, whitespace folded, cut at ``limit``."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def precision_problem(precision: str, device: Any) -> str | None:
    """Why ``precision`` (fp16/bf16, or Lightning's 16-mixed/bf16-mixed) cannot run on ``device``, or None.

    A measurement that cannot run is recorded as skipped with this reason rather than attempted.
    """
    import torch

    device = torch.device(device)
    if precision in ("fp16", "16-mixed") and device.type == "cpu":
        return "fp16 needs a GPU (the suite refuses fp16 on the CPU); dry run on the CPU"
    if precision in ("bf16", "bf16-mixed") and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU does not support bf16"
    return None


def forward_latency(
    net: Any, x: Any, precision: str = "fp32", warmup: int = 1, repeats: int = 3
) -> tuple[Timing, float | None]:
    """The times of ``repeats`` inference passes of ``net`` on ``x`` after ``warmup`` untimed ones, at
    ``precision`` (fp32 | bf16 | fp16, autocast as ``laformer-restore`` runs it), and on a GPU the allocator's peak
    (MiB) over the timed passes (None on the CPU, where a sampling thread would disturb the timing).
    """
    import torch

    from laformer.benchmarks.memory import gpu_peak, peak_of
    from laformer.inference.restore import autocast_context

    def forward() -> Any:
        with torch.inference_mode(), autocast_context(precision, x.device):
            return net(x)

    for _ in range(warmup):
        forward()
    with gpu_peak(x.device) as memory:
        timing = time_calls(forward, repeats, 0, x.device, check=finite_output)
    return timing, peak_of(memory)


def gradient_layout_mismatches(net: Any, x: Any) -> tuple[int, list[str]]:
    """(parameters, those whose raw gradient has other strides than the parameter) after one backward on ``x``.

    DDP copies each gradient into a bucket laid out like its parameter, and warns ("Grad strides do not match
    bucket view strides") when the two differ: each mismatch is named with both strides.
    """
    import torch

    params = dict(net.named_parameters())
    grads = torch.autograd.grad(net(x).square().mean(), list(params.values()))
    odd = [
        f"{name} {tuple(g.stride())} vs {tuple(p.stride())}"
        for (name, p), g in zip(params.items(), grads)
        if g.stride() != p.stride()
    ]
    return len(params), odd


def _failure(exc: BaseException) -> dict[str, str]:
    from laformer.inference.restore import is_out_of_memory

    return {"status": "oom" if is_out_of_memory(exc) else "error", "note": f"{type(exc).__name__}: {exc}"[:300]}


def forward_benchmark(spec: dict[str, Any]) -> dict[str, Any]:
    """Build ``spec["config"]`` (a model config), time its forward pass and measure its peak memory.

    ``spec``: ``config``, ``height``, ``width``, ``device``, ``precision`` (fp32 | bf16), ``warmup``, ``repeats``,
    and optionally ``threads``, ``channels_last``, ``memory_limit_gb`` (an address-space cap, so running out of
    memory fails here instead of waking the kernel's OOM killer) and ``deadline_s`` (seconds from the start; passes
    that cannot finish by then are not run and the status is ``timeout``). Memory is measured from after the
    network is built: ``baseline_mem_mb``, ``peak_mem_mb`` over every pass, ``delta_mem_mb`` the difference.
    """
    started = time.perf_counter()
    if spec.get("memory_limit_gb"):
        import resource

        limit = int(spec["memory_limit_gb"] * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    from laformer.models import build_network, network_info

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    result: dict[str, Any] = {"threads": torch.get_num_threads()}
    try:
        torch.manual_seed(0)
        net = build_network(spec["config"], source="the benchmark's network").eval().to(device)
        memory_format = torch.channels_last if spec.get("channels_last") else torch.contiguous_format
        net = net.to(memory_format=memory_format)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec["precision"] == "bf16")
        with PeakMemory(device) as memory:
            x = torch.rand(1, network_info(net).in_channels, spec["height"], spec["width"], device=device)
            x = x.contiguous(memory_format=memory_format)

            def forward() -> Any:
                with torch.inference_mode(), autocast:
                    return net(x)

            deadline = started + spec["deadline_s"] if spec.get("deadline_s") else None
            timing = time_calls(forward, spec["repeats"], spec["warmup"], device, deadline, finite_output)
        if timing.stopped:
            return {**result, "status": "timeout", "note": timing.stopped}
        result.update(status="ok", times=timing.times, peak_mem_mb=memory.peak_mb, baseline_mem_mb=memory.baseline_mb)
        result.update(delta_mem_mb=memory.delta_mb, rss_reset=device.type == "cpu")
    except Exception as exc:  # a measurement failing is a result, not a crash
        result.update(_failure(exc))
    return result


def restore_once(spec: dict[str, Any]) -> dict[str, Any]:
    """Restore the image at ``spec["input"]`` once with ``laformer.inference.restore_image``; save the output.

    ``spec``: ``ckpt`` (a checkpoint) or ``config`` (a model config, untrained), ``input``, ``output`` (a ``.npy``),
    ``tile`` (None: one pass), ``overlap``, ``precision``, ``device``, and optionally ``threads`` and ``cpu_heap``
    (``auto`` lets ``restore_image`` keep freed memory for the pass). Returns the time and the peak memory from
    after the network and the image were loaded.
    """
    import numpy as np
    import torch

    from laformer.data.io import read_image
    from laformer.inference.restore import prepare_network, restore_image

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    if spec.get("ckpt"):
        from laformer.inference.checkpoint import load_network

        net, config = load_network(spec["ckpt"])
        name = f"{config.get('name')} {config.get('attention')} (checkpoint)"
    else:
        from laformer.models import build_network

        torch.manual_seed(0)
        net = build_network(spec["config"], source="the restoration's network")
        config = spec["config"]
        name = f"{config.get('name') or config.get('arch')} {config.get('attention') or ''} (untrained)"
    net = prepare_network(net, device)
    image = read_image(spec["input"])
    result: dict[str, Any] = {"model": " ".join(name.split()), "threads": torch.get_num_threads()}
    try:
        with PeakMemory(device) as memory:
            start = time.perf_counter()
            out = restore_image(
                net,
                image,
                tile=spec["tile"],
                overlap=spec["overlap"],
                precision=spec["precision"],
                tile_batch=1,
                reuse_freed_memory=spec.get("cpu_heap", "auto") == "auto",
            )
            result["time_s"] = time.perf_counter() - start
    except Exception as exc:  # out of memory is a result to record
        return {**result, **_failure(exc)}
    result.update(status="ok", baseline_mem_mb=memory.baseline_mb, peak_mem_mb=memory.peak_mb)
    np.save(spec["output"], out.numpy())
    return result


@dataclass
class TrainRun:
    """One ``laformer-train`` run: its exit code (None: killed at the timeout), its output and its summary."""

    returncode: int | None
    output: str
    summary: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.summary is not None

    def tail(self, lines: int = 3) -> str:
        """The last ``lines`` lines of the output on one line (at most 300 characters), for a status note."""
        last = [line.strip() for line in self.output.strip().splitlines()[-lines:]]
        return " ".join(" / ".join(last).split())[-300:]

    def failure(self) -> tuple[str, str] | None:
        """(status, note) of a run that did not finish or failed: ``timeout`` or ``error`` with its output's tail."""
        if self.returncode is None:
            return "timeout", f"laformer-train did not finish: {self.tail()}"
        if not self.ok:
            return "error", f"laformer-train exit {self.returncode}: {self.tail()}"
        return None

    def speed(self) -> dict[str, Any]:
        """Steps, last training loss, training images/s and seconds (``TrainingThroughput``: steps only)."""
        summary = self.summary or {}
        throughput, loss = summary.get("throughput") or {}, (summary.get("metrics") or {}).get("train/loss")
        return {
            "steps": summary.get("steps"),
            "loss": loss,
            "finite_loss": loss is not None and math.isfinite(loss),
            "images_per_s": throughput.get("images_per_s"),
            "train_time_s": throughput.get("train_time_s"),
        }


def train_run(
    overrides: list[str],
    run_dir: str | Path,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> TrainRun:
    """Run ``laformer-train <overrides> hydra.run.dir=<run_dir>`` and read its ``summary.json``.

    The training speed every study reports is the suite's own (``TrainingThroughput`` in the summary): the same
    steps, callbacks and options a user trains with. The command runs in its own session, so a timeout kills it with
    every process it started (a DDP run's other rank). W&B is offline unless ``env`` says otherwise.
    """
    run_dir = Path(run_dir)
    command = [sys.executable, "-m", "laformer.cli.train", *overrides, f"hydra.run.dir={run_dir}"]
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
    proc = subprocess.Popen(
        command, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip

    def kill() -> str:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0] or ""

    try:
        output, _ = proc.communicate(timeout=None if timeout is None else max(timeout, 1))
    except subprocess.TimeoutExpired:
        return TrainRun(None, kill(), None)
    except BaseException:
        kill()
        raise
    from laformer.runs import SUMMARY_FILE

    summary_path = run_dir / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    return TrainRun(proc.returncode, output, summary)
