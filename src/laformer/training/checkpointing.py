"""Checkpoints a week-long run can rely on: atomic writes, a frequent ``last.ckpt``, a save on SIGTERM.

Lightning's own writer serialises to memory and then moves a file from the system temp folder into place;
across filesystems (``/tmp`` on a node, checkpoints on shared storage) that move is a copy into the target,
so a kill during it leaves a truncated ``last.ckpt``. Here the temporary file sits next to the target and is
synced before an ``os.replace``, which is atomic on one filesystem: a reader sees the old file or the new one.
"""

from __future__ import annotations

import os
from typing import Any

import fsspec
import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.weight_averaging import WeightAveraging
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from laformer.io_atomic import TMP_SUFFIX, atomic_write

__all__ = ["TMP_SUFFIX", "AtomicCheckpointIO", "RestorationCheckpoint", "atomic_torch_save"]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``<path>.tmp`` in the same folder, fsync, then rename over ``path`` (laformer.io_atomic)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Trainer plugin: local checkpoints are written with :func:`atomic_torch_save`; remote URLs as Lightning does."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        fs, local_path = fsspec.core.url_to_fs(str(path))
        if storage_options is not None or not isinstance(fs, LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, local_path)


class RestorationCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (best by the monitored metric at each validation, plus ``last.ckpt``) that also

    - rewrites ``last.ckpt`` every ``last_every_n_steps`` optimiser steps and at the final step, between
      validations, without disturbing the choice of the best checkpoint;
    - on SIGTERM (what a cluster scheduler sends before pre-emption) saves ``last.ckpt`` before the process
      exits, so ``ckpt_path=last`` resumes from the step the job reached. Other errors (a NaN loss) save
      nothing: the last good checkpoint stays.
    """

    def __init__(self, *args: Any, last_every_n_steps: int | None = None, save_on_sigterm: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if last_every_n_steps is not None and last_every_n_steps < 1:
            raise ValueError(f"last_every_n_steps must be a positive number of steps or null, got {last_every_n_steps}")
        self.last_every_n_steps = last_every_n_steps
        self.save_on_sigterm = save_on_sigterm
        self._last_saved_step: int | None = None

    def _save_last_only(self, trainer: L.Trainer) -> None:
        # Lightning skips a validation's best-checkpoint check when a checkpoint was already written at that
        # step; a periodic last.ckpt must not count as one, so the bookkeeping is put back.
        best_bookkeeping = self._last_global_step_saved
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_global_step_saved = best_bookkeeping
        self._last_saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        if not self.save_last or trainer.fast_dev_run or trainer.sanity_checking:
            return
        step = trainer.global_step
        periodic = bool(self.last_every_n_steps) and step % self.last_every_n_steps == 0
        final = 0 < trainer.max_steps <= step
        if (periodic or final) and self._last_saved_step != step and self._last_global_step_saved != step:
            self._save_last_only(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not (self.save_on_sigterm and isinstance(exception, SIGTERMException)):
            super().on_exception(trainer, pl_module, exception)
            return
        if trainer.fast_dev_run or trainer.sanity_checking or not self.save_last:
            return
        if trainer.validating:
            # Interrupted inside a validation: weight averaging (EMA) has its average swapped into the model
            # until the validation ends; swap back so the checkpoint holds each where it belongs.
            for callback in trainer.callbacks:
                if isinstance(callback, WeightAveraging):
                    callback.on_validation_epoch_end(trainer, pl_module)
        epochs = trainer.fit_loop.epoch_progress.current
        if epochs.completed == epochs.ready:
            # Stopped at an epoch boundary: the epoch is closed, but Lightning resets the per-epoch batch
            # count only when the next epoch starts, and a restored run would continue the old count. Save
            # the state as the next epoch's start sees it.
            trainer.fit_loop.epoch_loop.batch_progress.current.reset()
        self._save_last_only(trainer)
        rank_zero_info(
            f"SIGTERM at step {trainer.global_step}: saved {self.last_model_path}; "
            "resume with ckpt_path=last and hydra.run.dir=<this run's folder>"
        )
