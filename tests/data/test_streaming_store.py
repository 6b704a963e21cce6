"""``data.store=streaming``: LitData's StreamingDataLoader under a real Lightning Trainer, stopped and resumed."""

from __future__ import annotations

import contextlib
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from laformer.cli.data import build_datamodule, main
from tests.data.packed_common import gopro_overrides, write_gopro

pytest.importorskip("litdata", reason="packed stores need the stream extra (pyproject.toml)")


class Recorder(L.LightningModule):
    """A one-weight model that records what each training step read (names and a fingerprint of the crops)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, tuple[str, ...], float]] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        fingerprint = float(batch["input"].double().sum() + 3 * batch["target"].double().sum())
        self.seen.append((self.global_step, tuple(batch["name"]), fingerprint))
        return (self.weight - batch["target"].mean()) ** 2

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Killed(RuntimeError):
    """The stand-in for a kill (a crash mid-epoch)."""


class Crash(Callback):
    """Stops the run after a step, as a killed process would (its checkpoint of that step already written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise Killed(f"killed after step {self.step}")


def fit(overrides: list[str], run_dir: Path, steps: int, crash_at: int | None = None, ckpt: Path | None = None):
    torch.manual_seed(11)
    datamodule = build_datamodule(overrides)
    module = Recorder()
    callbacks = [ModelCheckpoint(dirpath=run_dir, every_n_train_steps=1, save_last=True, save_top_k=0)]
    if crash_at is not None:
        callbacks.append(Crash(crash_at))
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        max_epochs=-1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        reload_dataloaders_every_n_epochs=1,
        callbacks=callbacks,
    )
    with contextlib.suppress(Killed):  # the checkpoint of the last step stays, as after a kill
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    return module.seen


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    root = write_gopro(tmp_path / "data", scenes=2, frames=4)  # 8 pairs
    store = tmp_path / "store"
    assert main(["pack", *gopro_overrides(root), "--out", str(store), "--chunk-pairs", "2"]) == 0
    return root, store


def test_a_resumed_streaming_run_reads_the_remaining_samples_of_the_uninterrupted_one(store, tmp_path: Path) -> None:
    root, packed = store
    overrides = gopro_overrides(
        root, "data.store=streaming", f"data.store_path={packed}", "data.batch_size=2", "data.num_workers=0"
    )
    # 8 pairs, batch 2: 4 steps an epoch; 10 steps cross two epoch boundaries
    whole = fit(overrides, tmp_path / "whole", steps=10)
    assert len(whole) == 10
    epochs = [sorted(n for _, names, _ in whole[e * 4 : e * 4 + 4] for n in names) for e in (0, 1)]
    assert epochs[0] == epochs[1] and len(set(epochs[0])) == 8  # every pair once an epoch
    assert [names for _, names, _ in whole[:4]] != [names for _, names, _ in whole[4:8]]  # reshuffled per epoch

    first = fit(overrides, tmp_path / "stopped", steps=10, crash_at=6)  # killed in the second epoch
    assert first == whole[:6]
    last = tmp_path / "stopped" / "last.ckpt"
    step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert step % 4 != 0, f"the checkpoint of step {step} is at an epoch boundary; the test wants one mid-epoch"
    resumed = fit(overrides, tmp_path / "resumed", steps=10, ckpt=last)
    assert resumed == whole[step:], "the resumed run read other samples (or other crops) than the uninterrupted one"
