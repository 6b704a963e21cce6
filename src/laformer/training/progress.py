"""A progress bar for runs budgeted in optimiser steps.

The suite's runs set ``max_steps`` and leave ``max_epochs=-1`` (an epoch is a few repeats of a small photo set),
so Lightning's bar read ``Epoch 66/-2`` and started over every epoch. This one counts the run's steps against
``max_steps`` in one bar, with the epoch beside it; a run without a step budget gets one bar an epoch, as
Lightning's ``RichProgressBar`` draws it.

It is written on public interfaces only: Lightning's :class:`~lightning.pytorch.callbacks.ProgressBar` (the base
Lightning documents for custom bars: its hooks, descriptions, batch totals and ``get_metrics``) and Rich's
:class:`rich.progress.Progress`. An earlier version drove ``RichProgressBar``'s private methods and task ids,
which any Lightning release may rename.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from rich import get_console, reconfigure
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StepProgressBar(ProgressBar):
    """``step 120/400 (epoch 14)``: one bar for the whole run, advanced by the global step.

    Validation, test and prediction passes get a bar of their own while they run (hidden when they end); the
    sanity check shows none, as in Lightning's bar. The progress-bar metrics (``get_metrics``: the loss and what
    the module logs with ``prog_bar=True``) follow the training bar.

    Args:
        refresh_rate: redraws a second; 0 switches the bar off.
        console_kwargs: arguments of Rich's global console (``rich.reconfigure``), as ``RichProgressBar`` takes them.
    """

    def __init__(self, refresh_rate: int = 10, console_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.refresh_rate = refresh_rate
        self.console_kwargs = dict(console_kwargs or {})
        self._enabled = True
        self.progress: Progress | None = None
        self.train_task_id: TaskID | None = None
        self.eval_task_id: TaskID | None = None

    # -- the switches Lightning flips (off on every rank but zero, and while a tuner runs) -----------------------
    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.refresh_rate > 0

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def train_task(self) -> Task | None:
        """The training bar's Rich task (its total, what is completed and the description), while it is shown."""
        if self.progress is None or self.train_task_id is None:
            return None
        return next(task for task in self.progress.tasks if task.id == self.train_task_id)

    # -- what the bar shows ------------------------------------------------------------------------------------
    @staticmethod
    def step_budget(trainer: L.Trainer) -> int | None:
        return trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None

    def describe(self, trainer: L.Trainer) -> str:
        """The training bar's text: the step against the budget, or the epoch where there is none."""
        if self.step_budget(trainer) is not None:
            return f"step {trainer.global_step}/{trainer.max_steps} (epoch {trainer.current_epoch})"
        epochs = f"/{trainer.max_epochs - 1}" if trainer.max_epochs is not None and trainer.max_epochs > 0 else ""
        return f"Epoch {trainer.current_epoch}{epochs}"

    def metrics_text(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        """``train/loss: 0.012 v_num: 3``: the progress-bar metrics, numbers to three decimals."""
        parts = []
        for name, value in self.get_metrics(trainer, pl_module).items():
            value = value.item() if hasattr(value, "item") else value
            parts.append(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
        return " ".join(parts)

    @staticmethod
    def _total(batches: float) -> float | None:
        return None if batches == float("inf") else batches  # an iterable dataset: Rich pulses without a total

    # -- the Rich display --------------------------------------------------------------------------------------
    def _start(self) -> Progress | None:
        if self.is_disabled:
            return None
        if self.progress is None:
            if self.console_kwargs:
                reconfigure(**self.console_kwargs)
            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(complete_style="#6206E0", finished_style="#6206E0", pulse_style="#6206E0"),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("[italic]{task.fields[metrics]}"),
                console=get_console(),
                refresh_per_second=self.refresh_rate,
            )
            self.progress.start()
        return self.progress

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.progress, self.train_task_id, self.eval_task_id = None, None, None

    def _show_training(self, trainer: L.Trainer, completed: int, metrics: str | None = None) -> None:
        progress = self._start()
        if progress is None:
            return
        total = self.step_budget(trainer) or self._total(self.total_train_batches)
        if self.train_task_id is None:  # the first epoch, or a run resumed mid-epoch
            self.train_task_id = progress.add_task(self.describe(trainer), total=total, metrics="")
        fields = {} if metrics is None else {"metrics": metrics}
        progress.update(
            self.train_task_id, total=total, completed=completed, description=self.describe(trainer), **fields
        )

    def _start_eval(self, description: str, batches: float) -> None:
        """A bar for the evaluation dataloader that begins now (its batch total is known once Lightning's
        ``has_dataloader_changed`` has seen the dataloader's index)."""
        progress = self._start()
        if progress is None:
            return
        if self.eval_task_id is not None:
            progress.update(self.eval_task_id, visible=False)
        self.eval_task_id = progress.add_task(description, total=self._total(batches), metrics="")

    def _advance_eval(self, batch_idx: int) -> None:
        if self.progress is not None and self.eval_task_id is not None:
            self.progress.update(self.eval_task_id, completed=batch_idx + 1)

    def _end_eval(self) -> None:
        if self.progress is not None and self.eval_task_id is not None:
            self.progress.update(self.eval_task_id, visible=False)
        self.eval_task_id = None
        self.reset_dataloader_idx_tracker()

    # -- training ------------------------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        budget = self.step_budget(trainer)
        self._show_training(trainer, trainer.global_step if budget is not None else 0)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        completed = trainer.global_step if self.step_budget(trainer) is not None else batch_idx + 1
        self._show_training(trainer, completed, self.metrics_text(trainer, pl_module))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.progress is not None and self.train_task_id is not None:
            self.progress.update(self.train_task_id, metrics=self.metrics_text(trainer, pl_module))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()

    # -- validation, test, prediction: one bar each while it runs --------------------------------------------------
    def on_validation_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.sanity_checking and self.has_dataloader_changed(dataloader_idx):
            self._start_eval(self.validation_description, self.total_val_batches_current_dataloader)

    def on_test_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.has_dataloader_changed(dataloader_idx):
            self._start_eval(self.test_description, self.total_test_batches_current_dataloader)

    def on_predict_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.has_dataloader_changed(dataloader_idx):
            self._start_eval(self.predict_description, self.total_predict_batches_current_dataloader)

    def _eval_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking:  # the sanity check shows no bar
            self._advance_eval(batch_idx)

    on_validation_batch_end = on_test_batch_end = on_predict_batch_end = _eval_batch_end

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end_eval()
        if trainer.state.fn == "fit":
            self.on_train_epoch_end(trainer, pl_module)  # the validation metrics beside the training bar
        else:
            self._stop()

    def _eval_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end_eval()
        self._stop()

    on_test_end = on_predict_end = _eval_end

    def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.reset_dataloader_idx_tracker()

    # -- leaving the terminal usable ---------------------------------------------------------------------------
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._stop()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stop()

    def __getstate__(self) -> dict[str, Any]:
        """Without the live display (it holds a thread and locks), so the callback pickles for spawned workers."""
        return {**self.__dict__, "progress": None, "train_task_id": None, "eval_task_id": None}
