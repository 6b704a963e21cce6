"""A clean first run: the run folder's train.log holds the log, the per-epoch logging-interval warning shows once,
and the progress bar counts steps against max_steps (not ``Epoch 66/-2``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import torch

from laformer.training.progress import StepProgressBar
from tests.conftest import FAST_DEMO

WARNING = "is smaller than the logging interval"


def test_train_log_holds_lightnings_messages_and_the_warning_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    overrides = [o for o in FAST_DEMO if o != "logger=csv"]
    cmd = [
        sys.executable,
        "-m",
        "laformer.cli.train",
        *overrides,
        "logger=csv",
        "trainer.log_every_n_steps=50",  # more than the 1 batch an epoch holds here: Lightning warns every epoch
        "trainer.max_steps=3",
        "trainer.val_check_interval=3",
        f"hydra.run.dir={run}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (run / "train.log").read_text()
    assert "`Trainer.fit` stopped: `max_steps=3` reached" in log
    assert log.count(WARNING) == 1  # three epochs, one warning
    assert (done.stdout + done.stderr).count(WARNING) == 1
    assert "Tip:" not in log + done.stdout + done.stderr  # Lightning's advertising tips
    assert "LeafSpec" not in log + done.stderr  # a deprecation inside Lightning's own code, once per stage


class RecordingBar(StepProgressBar):
    """Keeps what the train bar showed after each batch (the real bar, read back from its rich task)."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[tuple[float | None, float, str]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        task = self.train_task
        self.shown.append((task.total, task.completed, task.description))


def test_step_bar_counts_the_whole_run() -> None:
    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Conv2d(1, 1, 1)

        def training_step(self, batch, batch_idx):
            return self.net(batch[0]).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    bar = RecordingBar()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(2, 1, 4, 4)), batch_size=1)
    trainer = L.Trainer(max_steps=5, max_epochs=-1, callbacks=[bar], logger=False, enable_checkpointing=False)
    trainer.fit(Tiny(), data)
    assert [shown[:2] for shown in bar.shown] == [(5, step) for step in range(1, 6)]  # one bar across 3 epochs
    assert bar.shown[-1][2] == "step 5/5 (epoch 2)" and "-2" not in bar.shown[-1][2]
