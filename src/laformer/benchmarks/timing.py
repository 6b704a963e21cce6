"""One timer for every study: each call timed on its own, after warm-up calls, with the device synchronised.

Not ``torch.utils.benchmark.Timer``: it runs at one thread unless told otherwise and reports blocks of calls, while
the studies time whole forward passes (seconds each, at the machine's thread count), need every pass's time for a
median and a minimum, and must stop early when the remaining passes cannot finish before a deadline.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    """Seconds of each timed call; ``stopped`` says why fewer calls ran than asked (empty when all ran)."""

    times: list[float]
    stopped: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)


def synchronize(device: Any = None) -> None:
    """Wait for a CUDA device's queued work, so a timer reads the work and not its launch; no-op elsewhere."""
    import torch

    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], Any],
    repeats: int,
    warmup: int = 0,
    device: Any = None,
    deadline: float | None = None,
    check: Callable[[Any], None] | None = None,
) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; the seconds of each timed call.

    ``device``: synchronised before the clock starts and after ``fn`` returns (CUDA runs asynchronously).
    ``deadline``: a ``time.perf_counter()`` value; when the calls left, at the last call's duration, would end after
    it, timing stops and ``Timing.stopped`` says so (a measurement that cannot finish stops instead of being killed).
    ``check``: called on each result outside the timed span (e.g. to refuse a non-finite output).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    total, times = warmup + repeats, []
    for done in range(1, total + 1):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        elapsed = time.perf_counter() - start
        if check is not None:
            check(result)
        del result
        if done > warmup:
            times.append(elapsed)
        projected = time.perf_counter() + elapsed * (total - done)
        if done < total and deadline is not None and projected > deadline:
            over = projected - deadline
            stopped = f"stopped after call {done}/{total} of {elapsed:.1f} s: the rest would end {over:.0f} s late"
            return Timing(times, stopped)
    return Timing(times)
