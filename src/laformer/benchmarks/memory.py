"""Peak memory of a measured span: the process's resident memory (psutil) on the CPU, the allocator's on a GPU.

On the CPU a thread samples the resident set size through ``psutil`` every ``interval_s`` while the span runs:
portable, and unaffected by what the process did before the span (importing torch, building the network), which the
kernel's lifetime high-water mark (``ru_maxrss``) would include. A peak shorter than the interval can be missed; the
activations of a forward pass stay resident far longer than the default millisecond.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from typing import Any

import psutil

MIB = 2**20


def _is_cuda(device: Any) -> bool:
    import torch

    return device is not None and torch.device(device).type == "cuda"


def current_mb(device: Any = None) -> float:
    """Memory in use now, in MiB: this process's resident set on the CPU, tensors allocated on a CUDA device."""
    if _is_cuda(device):
        import torch

        return torch.cuda.memory_allocated(device) / MIB
    return psutil.Process().memory_info().rss / MIB


def reset_peak(device: Any = None) -> float:
    """Start a peak measurement from here: free what can be freed and reset the CUDA peak; returns the baseline MiB.

    The garbage collector runs and glibc hands freed heap pages back to the system (``malloc_trim``), so the
    baseline is the memory really in use, not what earlier work left cached.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    if _is_cuda(device):
        import torch

        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    return current_mb(device)


def free_memory(collect: bool = True) -> None:
    """Hand cached GPU memory back between measurements; ``collect`` also runs the garbage collector first (most of
    a second in a big process, so a study asks for it where a case left reference cycles, a Trainer above all)."""
    if collect:
        gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def gpu_peak(device: Any) -> PeakMemory | contextlib.nullcontext[None]:
    """``PeakMemory`` on a CUDA device; on the CPU a span that measures nothing (read it with :func:`peak_of`).

    Studies that report the allocator's peak on a GPU leave the CPU's column empty rather than mix two measures.
    """
    return PeakMemory(device) if _is_cuda(device) else contextlib.nullcontext()


def peak_of(memory: PeakMemory | None) -> float | None:
    """The peak (MiB) of a :func:`gpu_peak` span, None where nothing was measured."""
    return memory.peak_mb if isinstance(memory, PeakMemory) else None


class PeakMemory:
    """``with PeakMemory(device) as memory: ...``: ``baseline_mb`` at entry, ``peak_mb`` and ``delta_mb`` since.

    ``peak_mb`` can be read inside the span too (it includes a fresh sample) and stays fixed after it ends.
    """

    def __init__(self, device: Any = None, interval_s: float = 0.001) -> None:
        self.device, self.interval_s = device, interval_s
        self.baseline_mb = 0.0
        self._peak = 0.0
        self._inside = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        self.baseline_mb = self._peak = reset_peak(self.device)
        self._inside = True
        if not _is_cuda(self.device):
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak_mb  # noqa: B018 - a last reading before the span closes
        self._inside = False
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, process.memory_info().rss / MIB)

    @property
    def peak_mb(self) -> float:
        if self._inside and _is_cuda(self.device):
            import torch

            self._peak = torch.cuda.max_memory_allocated(self.device) / MIB
        elif self._inside:
            self._peak = max(self._peak, current_mb())
        return self._peak

    @property
    def delta_mb(self) -> float:
        """The growth over the baseline: the span's own memory (inputs, activations, workspace)."""
        return self.peak_mb - self.baseline_mb
