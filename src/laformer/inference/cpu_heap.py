"""Reuse freed memory during large CPU forward passes, when it fits.

glibc serves every block above 32 MiB with fresh ``mmap`` pages and unmaps them on free, so each activation of a
large image is page-faulted and zeroed by the kernel anew, layer after layer. Keeping freed blocks in the heap
avoids that: a tiny model's 3840 x 2160 pass took 32.6 s instead of 47.7 s on a 2-core Xeon (system time 6 s instead
of 31 s), and 41.9 s instead of 76.9 s on a 2-core EPYC. It costs memory, because the heap fragments: the Xeon pass
peaked at 6.5 GiB instead of 4.0 GiB (x1.6). So reuse is switched on for a pass only where the estimated peak, with
that margin, fits in the memory available; glibc's defaults come back afterwards and the kept memory is handed back
to the system.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Iterator

import psutil

from laformer.models.laformer import PEAK_BYTES_PER_PIXEL_PER_WIDTH

# Measured peak resident memory (process total) of a fp32 one-pass LAformer restoration without reuse, per pixel and
# per channel of the model's full-resolution width: tiny (width 16) at 3840 x 2160 peaked at 4.0 GiB, i.e. 32.5 bytes.
# Every network carries its own figure as NetworkInfo.peak_bytes_per_pixel (LAformer: this times its width).
BYTES_PER_PIXEL_PER_WIDTH = PEAK_BYTES_PER_PIXEL_PER_WIDTH
# Peak growth from heap fragmentation with reuse on: x1.61 for tiny at 3840 x 2160, plus margin.
REUSE_OVERHEAD = 1.8
# Leave some of the available memory to everything else.
USABLE_FRACTION = 0.85
# And never let reuse take a pass above this, whatever is available (issue 25: a tiny 4K one-pass restoration in at
# most 4 GB). Reuse trades memory for speed: tiny at 3840 x 2160 peaked at 7.2 GiB with it and 3.1 GiB without it
# (restore_4k.py, --cpu-heap auto vs off, after the inference changes of issue 25), so passes whose estimated peak
# with reuse exceeds the budget keep glibc's default. LAFORMER_CPU_HEAP_BUDGET_GB sets another budget.
REUSE_BUDGET_BYTES = 4 * 2**30
BUDGET_ENV = "LAFORMER_CPU_HEAP_BUDGET_GB"

# mallopt parameters (malloc.h) and glibc's defaults for them.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
_INT_MAX = 2**31 - 1


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (absent on musl)
    except (OSError, AttributeError):
        return None
    return libc


def estimate_forward_bytes(width: int, pixels: int) -> int:
    """Rough fp32 peak memory of a LAformer forward pass over ``pixels`` (batch included) at ``width`` channels."""
    return BYTES_PER_PIXEL_PER_WIDTH * width * pixels


def reuse_budget() -> int:
    """The most a pass may peak at with reuse on: ``$LAFORMER_CPU_HEAP_BUDGET_GB`` GiB, else 4 GiB."""
    value = os.environ.get(BUDGET_ENV)
    return int(float(value) * 2**30) if value else REUSE_BUDGET_BYTES


def reuse_fits(expected_bytes: int, available_bytes: int | None = None, budget_bytes: int | None = None) -> bool:
    """Whether a pass expected to peak at ``expected_bytes`` still fits, with the heap's fragmentation margin, in the
    available memory and in the budget (:func:`reuse_budget`)."""
    available = psutil.virtual_memory().available if available_bytes is None else available_bytes
    budget = reuse_budget() if budget_bytes is None else budget_bytes
    return expected_bytes * REUSE_OVERHEAD <= min(available * USABLE_FRACTION, budget)


@contextlib.contextmanager
def reuse_freed_memory(expected_bytes: int) -> Iterator[bool]:
    """Keep freed blocks in the heap inside the block if the pass fits (yields whether reuse is on).

    A no-op, yielding False, off glibc or where the estimate does not fit: running out of memory on the CPU ends
    the process without a Python error, so a large one-pass restoration keeps glibc's leaner default.
    """
    libc = _glibc()
    if libc is None or not reuse_fits(expected_bytes):
        yield False
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX)
    try:
        yield True
    finally:
        libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
