"""Checkpoints kept at chosen steps of one training job, for a learning curve scored afterwards.

``laformer-train callbacks=[default,curve_checkpoints] "callbacks.curve_checkpoints.steps=[250,500,1000,2000]"``
keeps ``checkpoints/curve/step0000250.ckpt`` ... and records, for each, the step and the training time measured
so far in ``checkpoints/curve/curve.json``. A study then scores each kept checkpoint on the held-out photos
(``laformer-eval ckpt_path=...``) and draws held-out PSNR against steps and against training time
(``laformer.reports.learning_curve_rows`` / ``plot_learning_curves``).

Why a callback of our own rather than Lightning's ``ModelCheckpoint(every_n_train_steps=..., save_top_k=-1)``: a
curve wants uneven steps (250, 500, 1000, 2000: doubling), and each point needs the training time it took, as
``TrainingThroughput`` measures it (forward, backward and optimiser step; no validation, no data loading), carried
across a resume from ``last.ckpt``, where that callback starts counting from zero again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from laformer.io_atomic import atomic_write_json

CURVE_RECORDS = "curve.json"


def curve_checkpoint_name(step: int) -> str:
    """``step0000250.ckpt``: sorted by name is sorted by step."""
    return f"step{step:07d}.ckpt"


class CurveCheckpoints(Checkpoint):
    """Save the full training state at each step of ``steps`` and record ``{step, train_time_s, checkpoint}``.

    A subclass of Lightning's ``Checkpoint`` so that Lightning runs it after every other callback of a batch
    (it moves checkpoint callbacks to the end): ``TrainingThroughput`` has then counted the step just taken.

    Args:
        dirpath: where the checkpoints and ``curve.json`` go (``<run>/checkpoints/curve`` in the config).
        steps: optimiser steps to keep a checkpoint at; steps beyond ``trainer.max_steps`` never come.
    """

    def __init__(self, dirpath: str | Path, steps: Sequence[int] = ()) -> None:
        self.dirpath = Path(dirpath)
        self.steps = sorted({int(s) for s in steps})
        if any(s <= 0 for s in self.steps):
            raise ValueError(f"curve checkpoint steps must be positive, got {list(steps)}")
        self.records: list[dict[str, Any]] = []
        self._time_before = 0.0  # training seconds of earlier attempts of this job (before a resume)

    # -- training time, across resumes ----------------------------------------------------------------------
    def train_time_s(self, trainer: L.Trainer) -> float | None:
        """Training seconds so far: earlier attempts plus this one's ``TrainingThroughput`` (None without it)."""
        from laformer.training.callbacks import TrainingThroughput

        throughput = next((c for c in trainer.callbacks if isinstance(c, TrainingThroughput)), None)
        if throughput is None:
            return None
        return self._time_before + sum(throughput.durations)

    def state_dict(self) -> dict[str, Any]:
        return {"records": list(self.records), "time_before": self._time_now}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records = list(state_dict.get("records", []))
        self._time_before = float(state_dict.get("time_before", 0.0))

    _time_now = 0.0  # refreshed each batch, so state_dict (called without the trainer) can store it

    # -- hooks ----------------------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        now = self.train_time_s(trainer)
        self._time_now = self._time_before if now is None else now
        step = trainer.global_step
        if step not in self.steps or any(r["step"] == step for r in self.records):
            return
        path = self.dirpath / curve_checkpoint_name(step)
        record = {"step": step, "train_time_s": None if now is None else round(now, 3), "checkpoint": path.name}
        record["saved_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.records.append(record)  # before saving, so the checkpoint's own state lists itself
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            atomic_write_json(self.dirpath / CURVE_RECORDS, {"records": self.records})


def read_curve_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's kept checkpoints (``checkpoints/curve/curve.json``), each with its absolute path."""
    folder = Path(run_dir) / "checkpoints" / "curve"
    path = folder / CURVE_RECORDS
    if not path.is_file():
        return []
    import json

    records = json.loads(path.read_text()).get("records", [])
    return [{**r, "checkpoint": str(folder / r["checkpoint"])} for r in records]
