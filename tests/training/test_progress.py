"""The step progress bar beyond a step-budgeted fit: an epoch bar without a budget, validation and test bars, and
nothing of it left running (the test of the step bar itself is tests/suite/test_first_run.py)."""

from __future__ import annotations

import pickle

import lightning as L
import torch

from laformer.training.progress import StepProgressBar


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Conv2d(1, 1, 1)

    def training_step(self, batch, batch_idx):
        loss = self.net(batch[0]).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx) -> None:
        self.log("val/score", 1.0, prog_bar=True)

    def test_step(self, batch, batch_idx) -> None:
        self.log("test/score", 2.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class EpochRecordingBar(StepProgressBar):
    def __init__(self) -> None:
        super().__init__()
        self.shown: list[tuple[float | None, float, str, str]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        task = self.train_task
        self.shown.append((task.total, task.completed, task.description, task.fields["metrics"]))


def test_without_a_step_budget_the_bar_counts_each_epoch_and_stops_after_fit_and_test() -> None:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(3, 1, 4, 4)), batch_size=1)
    bar = EpochRecordingBar()
    trainer = L.Trainer(max_epochs=2, callbacks=[bar], logger=False, enable_checkpointing=False)
    module = Tiny()
    trainer.fit(module, data, data)
    assert [shown[:3] for shown in bar.shown] == [(3, i, f"Epoch {e}/1") for e in (0, 1) for i in (1, 2, 3)]
    assert "train/loss: " in bar.shown[-1][3] and "val/score: 1.000" in bar.shown[-1][3]
    assert bar.progress is None  # the live display ended with the fit
    trainer.test(module, data)
    assert bar.progress is None and bar.eval_task_id is None
    pickle.dumps(bar)  # a spawned DDP worker receives its callbacks pickled


def test_a_disabled_bar_draws_nothing() -> None:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(2, 1, 4, 4)), batch_size=1)
    bar = StepProgressBar()
    bar.disable()
    trainer = L.Trainer(max_steps=2, callbacks=[bar], logger=False, enable_checkpointing=False)
    trainer.fit(Tiny(), data)
    assert bar.is_disabled and bar.progress is None and bar.train_task is None
