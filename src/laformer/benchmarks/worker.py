"""One call in a fresh process: ``run_isolated(fn, *args)``.

A measurement in its own process starts from a clean heap (its peak memory is its own), and when it is killed by
the out-of-memory killer, crashes or hangs, the study records that and goes on. The process is started with the
``spawn`` method (a fresh interpreter; nothing inherited from the parent's torch threads or CUDA context) by
``concurrent.futures.ProcessPoolExecutor``, which carries the arguments and the result (or the worker's exception)
across. ``fn`` must be importable by the child: a function of an installed module, not of a script loaded by path.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerCrashed(RuntimeError):
    """The worker process died before returning; ``exitcode`` is its exit status (negative: the signal)."""

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        self.out_of_memory = exitcode == -signal.SIGKILL
        why = " (killed by signal 9, likely the out-of-memory killer)" if self.out_of_memory else ""
        super().__init__(f"the worker process died with exit code {exitcode}{why}")


class WorkerTimeout(TimeoutError):
    """The worker did not return within its timeout and was killed."""


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """``os.environ`` with ``env`` applied while the worker starts (a spawned child copies it then)."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_isolated(
    fn: Callable[..., T], *args: Any, timeout: float | None = None, env: Mapping[str, str] | None = None
) -> T:
    """``fn(*args)`` in a fresh spawned process; its return value, or its exception raised here.

    ``env``: variables added to the worker's environment (read at its start, e.g. ``OMP_WAIT_POLICY`` or glibc's
    ``MALLOC_*``). Raises :class:`WorkerTimeout` after ``timeout`` seconds (the worker is killed) and
    :class:`WorkerCrashed` when the worker dies without an answer.
    """
    executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    with _environment(env):
        future = executor.submit(fn, *args)
    # The pool starts its process during submit; its handle (a private attribute until Python 3.14's
    # kill_workers) is the only way to kill a hung worker and to read a dead one's exit code.
    processes = list(getattr(executor, "_processes", {}).values())
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        for process in processes:
            process.kill()
        raise WorkerTimeout(f"the worker did not finish within {timeout:g} s and was killed") from None
    except BrokenProcessPool:
        # The pool's own thread reaps the dead worker; once it has ended, the exit code is known.
        executor.shutdown(wait=True, cancel_futures=True)
        deadline = time.monotonic() + 5
        while processes and processes[0].exitcode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        raise WorkerCrashed(processes[0].exitcode if processes else None) from None
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
