"""Classical anchors in a real training run: same images and protocol as the network, in the summary, the CSV
and the validation grid; computed once per image; skipped with a note when BM3D is missing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import hydra
import pytest
import torch

from laformer.baselines import classical
from laformer.baselines.classical import nl_means
from laformer.cli.train import train
from laformer.metrics import score
from laformer.training.anchors import ClassicalAnchors, dataset_noise_sigma
from tests.conftest import FAST_DEMO

# Held-out set of two small crops, NL-means only (BM3D costs seconds per image).
ANCHORED = [
    *FAST_DEMO,
    "data.test_photos=[grass,camera]",
    "data.test_crop=48",
    "test_after_fit=true",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "callbacks.anchors.methods=[nlmeans]",
]


def _count_nlmeans(monkeypatch) -> list[tuple[int, ...]]:
    calls: list[tuple[int, ...]] = []

    def counted(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        calls.append(tuple(noisy.shape))
        return nl_means(noisy, sigma)

    label, _, packages = classical.ANCHORS["nlmeans"]
    monkeypatch.setitem(classical.ANCHORS, "nlmeans", (label, counted, packages))
    return calls


def test_anchors_score_the_same_images_under_the_same_protocol(make_cfg, monkeypatch, tmp_path: Path) -> None:
    calls = _count_nlmeans(monkeypatch)
    grids = _spy_on_grid(monkeypatch)
    run_dir = tmp_path / "run"
    cfg = make_cfg("train", [*ANCHORED, f"callbacks.anchors.cache_dir={tmp_path / 'cache'}"], run_dir)
    summary = train(cfg)
    metrics = summary["metrics"]

    # Each image once: two validations and the test of the validation photo reuse the first result.
    assert len(calls) == 3, calls  # chelsea (validation), grass and camera (held out)
    assert summary["anchors"]["methods"] == ["nlmeans"] and summary["anchors"]["skipped"] == {}
    assert summary["anchors"]["sigma"] == {"demo-val": 25.0, "demo-test": 25.0}
    assert len(list((tmp_path / "cache").glob("nlmeans-*.npy"))) == 3  # for the next run

    # The logged anchor is NL-means of the validation input the network got, scored by the module's protocol.
    datamodule = hydra.utils.instantiate(cfg.data)
    item = datamodule.val_dataset()[0]
    protocol = hydra.utils.instantiate(cfg.module).protocol
    expected = score(nl_means(item["input"], 25.0).clamp(0, 1)[None], item["target"][None], protocol)
    assert metrics["val/nlmeans_psnr"] == pytest.approx(float(expected["psnr"][0]), abs=1e-4)
    assert metrics["val/nlmeans_ssim"] == pytest.approx(float(expected["ssim"][0]), abs=1e-5)
    assert metrics["val/nlmeans_psnr"] > metrics["val/input_psnr"] + 3
    assert metrics["test/demo-val/nlmeans_psnr"] == pytest.approx(metrics["val/nlmeans_psnr"], abs=1e-6)
    assert "val/bm3d_psnr" not in metrics

    with (run_dir / "test_scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    held_out = {r["name"]: r for r in rows if r["set"] == "demo-test"}
    assert set(held_out) == {"grass", "camera"}
    mean = sum(float(r["nlmeans_psnr"]) for r in held_out.values()) / 2
    assert metrics["test/demo-test/nlmeans_psnr"] == pytest.approx(mean, abs=1e-4)
    network = sum(float(r["network_psnr"]) for r in held_out.values()) / 2
    assert metrics["test/demo-test/psnr"] == pytest.approx(network, abs=1e-4)
    assert json.loads((run_dir / "summary.json").read_text())["anchors"]["methods"] == ["nlmeans"]

    # The validation grid has an NL-means column, captioned with the logged PSNR.
    assert (run_dir / "val_grid.png").is_file()
    assert len(grids) == 2 and all(labels == [("NL-means", metrics["val/nlmeans_psnr"])] for labels in grids)


def _spy_on_grid(monkeypatch) -> list[list[tuple[str, float]]]:
    from laformer.training.callbacks import ValidationImageGrid

    seen: list[list[tuple[str, float]]] = []
    original = ValidationImageGrid.on_validation_epoch_end

    def spy(self, trainer, pl_module):
        original(self, trainer, pl_module)
        seen.append([(label, pytest.approx(psnr, abs=1e-4)) for row in self.rows for label, _, psnr in row.anchors])

    monkeypatch.setattr(ValidationImageGrid, "on_validation_epoch_end", spy)
    return seen


def test_a_missing_bm3d_is_skipped_with_a_note(monkeypatch) -> None:
    monkeypatch.setattr(classical, "_bm3d_module", _missing)
    anchors = ClassicalAnchors(methods=["nlmeans", "bm3d"])
    assert anchors.active == ["nlmeans"]
    with pytest.warns(UserWarning, match="BM3D skipped"):
        anchors.setup(None, None, "fit")
    assert "not installed" in anchors.summary()["skipped"]["bm3d"]
    assert anchors.columns("demo-val", "chelsea") == []


def _missing():
    raise classical.AnchorUnavailable("the optional package bm3d is not installed: pip install bm3d")


def test_anchors_only_for_known_gaussian_noise() -> None:
    from laformer.data.datasets import CenterCropped, DegradedImageDataset, ImageRef
    from laformer.data.degradations import GaussianBlur, GaussianNoise, RandomGaussianNoise

    ref = [ImageRef("x", array=torch.zeros(8, 8, 3).numpy())]
    noisy = DegradedImageDataset(ref, GaussianNoise(15.0, clip=True, quantize=8), "s", seed=0)
    assert dataset_noise_sigma(noisy) == 15.0
    assert dataset_noise_sigma(CenterCropped(noisy, 4)) == 15.0
    assert dataset_noise_sigma(DegradedImageDataset(ref, GaussianBlur(), "s", seed=0)) is None
    assert dataset_noise_sigma(DegradedImageDataset(ref, RandomGaussianNoise(), "s", seed=0)) is None
    assert dataset_noise_sigma(object()) is None
    with pytest.raises(ValueError, match="unknown classical anchor"):
        ClassicalAnchors(methods=["median"])
