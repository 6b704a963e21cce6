"""The demo's bundled photos and its three fixed splits: train, validation, held-out test."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from laformer.data.demo import (
    BUNDLED_PHOTOS,
    DEMO_TEST,
    DEMO_TRAIN,
    DEMO_VAL,
    TEST_SEED_OFFSET,
    DemoDataModule,
    check_disjoint,
    load_demo_photo,
)


def test_every_bundled_photo_loads_without_a_download(monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("a bundled photo tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name, what in BUNDLED_PHOTOS.items():
        photo = load_demo_photo(name)
        assert photo.dtype == np.uint8, name
        colour = what.startswith("colour")
        assert photo.ndim == (3 if colour else 2), name
        assert min(photo.shape[:2]) >= 172, name
        assert photo.std() > 10, f"{name} is nearly flat"
        # Not an upscaled copy whose pixels come in equal pairs (skimage's moon file is one: read at half size).
        pixels = photo.astype(int)
        assert (pixels[0:-1:2] == pixels[1::2]).mean() < 0.6, name
        assert (pixels[:, 0:-1:2] == pixels[:, 1::2]).mean() < 0.6, name


def test_the_three_splits_are_disjoint_and_use_only_bundled_photos() -> None:
    splits = {"training": DEMO_TRAIN, "validation": DEMO_VAL, "test": DEMO_TEST}
    check_disjoint(splits)
    names = [n for split in splits.values() for n in split]
    assert len(names) == len(set(names))
    assert set(names) <= set(BUNDLED_PHOTOS)
    assert set(names) == set(BUNDLED_PHOTOS), "every bundled natural photo is used by one split"


def test_the_held_out_set_is_varied() -> None:
    assert len(DEMO_TEST) > 2
    kinds = " ".join(BUNDLED_PHOTOS[n] for n in DEMO_TEST)
    for content in ("texture", "sky", "face", "animal", "night", "colour", "grey"):
        assert content in kinds, f"no {content} photo in the held-out set"


@pytest.mark.parametrize(
    "splits",
    [
        {"training": ("coffee",), "validation": ("coffee",), "test": ()},
        {"training": ("motorcycle",), "validation": (), "test": ("motorcycle_right",)},  # one scene, two views
        {"training": (), "validation": ("grass",), "test": ("grass", "camera")},
    ],
)
def test_a_scene_in_two_splits_is_refused(splits) -> None:
    with pytest.raises(ValueError, match="both the"):
        check_disjoint(splits)
    with pytest.raises(ValueError, match="both the"):
        DemoDataModule(train_photos=splits["training"], val_photos=splits["validation"], test_photos=splits["test"])


def test_test_sets_are_validation_and_held_out_seeded_apart() -> None:
    dm = DemoDataModule(val_photos=("coins",), test_photos=("grass", "camera"), val_crop=64, test_crop=48, seed=3)
    dm.setup("test")
    assert list(dm._tests) == ["demo-val", "demo-test"]
    val, test = dm._tests["demo-val"], dm._tests["demo-test"]
    assert len(test) == 2 and [test[i]["name"] for i in range(2)] == ["grass", "camera"]
    assert test[0]["set"] == "demo-test"
    assert val[0]["target"].shape == (3, 64, 64) and test[0]["target"].shape == (3, 48, 48)
    # Grey photos are replicated to RGB; the noise is per channel and stored as 8-bit values.
    target = test[1]["target"]
    assert torch.equal(target[0], target[1]) and torch.equal(target[1], target[2])
    noise = test[0]["input"] - test[0]["target"]
    assert noise.std().item() == pytest.approx(25 / 255, rel=0.1)
    assert torch.equal(test[0]["input"], (test[0]["input"] * 255).round() / 255)
    # Image i of the test set is seeded seed + TEST_SEED_OFFSET + i: the same input every time ...
    generator = torch.Generator().manual_seed(3 + TEST_SEED_OFFSET + 1)
    expected = dm.degradation(target.unsqueeze(0), generator).squeeze(0)
    assert torch.equal(test[1]["input"], expected)
    # ... and not the noise of validation image 0 or 1.
    again = DemoDataModule(val_photos=("coins",), test_photos=("grass", "camera"), val_crop=64, test_crop=48, seed=3)
    assert torch.equal(again.test_dataset()[0]["input"], test[0]["input"])
    val_noise = val[0]["input"] - val[0]["target"]
    assert not torch.allclose(val_noise[:, :48, :48], noise[:, :48, :48])


def test_without_held_out_photos_test_scores_validation_only() -> None:
    dm = DemoDataModule(val_photos=("coins",), test_photos=(), val_crop=32)
    assert list(dm.test_datasets()) == ["demo-val"]
