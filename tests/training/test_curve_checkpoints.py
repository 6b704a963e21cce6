"""Checkpoints kept at chosen steps of a ``laformer-train`` job (``callbacks=[default,curve_checkpoints]``), each
with the training time ``TrainingThroughput`` measured up to it, carried across a resume."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from laformer.cli.train import train
from laformer.inference.checkpoint import load_network
from laformer.training.callbacks import TrainingThroughput
from laformer.training.curve_checkpoints import CurveCheckpoints, read_curve_records
from tests.conftest import FAST_DEMO


def test_a_training_job_keeps_a_checkpoint_at_each_curve_step(make_cfg, tmp_path: Path) -> None:
    overrides = [*FAST_DEMO, "callbacks=[default,curve_checkpoints]", "callbacks.curve_checkpoints.steps=[2,4,9]"]
    summary = train(make_cfg("train", [*overrides, "trainer.max_steps=5", "trainer.val_check_interval=5"]))
    run = tmp_path / "run"
    curve = run / "checkpoints" / "curve"
    assert sorted(p.name for p in curve.glob("*.ckpt")) == ["step0000002.ckpt", "step0000004.ckpt"]  # 9 never came
    records = read_curve_records(run)
    assert [r["step"] for r in records] == [2, 4]
    assert records[0]["checkpoint"] == str(curve / "step0000002.ckpt")
    first, second = (r["train_time_s"] for r in records)
    assert 0 < first < second <= summary["throughput"]["train_time_s"] + 1e-3  # the step just taken is counted
    state = torch.load(curve / "step0000004.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 4
    net, config = load_network(str(curve / "step0000004.ckpt"))  # what laformer-eval scores
    assert config["width"] == 8 and sum(p.numel() for p in net.parameters()) > 0
    assert json.loads((curve / "curve.json").read_text())["records"][1]["checkpoint"] == "step0000004.ckpt"


def test_training_time_goes_on_across_a_resume() -> None:
    throughput = TrainingThroughput()
    throughput.durations = [1.0, 2.0]
    trainer = SimpleNamespace(callbacks=[throughput])
    curve = CurveCheckpoints("unused", steps=[3, 1, 3])
    assert curve.steps == [1, 3]
    curve.load_state_dict({"records": [{"step": 1, "train_time_s": 4.0}], "time_before": 10.0})  # from last.ckpt
    assert curve.train_time_s(trainer) == pytest.approx(13.0)
    assert curve.train_time_s(SimpleNamespace(callbacks=[])) is None  # no throughput callback, no time
    with pytest.raises(ValueError, match="positive"):
        CurveCheckpoints("unused", steps=[0, 5])
