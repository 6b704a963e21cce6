"""The demo's noisy validation images are what a noisy PNG holds: restoring the saved file with
``laformer-restore`` scores what validation scored."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest

from laformer.cli.restore import main as restore_main
from laformer.cli.train import train
from laformer.data.io import read_image, write_image
from laformer.metrics import score
from tests.conftest import FAST_DEMO


def test_restoring_the_saved_noisy_png_gives_the_validation_psnr(make_cfg, tmp_path: Path) -> None:
    overrides = [
        *FAST_DEMO,
        "data.val_photos=[chelsea,coins]",
        "trainer.max_steps=8",
        "trainer.val_check_interval=8",
        "callbacks.image_grid=null",
    ]
    cfg = make_cfg("train", overrides, tmp_path / "run")
    assert (cfg.data.degradation.clip, cfg.data.degradation.quantize) == (True, 8)  # the demo's default
    summary = train(cfg)
    checkpoint = summary["last_checkpoint"]  # written at the step-8 validation
    metrics = summary["metrics"]

    datamodule = hydra.utils.instantiate(cfg.data)
    protocol = hydra.utils.instantiate(cfg.module).protocol
    val = datamodule.val_dataset()
    noisy_dir, out_dir = tmp_path / "noisy", tmp_path / "restored"
    for i in range(len(val)):
        item = val[i]
        write_image(noisy_dir / f"{item['name']}.png", item["input"])
        # The file holds exactly the input validation gave the network.
        assert read_image(noisy_dir / f"{item['name']}.png").equal(item["input"])
    assert restore_main([str(noisy_dir), "-o", str(out_dir), "--ckpt", str(checkpoint), "--device", "cpu"]) == 0

    restored_psnr, input_psnr = [], []
    for i in range(len(val)):
        item = val[i]
        restored = read_image(out_dir / f"{item['name']}.png")
        noisy = read_image(noisy_dir / f"{item['name']}.png")
        assert (restored - noisy).abs().mean() > 2 / 255, "the network must change the image for the check to bite"
        restored_psnr.append(float(score(restored[None], item["target"][None], protocol)["psnr"][0]))
        input_psnr.append(float(score(noisy[None], item["target"][None], protocol)["psnr"][0]))
    assert sum(input_psnr) / 2 == pytest.approx(metrics["val/input_psnr"], abs=1e-6)
    assert sum(restored_psnr) / 2 == pytest.approx(metrics["val/psnr"], abs=0.05)
