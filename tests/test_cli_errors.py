"""``laformer.cli.errors``: which failures are the user's, how they are worded, and the debug switch."""

from __future__ import annotations

import errno

import pytest

from laformer.cli.errors import DEBUG_ENV, is_disk_full, message, one_line_errors, user_error
from laformer.data.io import ImageReadError


def test_a_data_loader_workers_error_is_reported_without_its_traceback() -> None:
    # What torch's DataLoader raises in the training process when a worker failed on a file.
    text = (
        "Caught ImageReadError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "/x/worker.py", line 349, in _worker_loop\n    data = fetcher.fetch(index)\n'
        "laformer.data.io.ImageReadError: cannot decode image /data/train/0007.png: the file is corrupt"
    )
    assert message(ImageReadError(text)) == "cannot decode image /data/train/0007.png: the file is corrupt"


def test_long_problem_lists_are_cut_with_a_count() -> None:
    text = "\n".join(["12 problems:", *(f"  pair {i} differs" for i in range(12))])
    lines = message(ValueError(text), max_lines=5).splitlines()
    assert len(lines) == 6 and lines[-1] == "  ... and 8 more lines"


def test_disk_full_is_found_through_the_chain() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("checkpoint save failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert is_disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1496832 vs 14967"))
    assert not is_disk_full(RuntimeError("shape mismatch"))


def test_user_errors_are_found_behind_hydras_wrapper_and_bugs_are_not() -> None:
    try:
        try:
            raise ValueError("Invalid learning rate: -1")
        except ValueError as inner:
            raise RuntimeError("Error in call to target 'torch.optim.AdamW'") from inner
    except RuntimeError as wrapped:
        assert str(user_error(wrapped)) == "Invalid learning rate: -1"
    assert user_error(AttributeError("'NoneType' object has no attribute 'shape'")) is None


def test_one_line_errors_exits_2_and_debug_reraises(monkeypatch, capsys) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_, one_line_errors("laformer-x"):
        raise FileNotFoundError("image not found: a.png")
    assert exit_.value.code == 2 and capsys.readouterr().err == "laformer-x: error: image not found: a.png\n"
    with pytest.raises(AttributeError), one_line_errors("laformer-x"):  # a bug keeps its traceback
        raise AttributeError("bug")
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(FileNotFoundError), one_line_errors("laformer-x"):
        raise FileNotFoundError("image not found: a.png")
