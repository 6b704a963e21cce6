"""A progress bar for runs budgeted in optimiser steps.

The suite's runs set ``max_steps`` and leave ``max_epochs=-1`` (an epoch is a few repeats of a small photo set),
so Lightning's bar read ``Epoch 66/-2`` and started over every epoch. This one counts the run's steps against
``max_steps`` in one bar, with the epoch beside it; runs without a step budget keep Lightning's bar.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class StepProgressBar(RichProgressBar):
    """``step 120/400 (epoch 14)``: one bar for the whole run, advanced by the global step."""

    @staticmethod
    def step_budget(trainer: L.Trainer) -> int | None:
        return trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None

    def describe(self, trainer: L.Trainer) -> str:
        return f"step {trainer.global_step}/{trainer.max_steps} (epoch {trainer.current_epoch})"

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        budget = self.step_budget(trainer)
        if budget is None:
            return super().on_train_epoch_start(trainer, pl_module)
        if self.is_disabled or self.progress is None:
            return
        if self.train_progress_bar_id is None:
            self.train_progress_bar_id = self._add_task(budget, self.describe(trainer))
        self.progress.update(self.train_progress_bar_id, completed=trainer.global_step, visible=True)
        self.refresh()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        budget = self.step_budget(trainer)
        if budget is None:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.is_disabled or self.progress is None:
            return
        if self.train_progress_bar_id is None:  # resumed mid-epoch
            self.train_progress_bar_id = self._add_task(budget, self.describe(trainer))
        self.progress.update(
            self.train_progress_bar_id, completed=trainer.global_step, description=self.describe(trainer)
        )
        self._update_metrics(trainer, pl_module)
        self.refresh()
