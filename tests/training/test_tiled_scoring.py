"""Tiled scoring at test time (laformer.training.tiled_scoring): a real training run scores every test image whole
and in tiles of the training crop, and both land in summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from laformer.cli.train import train
from laformer.inference.tiling import tiled_forward
from laformer.models import LAformer, network_info
from laformer.training.tiled_scoring import TiledScoring
from tests.conftest import FAST_DEMO
from tests.reliability.common import merged


def _run(make_cfg, tmp_path: Path, tile: str) -> dict:
    overrides = merged(
        FAST_DEMO,
        [
            "callbacks=[default,tiled_scoring]",
            "callbacks.progress_bar=null",
            "callbacks.anchors.methods=[]",
            f"callbacks.tiled_scoring.tile={tile}",
            "test_after_fit=true",
            "data.test_photos=[coins]",
            "data.test_crop=80",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
        ],
    )
    train(make_cfg("train", overrides, tmp_path / "run"))
    return json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]


def test_each_test_set_is_scored_whole_and_in_tiles_of_the_crop(make_cfg, tmp_path) -> None:
    metrics = _run(make_cfg, tmp_path, "${data.patch_size}")
    for set_name in ("demo-val", "demo-test"):
        assert metrics[f"test/{set_name}/tile"] == 32.0  # FAST_DEMO's crop
        assert metrics[f"test/{set_name}/tiled_psnr"] > 0 and 0 < metrics[f"test/{set_name}/tiled_ssim"] <= 1
        assert metrics[f"test/{set_name}/tiled_psnr"] != metrics[f"test/{set_name}/psnr"]  # 9 tiles, not one pass


def test_a_tile_as_large_as_the_image_scores_the_one_pass_result(make_cfg, tmp_path) -> None:
    metrics = _run(make_cfg, tmp_path, "128")  # the 96 and 80 pixel crops fit in one tile
    for set_name in ("demo-val", "demo-test"):
        assert metrics[f"test/{set_name}/tiled_psnr"] == pytest.approx(metrics[f"test/{set_name}/psnr"], abs=1e-5)


def test_overlap_is_a_quarter_tile_on_the_network_grid() -> None:
    net = LAformer.from_preset("tiny", width=8)
    assert network_info(net).size_multiple == 8
    assert TiledScoring(64).overlap_for(8) == 16 and TiledScoring(32).overlap_for(8) == 8
    assert TiledScoring(16).overlap_for(8) == 0 and TiledScoring(64, overlap=24).overlap_for(8) == 24
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():  # what the callback runs: the net over tiles of 32 with 8 overlapping pixels
        out = tiled_forward(net.eval(), x, 32, TiledScoring(32).overlap_for(8), 8)
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="positive"):
        TiledScoring(0)
