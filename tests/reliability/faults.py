"""Real faults for the reliability tests, plugged into the real configs through ``_target_``."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor

from laformer.training.losses import RestorationLoss


class SimulatedCrash(RuntimeError):
    """Raised by :class:`CrashAtStep`: the process dies mid-run, as after an out-of-memory kill."""


class CrashAtStep(L.Callback):
    """Raises :class:`SimulatedCrash` once the run reaches ``step`` optimiser steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.step:
            raise SimulatedCrash(f"simulated crash at step {trainer.global_step}")


class FaultyLoss(RestorationLoss):
    """The configured restoration loss, with faults at given 0-based training calls (= batches):

    ``at_calls``: the loss becomes ``value`` (NaN, Inf); ``grad_fault_at_calls``: the loss stays finite but
    its gradients are NaN (the derivative of sqrt at 0, times 0).
    """

    def __init__(
        self,
        at_calls: Sequence[int] = (),
        value: float = float("nan"),
        grad_fault_at_calls: Sequence[int] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.at_calls, self.value, self.grad_fault_at_calls = set(at_calls), float(value), set(grad_fault_at_calls)
        self.calls = 0

    def forward(self, restored: Tensor, target: Tensor) -> Tensor:
        loss = super().forward(restored, target)
        call, self.calls = self.calls, self.calls + 1
        if call in self.grad_fault_at_calls:
            loss = loss + torch.sqrt((restored * 0).sum())
        return loss * self.value if call in self.at_calls else loss


class PoisonCheckpointAt(L.Callback):
    """From ``step`` on, puts an object that cannot be pickled into every checkpoint: the save fails midway."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if trainer.global_step >= self.step:
            checkpoint["poison"] = lambda: None


class SigtermAt(L.Callback):
    """Sends this process SIGTERM, as a scheduler would, at ``step`` during ``when``: ``train`` (after that
    step's optimiser update) or ``validation`` (while that step's validation runs)."""

    def __init__(self, step: int, when: str = "train") -> None:
        self.step, self.when, self.sent = step, when, False

    def _send(self, trainer: L.Trainer) -> None:
        if not self.sent and trainer.global_step >= self.step:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.when == "train":
            self._send(trainer)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.when == "validation" and not trainer.sanity_checking:
            self._send(trainer)
