"""Atomic file writes: whoever reads the file, and whenever the writer is killed, sees the old file or the new one.

The data goes to a temporary file beside the target (the same folder, so the same filesystem), is flushed and
synced, and is then renamed over the target with ``os.replace``, which is atomic on one filesystem. Writing in
place instead leaves half a file after a kill or a full disk, and readers of run folders treat a present
``summary.json`` as "this job finished".

Standard library only: ``laformer.inference`` and the command-line tools can use it without importing Lightning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"


def temporary_path(path: str | os.PathLike[str], unique: bool = False) -> Path:
    """Where :func:`atomic_write` puts ``path``'s data before the rename: ``<name>.tmp`` beside it.

    ``unique`` adds the process id (``<name>.<pid>.tmp``), for files that several processes may write at once
    (a shared cache); otherwise the next save reuses, and so cleans up, a temporary file a killed writer left.
    """
    target = Path(path)
    middle = f".{os.getpid()}" if unique else ""
    return target.with_name(f"{target.name}{middle}{TMP_SUFFIX}")


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], Any],
    *,
    unique: bool = False,
    durable: bool = True,
) -> Path:
    """Call ``write`` with a binary file open on a temporary file beside ``path``, then rename it over ``path``.

    ``durable`` syncs the data and the folder entry to disk, so the new file also survives a power cut or a node
    crash (a cache that is recomputed when damaged can skip it). If ``write`` raises, the temporary file is
    removed and the old ``path`` is left as it was. Creates the parent folder. Returns ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target, unique)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:  # the rename lives in the folder's entry: sync it too
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, **options: Any) -> Path:
    """:func:`atomic_write` of ``text`` as UTF-8."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), **options)


def atomic_write_json(path: str | os.PathLike[str], record: Any, **options: Any) -> Path:
    """:func:`atomic_write` of ``record`` as indented JSON with a final newline (values JSON lacks as ``str``)."""
    return atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n", **options)
