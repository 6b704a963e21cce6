"""Training throughput: timed by a callback on a real Trainer, and written into every run's summary."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from laformer.cli.train import train
from laformer.training.callbacks import TrainingThroughput
from tests.conftest import FAST_DEMO
from tests.training.quiet import quiet_cpu_trainer


class _Regression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 4)

    def training_step(self, batch, batch_idx):
        return (self.layer(batch["input"]) - batch["input"]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_callback_times_every_batch_and_rates_exclude_the_warmup() -> None:
    batches = [{"input": torch.randn(3, 4)} for _ in range(5)]
    throughput = TrainingThroughput(warmup=1)
    trainer = quiet_cpu_trainer(max_steps=5, callbacks=[throughput])
    trainer.fit(_Regression(), DataLoader(batches, batch_size=None))
    summary = throughput.summary()
    assert summary["batches"] == 5 and len(throughput.durations) == 5
    assert summary["train_time_s"] == pytest.approx(sum(throughput.durations), abs=1e-3)
    after_warmup = sum(throughput.durations[1:])
    assert summary["batches_per_s"] == pytest.approx(4 / after_warmup, rel=1e-3)
    assert summary["images_per_s"] == pytest.approx(12 / after_warmup, rel=1e-3)
    assert throughput.summary(world_size=2)["images_per_s"] == pytest.approx(24 / after_warmup, rel=1e-3)


def test_a_single_batch_is_rated_on_its_own_time() -> None:
    throughput = TrainingThroughput(warmup=1)
    throughput.durations, throughput.images = [0.5], [8]
    assert throughput.summary() == {"batches": 1, "train_time_s": 0.5, "batches_per_s": 2.0, "images_per_s": 16.0}
    assert TrainingThroughput().summary()["images_per_s"] is None  # nothing trained


def test_run_summary_records_throughput_network_and_precision(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train", [*FAST_DEMO, "trainer.max_steps=3", "trainer.val_check_interval=3"])
    summary = train(cfg)
    written = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert written["throughput"]["batches"] == 3 and written["throughput"]["images_per_s"] > 0
    assert written["precision"] == "32-true"
    assert written["net"]["name"] == "tiny" and written["net"]["width"] == 8 and written["net"]["attention"] == "rela"
    assert summary["throughput"] == written["throughput"]
