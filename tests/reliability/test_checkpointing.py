"""Checkpoint writes are atomic: a save killed or failing midway never leaves a broken ``last.ckpt``."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from laformer.cli.train import train
from laformer.training.checkpointing import TMP_SUFFIX, AtomicCheckpointIO
from tests.reliability.common import fast, load

LIMIT = 1 << 20  # bytes a process may write to one file before the kernel kills it (SIGXFSZ)


def killed_while_writing(save: Callable[[], None]) -> int:
    """Run ``save`` in a forked child that the kernel kills once a file grows past ``LIMIT``; its status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; the kernel's default kills
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
            save()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def big_checkpoint(step: int) -> dict:
    return {"global_step": step, "state_dict": {"w": torch.randn(1_000_000)}}  # 4 MB, well past LIMIT


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_mid_write_keeps_previous_last_checkpoint(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "state_dict": {"w": torch.ones(10)}}, last)

    # The fault is real: a plain torch.save killed the same way leaves a truncated, unreadable file.
    plain = tmp_path / "plain.ckpt"
    assert killed_while_writing(lambda: torch.save(big_checkpoint(2), plain)) == -signal.SIGXFSZ
    assert plain.stat().st_size == LIMIT
    with pytest.raises(RuntimeError):
        torch.load(plain, weights_only=False)

    assert killed_while_writing(lambda: io.save_checkpoint(big_checkpoint(2), last)) == -signal.SIGXFSZ
    partial = last.with_name(last.name + TMP_SUFFIX)
    assert partial.stat().st_size == LIMIT, "the interrupted write goes to a temporary file beside the target"
    assert load(last)["global_step"] == 1
    assert torch.equal(load(last)["state_dict"]["w"], torch.ones(10))

    io.save_checkpoint(big_checkpoint(3), last)  # the next save replaces both
    assert load(last)["global_step"] == 3 and not partial.exists()


def test_failed_save_during_training_keeps_last_good_checkpoint(make_cfg):
    cfg = make_cfg(
        "train",
        fast(
            "trainer.max_steps=4",
            "trainer.val_check_interval=100",
            "callbacks.model_checkpoint.last_every_n_steps=2",
            "+callbacks.poison._target_=tests.reliability.faults.PoisonCheckpointAt",
            "+callbacks.poison.step=4",
        ),
    )
    with pytest.raises(Exception, match=r"(?i)pickle"):
        train(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"], "no partial or temporary file is left"
    saved = load(folder / "last.ckpt")
    assert saved["global_step"] == 2
    assert "poison" not in saved
