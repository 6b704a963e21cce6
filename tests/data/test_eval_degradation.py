"""BenchmarkDataModule(eval_degradation=...): ground-truth-only test sets degraded by Gaussian noise per sigma (the
default) or by the training degradation itself (a task such as low light), seeded per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.data import BenchmarkDataModule
from laformer.data.degradations import GaussianNoise
from laformer.data.io import write_image
from laformer.data.photometric import LowLight


def _dfwb(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for rel in ("train/DFWB/DIV2K-0001-1.png", "test/CBSD68/0000.png", "test/CBSD68/0001.png"):
        image = torch.from_numpy(rng.uniform(0.2, 0.9, size=(3, 40, 48)).astype(np.float32))
        write_image(root / rel, image)
    return root


def _module(root: Path, **kwargs) -> BenchmarkDataModule:
    module = BenchmarkDataModule("dfwb", root=str(root), test_sets=["cbsd68"], num_workers=0, **kwargs)
    module.setup("test")
    return module


def test_default_is_one_gaussian_set_per_sigma(tmp_path) -> None:
    module = _module(_dfwb(tmp_path), degradation=LowLight(), test_sigmas=[15, 50])
    assert list(module._tests) == ["CBSD68-s15", "CBSD68-s50"] == list(module.protocols)


def test_train_mode_degrades_the_test_images_like_training(tmp_path) -> None:
    module = _module(_dfwb(tmp_path), degradation=LowLight(), eval_degradation="train")
    assert list(module._tests) == ["CBSD68"] == list(module.protocols)
    first = module._tests["CBSD68"][0]
    assert first["input"].mean() < 0.5 * first["target"].mean()  # dark, as LowLight makes it
    again = _module(tmp_path, degradation=LowLight(), eval_degradation="train")._tests["CBSD68"][0]
    assert torch.equal(first["input"], again["input"])  # seeded per image
    noise = _module(tmp_path, degradation=GaussianNoise(50.0), eval_degradation="train")._tests["CBSD68"][0]
    assert 40 / 255 < (noise["input"] - noise["target"]).std() < 60 / 255


def test_bad_modes_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="eval_degradation must be one of"):
        BenchmarkDataModule("dfwb", root=str(tmp_path), eval_degradation="same")
    with pytest.raises(ValueError, match=r"needs a training data\.degradation"):
        BenchmarkDataModule("dfwb", root=str(tmp_path), eval_degradation="train")
