"""Real Lightning training runs of the demo through the composed configs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import open_dict

from laformer.cli.evaluate import evaluate
from laformer.cli.train import train
from tests.conftest import FAST_DEMO


@pytest.mark.parametrize("attention", ["rela", "linear", "softmax"])
def test_fast_dev_run_each_attention(make_cfg, attention):
    cfg = make_cfg("train", [*FAST_DEMO, f"model.attention={attention}", "trainer.fast_dev_run=true"])
    summary = train(cfg)
    assert summary["attention"] == attention
    assert summary["steps"] == 1
    assert summary["metrics"]["val/psnr"] > 0


def test_overfit_one_batch_loss_falls(make_cfg, tmp_path):
    cfg = make_cfg(
        "train",
        [
            *FAST_DEMO,
            "trainer.overfit_batches=1",
            "trainer.max_steps=60",
            "trainer.val_check_interval=null",
            "trainer.check_val_every_n_epoch=1000",
            "data.augment=false",
            "module.optimizer.lr=2e-3",
            "callbacks.model_checkpoint=null",
        ],
    )
    train(cfg)
    log = pd.read_csv(Path(cfg.paths.output_dir) / "csv" / "metrics.csv")
    losses = log["train/loss"].dropna().to_numpy()
    assert len(losses) >= 50
    first, last = losses[:5].mean(), losses[-5:].mean()
    assert last < 0.6 * first, f"loss fell only from {first:.4f} to {last:.4f}"


def test_train_then_eval_agree(make_cfg, tmp_path):
    cfg = make_cfg("train", [*FAST_DEMO, "trainer.max_steps=6", "trainer.val_check_interval=6"])
    summary = train(cfg)
    best = summary["best_checkpoint"]
    assert Path(best).is_file() and Path(summary["last_checkpoint"]).is_file()
    assert (Path(cfg.paths.output_dir) / "summary.json").is_file()
    assert (Path(cfg.paths.output_dir) / "val_grid.png").is_file()

    eval_dir = tmp_path / "eval"
    eval_cfg = make_cfg(
        "eval",
        [
            "experiment=demo",
            "logger=csv",
            "data.val_photos=[chelsea]",
            "data.val_crop=96",
            "data.test_photos=[]",  # chelsea is one of the demo's held-out test photos
            f"ckpt_path={best}",
            "save_images=true",
        ],
        run_dir=eval_dir,
    )
    result = evaluate(eval_cfg)
    scored = result["benchmarks"]["demo-val"]
    # The net is rebuilt from the config stored in the checkpoint (width 8), not eval's default model.
    assert result["model"] == "tiny"
    assert scored["psnr"] == pytest.approx(summary["metrics"]["val/psnr"], abs=1e-4)
    assert scored["input_psnr"] == pytest.approx(summary["metrics"]["val/input_psnr"], abs=1e-4)
    rows = pd.read_csv(eval_dir / "metrics.csv")
    assert list(rows["name"]) == ["chelsea"]
    assert (eval_dir / "images" / "demo-val" / "chelsea.png").is_file()
    assert json.loads((eval_dir / "summary.json").read_text())["benchmarks"]["demo-val"]["images"] == 1


def test_resume_from_last_continues_step_count(make_cfg, tmp_path):
    run_dir = tmp_path / "resumable"
    first = train(make_cfg("train", [*FAST_DEMO, "trainer.max_steps=4", "trainer.val_check_interval=4"], run_dir))
    assert first["steps"] == 4
    cfg = make_cfg(
        "train", [*FAST_DEMO, "trainer.max_steps=8", "trainer.val_check_interval=4", "ckpt_path=last"], run_dir
    )
    second = train(cfg)
    assert second["steps"] == 8


def test_nan_loss_stops_with_step(make_cfg):
    cfg = make_cfg("train", [*FAST_DEMO, "trainer.max_steps=3", "module.loss.eps=nan"])
    with pytest.raises(FloatingPointError, match=r"at step 0"):
        train(cfg)


def test_wandb_offline_run_leaves_files(make_cfg):
    cfg = make_cfg("train", [*FAST_DEMO, "logger=[wandb,csv]", "trainer.max_steps=2", "trainer.val_check_interval=2"])
    with open_dict(cfg):
        cfg.logger.wandb.offline = True
    train(cfg)
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = list(runs[0].glob("*.wandb"))
    assert len(records) == 1, "no .wandb record file in the offline run"
    # Offline runs keep config and history in the record file, uploaded later by `wandb sync`.
    content = records[0].read_bytes()
    for expected in (b"attention", b"rela", b"val/psnr", b"train/loss"):
        assert expected in content, f"{expected!r} missing from the offline wandb record"
    images = list((runs[0] / "files" / "media" / "images").rglob("*.png"))
    assert images, "the validation image grid was not logged to wandb"
