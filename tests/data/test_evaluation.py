"""Scoring in each dataset's declared protocol, through a real ``trainer.test`` and through ``laformer-eval``.

An identity network "restores" each input, so the expected scores are those of the degraded inputs against
their targets, computed independently with scikit-image from the files on disk.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import skimage.data
import skimage.io
import torch
from omegaconf import OmegaConf
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from laformer.cli.evaluate import evaluate
from laformer.data import BenchmarkDataModule
from laformer.metrics import score
from laformer.models import LAformer
from laformer.training import RestorationModule
from laformer.training.callbacks import StoreNetConfig

SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def write_photo_pairs(folder: Path, sizes: list[tuple[int, int]], noise: float = 8.0, shift: int = 0) -> None:
    """Photo crops as targets, noisy (and optionally shifted) copies as inputs, 8-bit PNG."""
    photo = skimage.data.astronaut()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        top, left = 40 + 30 * i, 60 + 20 * i
        target = photo[top : top + h, left : left + w]
        source = photo[top + shift : top + shift + h, left + shift : left + shift + w]
        noisy = np.clip(source + rng.normal(0, noise, source.shape), 0, 255).round().astype(np.uint8)
        (folder / "input").mkdir(parents=True, exist_ok=True)
        (folder / "target").mkdir(parents=True, exist_ok=True)
        skimage.io.imsave(folder / "input" / f"{i}.png", noisy, check_contrast=False)
        skimage.io.imsave(folder / "target" / f"{i}.png", target, check_contrast=False)


def reference_y_centre16_border4(folder: Path, name: str) -> tuple[float, float]:
    """4K-Rain13k's protocol from the files: centre crop to x16, Y (BT.601), 4-pixel border, 8-bit."""
    inp = skimage.io.imread(folder / "input" / f"{name}.png").astype(np.float64) / 255
    tgt = skimage.io.imread(folder / "target" / f"{name}.png").astype(np.float64) / 255
    h, w = inp.shape[:2]
    th, tw = h // 16 * 16, w // 16 * 16
    top, left = (h - th) // 2, (w - tw) // 2
    inp, tgt = (x[top : top + th, left : left + tw] for x in (inp, tgt))
    y_in, y_tgt = (rgb2ycbcr(x)[4:-4, 4:-4, 0] / 255 for x in (inp, tgt))
    return peak_signal_noise_ratio(y_tgt, y_in, data_range=1.0), structural_similarity(y_tgt, y_in, **SSIM)


def identity_trainer_test(module: BenchmarkDataModule) -> tuple[RestorationModule, list[dict]]:
    net = RestorationModule(net=torch.nn.Identity(), protocol=module.protocol)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)
    return net, trainer.test(net, datamodule=module, verbose=False)


def test_trainer_test_scores_in_the_declared_protocol(tmp_path: Path) -> None:
    folder = tmp_path / "4K-Rain13k" / "Test"
    write_photo_pairs(folder, [(45, 61), (50, 70)])
    module = BenchmarkDataModule("uhd_rain", root=str(tmp_path), test_sets=["uhd_rain"], num_workers=0)
    assert (module.protocol.color, module.protocol.crop_border, module.protocol.size_policy) == ("y", 4, "center_crop")
    net, logged = identity_trainer_test(module)
    records = {r["name"]: r for r in net.test_records}
    assert set(records) == {"0", "1"}
    for name, record in records.items():
        ref_psnr, ref_ssim = reference_y_centre16_border4(folder, name)
        assert record["psnr"] == pytest.approx(ref_psnr, abs=1e-4)
        assert record["ssim"] == pytest.approx(ref_ssim, abs=1e-5)
    mean_psnr = np.mean([r["psnr"] for r in records.values()])
    assert logged[0]["test/4K-Rain13k/psnr"] == pytest.approx(mean_psnr, abs=1e-4)


def test_each_test_set_is_scored_in_its_own_protocol(tmp_path: Path) -> None:
    """GoPro's test sets: HIDE as GoPro, RealBlur with its alignment (the inputs are shifted by 2 pixels)."""
    write_photo_pairs(tmp_path / "test" / "GoPro", [(48, 48)], noise=4)
    write_photo_pairs(tmp_path / "test" / "RealBlur_J", [(64, 64)], noise=2, shift=2)
    module = BenchmarkDataModule("gopro", root=str(tmp_path), test_sets=["gopro", "realblur_j"], num_workers=0)
    net, _ = identity_trainer_test(module)
    records = {r["set"]: r for r in net.test_records}
    assert set(records) == {"GoPro", "RealBlur-J"}
    folder = tmp_path / "test" / "RealBlur_J"
    inp, tgt = (
        torch.from_numpy(skimage.io.imread(folder / d / "0.png")).permute(2, 0, 1)[None] / 255
        for d in ("input", "target")
    )
    aligned = score(inp, tgt, module.protocols["RealBlur-J"])
    unaligned = score(inp, tgt, module.protocol)
    assert records["RealBlur-J"]["psnr"] == pytest.approx(aligned["psnr"].item(), abs=1e-6)
    assert records["RealBlur-J"]["psnr"] > unaligned["psnr"].item() + 3


def test_laformer_eval_prints_a_row_for_every_test_set_of_the_task(make_cfg, tmp_path: Path, capsys) -> None:
    data = tmp_path / "Datasets"
    for name in ("Rain100H", "Rain100L", "Test100", "Test1200", "Test2800"):
        write_photo_pairs(data / "test" / name, [(24, 32)])
    net_cfg = {"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "width": 8}
    net = LAformer.from_preset("tiny", width=8)
    ckpt = tmp_path / "model.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, StoreNetConfig.KEY: net_cfg}, ckpt)
    cfg = make_cfg(
        "eval",
        [
            "experiment=derain_rain13k",
            "trainer=cpu",
            "logger=csv",
            f"ckpt_path={ckpt}",
            f"data.root={data}",
            "data.num_workers=0",
            "data.pin_memory=false",
        ],
        run_dir=tmp_path / "eval",
    )
    assert OmegaConf.select(cfg, "data.protocol.color") == "y"
    result = evaluate(cfg)
    printed = capsys.readouterr().out
    for name in ("Rain100H", "Rain100L", "Test100", "Test1200", "Test2800"):
        assert name in result["benchmarks"] and result["benchmarks"][name]["images"] == 1
        assert any(line.startswith(name) for line in printed.splitlines())
    assert (tmp_path / "eval" / "metrics.csv").is_file()
