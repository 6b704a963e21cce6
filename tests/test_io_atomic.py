"""laformer.io_atomic: the one atomic-write helper (summaries, job records, checkpoints, cached anchors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from laformer.io_atomic import TMP_SUFFIX, atomic_write, atomic_write_json, atomic_write_text, temporary_path


def test_a_write_that_fails_midway_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"  # the folder is created
    atomic_write(target, lambda handle: handle.write(b"old"))

    def half(handle) -> None:
        handle.write(b"new but")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, half)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_temporary_names_sit_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    assert temporary_path(target) == tmp_path / f"last.ckpt{TMP_SUFFIX}"
    assert temporary_path(target, unique=True) == tmp_path / f"last.ckpt.{os.getpid()}{TMP_SUFFIX}"
    atomic_write_text(target, "x", unique=True, durable=False)
    assert target.read_text() == "x" and not temporary_path(target, unique=True).exists()


def test_json_is_indented_with_a_final_newline(tmp_path: Path) -> None:
    path = atomic_write_json(tmp_path / "r.json", {"a": [1, 2], "p": tmp_path})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "p": "' + str(tmp_path) + '"\n}\n'


def test_the_helper_imports_nothing_heavy() -> None:
    """laformer.inference and the command-line tools use it without Lightning or torch."""
    code = "import sys, laformer.io_atomic; print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
