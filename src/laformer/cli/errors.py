"""One line for a mistake a user can fix, naming the file or key and the fix; the traceback only on request.

Every entry point runs its work inside :func:`one_line_errors`. The exit statuses are the ones the documentation
lists (docs/reliability.md):

====  ==========================================================================================
0     done
1     done, but some inputs failed (``laformer-restore``), or the machine failed us (disk full)
2     a user error: a bad file, image, folder, option or config key; nothing was changed
130   interrupted with Ctrl-C; finished outputs are kept, no partial file is left
143   stopped by SIGTERM (training): resume with ``ckpt_path=last``
====  ==========================================================================================

``LAFORMER_DEBUG=1`` in the environment (or ``--debug`` where a command takes options) re-raises instead, so the
full traceback shows. Errors that are not the user's (a bug of ours) always keep their traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
DEBUG_ENV = "LAFORMER_DEBUG"

# Mistakes a user makes and can fix: every error type of the suite for bad input derives from ValueError
# (ModelLoadError, ImageReadError, DataCheckError, PairingError, ConfigError, ...) or is a file-system error.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
# How a full disk surfaces: an OSError with ENOSPC, or torch's zip writer failing mid-file.
_DISK_FULL_MARKERS = ("no space left on device", "unexpected pos", "file write failed", "disk quota exceeded")


def debugging(flag: bool = False) -> bool:
    """Whether to show tracebacks: ``--debug`` or ``LAFORMER_DEBUG`` set to anything but empty or ``0``."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or quota is full."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(marker in str(link).lower() for marker in _DISK_FULL_MARKERS):
            return True
    return False


def user_error(exc: BaseException) -> BaseException | None:
    """The user's mistake behind ``exc`` (Hydra wraps errors raised while instantiating), or None for a bug."""
    for link in _chain(exc):
        if isinstance(link, USER_ERRORS):
            return link
    return None


WORKER_TRACEBACK = "Original Traceback (most recent call last)"  # how torch's DataLoader re-raises in the parent
MAX_LINES = 12  # a data check lists its problems one a line; past this many, the count says the rest


def message(exc: BaseException, max_lines: int = MAX_LINES) -> str:
    """The error's own words, without a traceback: one line as a rule, the list of problems where a check made one."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    if WORKER_TRACEBACK in text:  # a DataLoader worker's error, re-raised with the worker's traceback as its text
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    lines = text.splitlines() or [type(exc).__name__]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"  ... and {len(lines) - max_lines} more lines"]
    return "\n".join(lines)


def fail(prog: str, message: str, status: int) -> SystemExit:
    """Print ``prog: error: message`` on stderr and return the ``SystemExit`` to raise."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return SystemExit(status)


@contextlib.contextmanager
def one_line_errors(
    prog: str, debug: bool = False, disk_hint: str = "free some space and run it again", interrupted: str = ""
) -> Iterator[None]:
    """Turn a user's mistake, a full disk or Ctrl-C inside the block into one line and an exit status.

    ``disk_hint`` says what to do after a full disk (a training resumes from its last checkpoint); ``interrupted``
    what was kept when Ctrl-C stopped the work.
    """
    try:
        yield
    except KeyboardInterrupt:
        if debugging(debug):
            raise
        raise fail(prog, f"interrupted{'; ' + interrupted if interrupted else ''}", EXIT_INTERRUPTED) from None
    except Exception as exc:
        if debugging(debug):
            raise
        if is_disk_full(exc):
            # The writer's own words ("[enforce fail at inline_container.cc] unexpected pos") would not help.
            raise fail(
                prog, f"the disk is full (or over quota) and a file could not be written; {disk_hint}", EXIT_FAILED
            ) from None
        cause = user_error(exc)
        if cause is None:
            raise
        raise fail(prog, message(cause), EXIT_USER_ERROR) from None


def exit_status(prog: str, work: Callable[[], int], **options: Any) -> int:
    """``work()``'s exit status, or the status of the error :func:`one_line_errors` reported for it.

    For the commands whose ``main`` returns its status (``laformer-restore``, ``-export``, ``-app``, ``-data``: tests
    call them in-process); the Hydra entry points let the ``SystemExit`` through instead.
    """
    try:
        with one_line_errors(prog, **options):
            return work()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USER_ERROR
