"""The measuring toolkit every study in ``experiments/`` uses, so a study keeps only its plan, columns and verdicts.

- :mod:`~laformer.benchmarks.sizes`: ``parse_size`` (always (height, width)) and ``size_label``;
- :mod:`~laformer.benchmarks.timing`: ``time_calls``, the per-call timer (warm-up, device sync, a deadline);
- :mod:`~laformer.benchmarks.memory`: ``PeakMemory`` and its one reset helper ``reset_peak`` (psutil on the CPU,
  the CUDA allocator's statistics on a GPU);
- :mod:`~laformer.benchmarks.worker`: ``run_isolated``, one call in a fresh spawned process, so one measurement's
  memory cannot pollute the next and a crash or a hang is a result, not the end of the study;
- :mod:`~laformer.benchmarks.inputs`: random inputs and the noisy photo mosaic of the 4K measurements;
- :mod:`~laformer.benchmarks.networks`: every network built from composed ``model=`` configs through the registry;
- :mod:`~laformer.benchmarks.machine`: the facts of the machine for a table's header, and a time budget;
- :mod:`~laformer.benchmarks.measure`: the measurements themselves (a forward benchmark, one restoration, the
  training throughput of ``laformer-train``).

Nothing here imports Lightning or the training code: the training throughput runs ``laformer-train`` as a command.
"""

from laformer.benchmarks.memory import PeakMemory, reset_peak
from laformer.benchmarks.sizes import parse_size, size_label
from laformer.benchmarks.timing import Timing, time_calls
from laformer.benchmarks.worker import WorkerCrashed, WorkerTimeout, run_isolated

__all__ = [
    "PeakMemory",
    "Timing",
    "WorkerCrashed",
    "WorkerTimeout",
    "parse_size",
    "reset_peak",
    "run_isolated",
    "size_label",
    "time_calls",
]
