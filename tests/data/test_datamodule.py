"""Batch augmentation and the data modules: the demo module end to end, progressive stages, batch sizes."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from laformer.data.augment import random_dihedral
from laformer.data.datamodule import RestorationDataModule
from laformer.data.degradations import GaussianNoise
from laformer.data.demo import DEMO_TRAIN, DEMO_VAL, DemoDataModule, load_demo_photo
from laformer.metrics.protocol import EvalProtocol

# -- random_dihedral -------------------------------------------------------------------------------------


def _dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of a square (C, H, W) tensor, built independently with rot90."""
    out = []
    for flipped in (x, x.flip(-1)):
        out.extend(torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4))
    return out


def _which(candidates: list[torch.Tensor], y: torch.Tensor) -> int:
    matches = [i for i, c in enumerate(candidates) if c.shape == y.shape and torch.equal(c, y)]
    assert len(matches) == 1, "the output is not exactly one flip/rotation of the input"
    return matches[0]


def test_dihedral_applies_the_same_transform_to_input_and_target() -> None:
    gen = torch.Generator().manual_seed(0)
    inp = torch.rand(64, 3, 8, 8, generator=gen)
    target = inp * 2 + 1  # target = f(input), f pointwise: any common geometric transform keeps the relation
    out_in, out_tgt = random_dihedral(inp, target, generator=torch.Generator().manual_seed(1))
    assert out_in.shape == inp.shape and out_tgt.shape == target.shape
    torch.testing.assert_close(out_tgt, out_in * 2 + 1)
    seen = set()
    for i in range(inp.shape[0]):
        k_in = _which(_dihedral(inp[i]), out_in[i])
        k_tgt = _which(_dihedral(target[i]), out_tgt[i])
        assert k_in == k_tgt
        seen.add(k_in)
    assert seen == set(range(8)), "all 8 transforms should occur in 64 square samples"


def test_dihedral_keeps_a_non_invariant_pairing() -> None:
    """A target that is not a pointwise function of the input: a shifted copy. The pairing must still hold."""
    gen = torch.Generator().manual_seed(2)
    inp = torch.rand(32, 1, 6, 6, generator=gen)
    target = torch.rand(32, 1, 6, 6, generator=gen)
    out_in, out_tgt = random_dihedral(inp, target, generator=torch.Generator().manual_seed(3))
    for i in range(32):
        k = _which(_dihedral(inp[i]), out_in[i])
        assert torch.equal(out_tgt[i], _dihedral(target[i])[k])


@pytest.mark.parametrize("shape", [(4, 8), (8, 4), (5, 12)])
def test_dihedral_never_rotates_non_square_patches(shape: tuple[int, int]) -> None:
    h, w = shape
    inp = torch.rand(48, 2, h, w, generator=torch.Generator().manual_seed(4))
    target = inp * 2
    extra = -inp
    out_in, out_tgt, out_extra = random_dihedral(inp, target, extra, generator=torch.Generator().manual_seed(5))
    assert out_in.shape == out_tgt.shape == out_extra.shape == (48, 2, h, w)
    torch.testing.assert_close(out_tgt, out_in * 2)
    torch.testing.assert_close(out_extra, -out_in)
    flips = set()
    for i in range(48):
        x = inp[i]
        options = [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]
        flips.add(_which(options, out_in[i]))
    assert flips == {0, 1, 2, 3}


def test_dihedral_is_reproducible_with_a_generator() -> None:
    x = torch.rand(16, 3, 5, 5)
    a = random_dihedral(x, generator=torch.Generator().manual_seed(9))[0]
    b = random_dihedral(x, generator=torch.Generator().manual_seed(9))[0]
    assert torch.equal(a, b)


# -- the demo data module --------------------------------------------------------------------------------


def _demo(**kwargs) -> DemoDataModule:
    defaults = dict(
        batch_size=4,
        patch_size=32,
        num_workers=0,
        repeat=2,
        train_photos=("astronaut", "coffee"),
        val_photos=("chelsea",),
        test_photos=(),  # the default held-out set holds astronaut and chelsea
    )
    return DemoDataModule(**{**defaults, **kwargs})


def _find_patch(photo: np.ndarray, patch: np.ndarray) -> bool:
    """Whether ``patch`` (H x W x C uint8) is a window of ``photo``."""
    p = patch.shape[0]
    rows, cols = np.nonzero((photo[: photo.shape[0] - p + 1, : photo.shape[1] - p + 1] == patch[0, 0]).all(-1))
    return any(np.array_equal(photo[r : r + p, c : c + p], patch) for r, c in zip(rows, cols))


def test_demo_split_names_exist_and_do_not_overlap() -> None:
    assert not set(DEMO_TRAIN) & set(DEMO_VAL)
    for name in ("motorcycle", "chelsea"):
        photo = load_demo_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8


def test_demo_train_batches_have_the_configured_shape() -> None:
    dm = _demo()
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(dm._train) == 2 * 2
    batches = list(loader)
    assert len(batches) == 1
    batch = batches[0]
    assert batch["input"].shape == batch["target"].shape == (4, 3, 32, 32)
    assert sorted(batch["name"]) == ["astronaut", "astronaut", "coffee", "coffee"]
    photos = {name: load_demo_photo(name) for name in ("astronaut", "coffee")}
    for target, name in zip(batch["target"], batch["name"]):
        patch = (target.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        assert _find_patch(photos[name], patch), f"the target is not a crop of {name}"
    # The noise is clipped to [0, 1] (as a PNG holds it): measured where the target leaves room on both sides, so
    # a crop of sky or shadow cannot pull the spread down (the crops are random: 8 of 30 draws did before).
    noise = batch["input"] - batch["target"]
    unclipped = (batch["target"] > 0.3) & (batch["target"] < 0.7)
    assert unclipped.sum() > 500
    assert noise[unclipped].std().item() == pytest.approx(25 / 255, rel=0.1)


def test_demo_train_batches_grey_and_per_device() -> None:
    class TwoProcesses(DemoDataModule):
        world_size = 2

    dm = TwoProcesses(
        batch_size=4,
        patch_size=24,
        num_workers=0,
        repeat=5,
        channels=1,
        train_photos=("coffee",),
        val_photos=("chelsea",),
        test_photos=(),
    )
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 1  # 5 items, one global batch of 4 (2 on this process), the partial one dropped
    assert batches[0]["input"].shape == (2, 1, 24, 24)


def test_demo_validation_yields_whole_images_identical_across_setups() -> None:
    inputs = []
    for _ in range(2):
        dm = _demo(degradation=GaussianNoise(25.0), seed=3)
        dm.setup("validate")
        batches = list(dm.val_dataloader())
        assert len(batches) == 1
        batch = batches[0]
        photo = skimage.data.chelsea()
        assert batch["input"].shape == batch["target"].shape == (1, 3, *photo.shape[:2])
        expected = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
        assert torch.equal(batch["target"][0], expected)
        assert batch["name"] == ["chelsea"]
        inputs.append(batch["input"])
        torch.manual_seed(len(inputs))  # the global RNG state must not matter
    assert torch.equal(inputs[0], inputs[1])
    assert not torch.equal(inputs[0], _demo(seed=4).val_dataset()[0]["input"].unsqueeze(0))


def test_demo_test_sets_default_to_validation() -> None:
    dm = _demo()
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert len(loaders) == 1
    assert next(iter(loaders[0]))["name"] == ["chelsea"]


def test_demo_overlapping_split_raises() -> None:
    with pytest.raises(ValueError, match="coffee"):
        DemoDataModule(train_photos=("astronaut", "coffee"), val_photos=("coffee",))


def test_demo_small_image_policy_reaches_the_dataset() -> None:
    dm = _demo(patch_size=1024, repeat=1)  # larger than the photos
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"<bundled (astronaut|coffee)>"):
        dm._train[0]
    dm = _demo(patch_size=520, repeat=1, small_image="pad", batch_size=1)
    dm.setup("fit")
    assert dm._train[0]["target"].shape == (3, 520, 520)


# -- progressive stages and batch sizes -------------------------------------------------------------------

STAGES = [
    {"steps": 10, "patch_size": 16, "batch_size": 8},
    {"steps": 5, "patch_size": 24, "batch_size": 4},
    {"steps": 3, "patch_size": 32, "batch_size": 2},
]


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0), (9, 0), (10, 1), (11, 1), (14, 1), (15, 2), (17, 2), (18, 2), (1000, 2)],
)
def test_stage_at_boundaries(step: int, expected: int) -> None:
    dm = RestorationDataModule(progressive=STAGES)
    assert dm.stage_at(step) == STAGES[expected]


def test_stage_at_without_schedule_is_none() -> None:
    assert RestorationDataModule().stage_at(0) is None
    assert RestorationDataModule(progressive=[]).stage_at(50) is None


def test_progressive_accepts_config_mappings() -> None:
    from omegaconf import OmegaConf

    stages = OmegaConf.create(STAGES)
    dm = RestorationDataModule(progressive=stages)
    assert dm.stage_at(12) == STAGES[1]
    assert isinstance(dm.stage_at(12), dict)


@pytest.mark.parametrize(
    "stage",
    [
        {"steps": 10, "patch_size": 16},
        {"steps": 10, "batch_size": 4},
        {"patch_size": 16, "batch_size": 4},
        {"steps": 10, "patch_size": 16, "batch_size": 4, "lr": 1e-3},
        {"step": 10, "patch_size": 16, "batch_size": 4},
    ],
)
def test_invalid_stages_raise(stage: dict) -> None:
    with pytest.raises(ValueError, match="steps, patch_size, batch_size"):
        RestorationDataModule(progressive=[STAGES[0], stage])


def test_first_stage_sets_the_training_crops() -> None:
    dm = _demo(progressive=[{"steps": 100, "patch_size": 16, "batch_size": 2}, STAGES[2]])
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (2, 3, 16, 16)
    assert (dm.patch_size, dm.batch_size) == (16, 2)


class _FakeWorld(RestorationDataModule):
    """Only the process count is pretended; the arithmetic under test is the real one."""

    def __init__(self, world: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self._world = world

    @property
    def world_size(self) -> int:
        return self._world


@pytest.mark.parametrize(("batch", "world", "expected"), [(8, 1, 8), (8, 2, 4), (8, 8, 1), (12, 3, 4), (6, 2, 3)])
def test_per_device_batch_size_divides_by_world_size(batch: int, world: int, expected: int) -> None:
    assert _FakeWorld(world, batch_size=batch).per_device_batch_size() == expected


@pytest.mark.parametrize(("batch", "world"), [(8, 3), (6, 4), (1, 2)])
def test_per_device_batch_size_not_divisible_raises(batch: int, world: int) -> None:
    with pytest.raises(ValueError, match=f"{batch}.*{world}"):
        _FakeWorld(world, batch_size=batch).per_device_batch_size()


def test_world_size_without_trainer_is_one() -> None:
    dm = RestorationDataModule(batch_size=6)
    assert dm.world_size == 1
    assert dm.per_device_batch_size() == 6


def test_default_protocol_and_no_augmentation_outside_training() -> None:
    dm = RestorationDataModule()
    assert dm.protocol == EvalProtocol()
    batch = {"input": torch.rand(2, 3, 8, 8), "target": torch.rand(2, 3, 8, 8)}
    out = dm.on_after_batch_transfer(dict(batch), 0)
    assert torch.equal(out["input"], batch["input"]) and torch.equal(out["target"], batch["target"])
