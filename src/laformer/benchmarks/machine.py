"""What a measurement ran on, for the header of every results table: a timing means little without its machine."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: Any) -> str:
    """The GPU's name for a CUDA device, else the CPU's."""
    import torch

    return torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else cpu_name()


def slug(text: str) -> str:
    """A device's name as a file-name part: ``NVIDIA H200`` -> ``nvidia-h200`` (results are named by machine)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def machine_facts(device: Any) -> dict[str, str]:
    """Date, library versions, the CPU and, for a CUDA device, the GPU, CUDA, cuDNN, matmul precision and driver."""
    import torch

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    facts = {
        "date (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "torch": torch.__version__,
        "lightning": version("lightning"),
        "python": platform.python_version(),
        "host CPU": f"{cpu_name()}, {os.cpu_count()} logical cores",
    }
    device = torch.device(device)
    if device.type != "cuda":
        facts["CPU threads"] = str(torch.get_num_threads())
        return facts
    props = torch.cuda.get_device_properties(device)
    facts["GPU"] = (
        f"{torch.cuda.get_device_name(device)} x{torch.cuda.device_count()}, {props.total_memory / 2**30:.0f} GiB, "
        f"compute capability {props.major}.{props.minor}"
    )
    facts["CUDA / cuDNN"] = f"{torch.version.cuda} / {torch.backends.cudnn.version()}"
    matmul = f"{torch.get_float32_matmul_precision()} / {torch.backends.cudnn.allow_tf32}"
    facts["float32 matmul precision / cuDNN TF32"] = matmul
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        facts["driver"] = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip()
    return facts


class BudgetSpent(BaseException):
    """A time budget ran out. A BaseException, so a measurement's ``except Exception`` does not swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`BudgetSpent` in the main thread after ``seconds`` (between Python bytecodes; Unix only).

    A study with a fixed total time (a GPU lent for minutes) stops an overrunning part and goes on to the next.
    """

    def expire(signum: int, frame: object) -> None:
        raise BudgetSpent(f"budget of {seconds:.0f} s spent")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
