"""A NaN or Inf loss (or gradient) stops the run naming the step, or with ``module.nonfinite=skip`` skips it."""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import pandas as pd
import pytest
import torch

from laformer.cli.train import train
from laformer.training import NonFiniteLossError
from tests.reliability.common import fast, load

FAULTY_LOSS = "module.loss._target_=tests.reliability.faults.FaultyLoss"


def faulty(*extra: str) -> list[str]:
    return fast(
        FAULTY_LOSS,
        "trainer.max_steps=8",
        "trainer.val_check_interval=100",
        "callbacks.model_checkpoint.last_every_n_steps=2",
        *extra,
    )


def all_finite(tree) -> bool:
    if isinstance(tree, dict):
        return all(all_finite(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return all(all_finite(v) for v in tree)
    return not isinstance(tree, torch.Tensor) or not tree.is_floating_point() or bool(tree.isfinite().all())


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_nonfinite_loss_stops_with_step_and_keeps_last_good_checkpoint(make_cfg, value):
    cfg = make_cfg("train", faulty("+module.loss.at_calls=[5]", f"+module.loss.value={value}"))
    with pytest.raises(NonFiniteLossError, match=rf"training loss is {value} at step 5;.*checkpoints"):
        train(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    saved = load(folder / "last.ckpt")
    assert saved["global_step"] == 4
    assert all_finite(saved["state_dict"]) and all_finite(saved["optimizer_states"])


def test_nonfinite_gradient_with_finite_loss_stops(make_cfg):
    cfg = make_cfg("train", faulty("+module.loss.grad_fault_at_calls=[3]"))
    with pytest.raises(NonFiniteLossError, match="training gradients are not finite at step 3"):
        train(cfg)
    assert load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["global_step"] == 2


def test_skip_mode_skips_counts_and_finishes(make_cfg):
    cfg = make_cfg(
        "train",
        faulty(
            "module.nonfinite=skip",
            "trainer.max_steps=6",
            "+module.loss.at_calls=[2]",
            "+module.loss.grad_fault_at_calls=[4]",
        ),
    )
    summary = train(cfg)
    assert summary["steps"] == 6
    assert summary["skipped_nonfinite"] == 2
    assert summary["metrics"]["train/skipped_nonfinite"] == 2
    saved = load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert saved["laformer_skipped_nonfinite"] == 2
    assert all_finite(saved["state_dict"]) and all_finite(saved["optimizer_states"])
    # The skipped batches moved neither the weights nor AdamW: its per-parameter step count is 6 - 2.
    adam_steps = {float(s["step"]) for s in saved["optimizer_states"][0]["state"].values()}
    assert adam_steps == {4.0}
    logged = pd.read_csv(Path(cfg.paths.output_dir) / "csv" / "metrics.csv")["train/skipped_nonfinite"].dropna()
    assert list(logged) == [0, 0, 1, 1, 2, 2]


def test_skip_mode_gives_up_after_patience(make_cfg):
    cfg = make_cfg(
        "train",
        faulty("module.nonfinite=skip", "module.nonfinite_patience=2", "+module.loss.at_calls=[1,2,3,4,5,6,7]"),
    )
    with pytest.raises(
        NonFiniteLossError, match=r"at step 3: 3 faulty batches in a row, more than module.nonfinite_patience=2"
    ):
        train(cfg)


def test_nonfinite_weights_are_never_saved(make_cfg, tmp_path):
    cfg = make_cfg("train", fast("trainer.max_steps=1", "trainer.val_check_interval=100"))
    module = hydra.utils.instantiate(cfg.module)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=hydra.utils.instantiate(cfg.data))
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    before = path.read_bytes()
    with torch.no_grad():
        next(module.parameters())[0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="not finite at step 1"):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before
