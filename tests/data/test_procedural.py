"""Dead-leaves pictures: seeded, natural-looking (scale-invariant spectrum, edges and flat regions), and mixed
into the demo's training epochs at the configured ratio, reproducibly."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pytest
import torch

from laformer.data.degradations import GaussianNoise
from laformer.data.demo import DemoDataModule, center_crop, load_demo_photo
from laformer.data.procedural import DeadLeaves, ProceduralImageDataset
from laformer.data.sampling import SeededItems


def _spectrum_slope(image: np.ndarray) -> float:
    """Slope of log radially averaged power against log frequency (natural photos: about -2)."""
    grey = image.astype(np.float64).mean(-1)
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    n = grey.shape[0]
    y, x = np.indices(power.shape) - n // 2
    radius = np.hypot(y, x).astype(int)
    bands = np.arange(4, n // 2 - 4)
    radial = np.array([power[radius == r].mean() for r in bands])
    return float(np.polyfit(np.log(bands), np.log(radial), 1)[0])


def test_a_picture_is_a_function_of_its_seed() -> None:
    leaves = DeadLeaves()
    a, b, c = leaves.render(48, 7), leaves.render(48, 7), leaves.render(48, 8)
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


# sha256 of the pictures drawn by the shape-by-shape painter that the vectorised one replaced (2026-12-07): the
# training data of every recorded study, so the speed-up must give the same bytes.
PAINTER_DIGESTS = {
    "64": "ff52f739dca8cf8f89a35f5cfccab423d0ea6d7a1942df83cbcf15d082e86b64",
    "17": "60c529b4915568d0c73a55ee50fcd6270e988333447660f64465824a171e0d0c",
    "rectangles-48": "403c3eb089836b2be0e2f09e575c1b89bbfe962d16c2b7e45fb17f573050bda5",
}


def _digest(leaves: DeadLeaves, size: int, seeds: Iterable[int]) -> str:
    digest = hashlib.sha256()
    for seed in seeds:
        digest.update(leaves.render(size, seed).tobytes())
    return digest.hexdigest()


def test_the_vectorised_painter_draws_the_same_pixels_as_before() -> None:
    leaves = DeadLeaves()
    assert _digest(leaves, 64, (s * 7919 + 64 for s in range(40))) == PAINTER_DIGESTS["64"]
    assert _digest(leaves, 17, (s * 7919 + 17 for s in range(40))) == PAINTER_DIGESTS["17"]
    crowded = DeadLeaves(rectangles=0.9, coverage=6.0, grey=0.5)  # mostly rotated rectangles, large ones clipped
    assert _digest(crowded, 48, range(20)) == PAINTER_DIGESTS["rectangles-48"]


def test_pictures_look_like_natural_images() -> None:
    leaves = DeadLeaves()
    pictures = [leaves.render(128, seed) for seed in range(12)]
    slopes = [_spectrum_slope(p) for p in pictures]
    photos = []
    for name in ("astronaut", "chelsea", "rocket", "camera", "grass", "moon"):
        photo = center_crop(load_demo_photo(name), 128)
        photos.append(_spectrum_slope(photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, -1)))
    # Power falls as 1/f^a with a near 2 to 3, as in the photos (white noise: 0; a smooth ramp: far steeper);
    # the random blur spreads the pictures over the photos' range.
    assert all(-4.0 < s < -1.6 for s in slopes), slopes
    assert min(photos) < float(np.median(slopes)) < max(photos), (slopes, photos)
    assert max(slopes) - min(slopes) > 0.5
    for p in pictures:
        assert len(np.unique(p.reshape(-1, 3), axis=0)) > 50  # many regions, not a few flat blobs
        assert p.std() > 20  # contrast
    # Some are grey, most are in colour.
    many = [leaves.render(32, seed) for seed in range(40)]
    grey = [np.array_equal(p[..., 0], p[..., 2]) for p in many]
    assert 0 < sum(grey) < len(many) // 2


def test_procedural_samples_follow_the_per_sample_seed() -> None:
    dataset = SeededItems(ProceduralImageDataset(DeadLeaves(), GaussianNoise(25.0, True, 8), 32, length=4))
    a, b, c = dataset[(1, 123)], dataset[(1, 123)], dataset[(1, 124)]
    assert a["target"].shape == a["input"].shape == (3, 32, 32)
    assert torch.equal(a["target"], b["target"]) and torch.equal(a["input"], b["input"])
    assert not torch.equal(a["target"], c["target"])
    assert a["name"] == "dead_leaves"
    with pytest.raises(IndexError):
        dataset.dataset[4]


def test_seeded_items_draw_what_torch_manual_seed_drew_and_restore_the_generator() -> None:
    """The per-item seeding touches the CPU generator only (no accelerator reseeding), with the same draws as
    ``torch.manual_seed`` gave the recorded studies, and leaves the caller's random state as it found it."""
    import random

    inner = ProceduralImageDataset(DeadLeaves(), GaussianNoise(25.0, True, 8), 32, length=4)
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    item = SeededItems(inner)[(2, 555)]
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(555)
    np.random.seed(555)
    random.seed(555)
    reference = inner[2]
    assert torch.equal(item["input"], reference["input"]) and torch.equal(item["target"], reference["target"])


def _mixed(**kwargs) -> DemoDataModule:
    defaults = dict(
        batch_size=4,
        patch_size=32,
        num_workers=0,
        repeat=3,
        train_photos=("brick", "coins"),
        val_photos=("chelsea",),
        test_photos=(),
        procedural="dead_leaves",
        procedural_ratio=0.5,
    )
    return DemoDataModule(**{**defaults, **kwargs})


def test_training_epochs_mix_photos_and_dead_leaves_at_the_ratio() -> None:
    dm = _mixed()
    dm.setup("fit")
    assert len(dm._train) == 12  # 2 photos x 3 repeats, and as many procedural samples (ratio 0.5)
    dm.sampling_seed = 5
    names = Counter(name for batch in dm.train_dataloader() for name in batch["name"])
    assert names == Counter({"dead_leaves": 6, "brick": 3, "coins": 3})

    quarter = _mixed(procedural_ratio=0.25)
    quarter.setup("fit")
    assert len(quarter._train) == 8  # 6 photo samples + 2 procedural
    photos_only = _mixed(procedural=None, procedural_ratio=0.0)
    photos_only.setup("fit")
    assert len(photos_only._train) == 6


def test_mixed_epochs_are_reproducible() -> None:
    runs = []
    for _ in range(2):
        dm = _mixed()
        dm.setup("fit")
        dm.sampling_seed = 11
        runs.append([(b["name"], b["input"], b["target"]) for b in dm.train_dataloader()])
        torch.manual_seed(len(runs))  # the global random state must not matter
    for (names_a, inp_a, tgt_a), (names_b, inp_b, tgt_b) in zip(*runs):
        assert names_a == names_b and torch.equal(inp_a, inp_b) and torch.equal(tgt_a, tgt_b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"procedural": "perlin"}, "dead_leaves"),
        ({"procedural_ratio": 1.0}, r"\[0, 1\)"),
        ({"procedural": None, "procedural_ratio": 0.3}, "procedural source"),
    ],
)
def test_bad_procedural_settings_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        _mixed(**kwargs)
