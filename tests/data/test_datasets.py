"""Paired and degraded-on-the-fly datasets, on real image files written to a temporary folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.data.datasets import DegradedImageDataset, ImagePair, ImageRef, PairedImageDataset
from laformer.data.degradations import GaussianNoise
from laformer.data.io import write_image

PATCH = 16


def _coded_image(h: int, w: int, code: int) -> torch.Tensor:
    """Channel 0 = row, channel 1 = column, channel 2 = ``code`` (all on the 8-bit grid): a crop knows where it
    came from, and whose it is."""
    rows = torch.arange(h).view(h, 1).expand(h, w).float()
    cols = torch.arange(w).view(1, w).expand(h, w).float()
    return torch.stack([rows, cols, torch.full((h, w), float(code))]) / 255


def _levels(image: torch.Tensor) -> torch.Tensor:
    return (image * 255).round().long()


def _write_pairs(folder: Path, sizes: list[tuple[int, int]]) -> list[ImagePair]:
    """Pair i: input coded 40 i, target coded 40 i + 20; file names say which pair they belong to."""
    pairs = []
    for i, (h, w) in enumerate(sizes):
        inp, tgt = folder / "input" / f"img{i}.png", folder / "target" / f"img{i}.png"
        write_image(inp, _coded_image(h, w, 40 * i))
        write_image(tgt, _coded_image(h, w, 40 * i + 20))
        pairs.append(ImagePair(f"img{i}", ImageRef(f"img{i}", path=inp), ImageRef(f"img{i}", path=tgt)))
    return pairs


def test_pairs_stay_paired_and_aligned_under_random_crops(tmp_path: Path) -> None:
    sizes = [(48, 64), (40, 40), (33, 70)]
    pairs = _write_pairs(tmp_path, sizes)
    dataset = PairedImageDataset(pairs, "train", patch_size=PATCH, repeat=4)
    assert len(dataset) == 12
    corners: dict[int, set[tuple[int, int]]] = {i: set() for i in range(3)}
    torch.manual_seed(0)
    for index in range(len(dataset)):
        for _ in range(3):
            item = dataset[index]
            pair_id = index % 3
            assert item["name"] == f"img{pair_id}"
            assert item["set"] == "train"
            inp, tgt = _levels(item["input"]), _levels(item["target"])
            assert inp.shape == tgt.shape == (3, PATCH, PATCH)
            # the pair: input of pair i with target of pair i
            assert (inp[2] == 40 * pair_id).all()
            assert (tgt[2] == 40 * pair_id + 20).all()
            # the same window from both, and a contiguous window of the original
            assert torch.equal(inp[:2], tgt[:2])
            top, left = int(inp[0, 0, 0]), int(inp[1, 0, 0])
            h, w = sizes[pair_id]
            assert 0 <= top <= h - PATCH and 0 <= left <= w - PATCH
            original = _levels(_coded_image(h, w, 40 * pair_id))
            assert torch.equal(inp, original[:, top : top + PATCH, left : left + PATCH])
            corners[pair_id].add((top, left))
    # crops are random, not always the same window
    assert all(len(seen) > 3 for seen in corners.values())


def test_whole_images_without_patch_size(tmp_path: Path) -> None:
    sizes = [(21, 34), (30, 17)]
    dataset = PairedImageDataset(_write_pairs(tmp_path, sizes), "val")
    assert len(dataset) == 2
    for i, (h, w) in enumerate(sizes):
        item = dataset[i]
        assert torch.equal(_levels(item["input"]), _levels(_coded_image(h, w, 40 * i)))
        assert torch.equal(_levels(item["target"]), _levels(_coded_image(h, w, 40 * i + 20)))


def test_channels_option_converts_both_images(tmp_path: Path) -> None:
    dataset = PairedImageDataset(_write_pairs(tmp_path, [(20, 20)]), "val", channels=1)
    item = dataset[0]
    assert item["input"].shape == item["target"].shape == (1, 20, 20)


@pytest.mark.parametrize("repeat", [1, 3, 7])
def test_repeat_multiplies_length(tmp_path: Path, repeat: int) -> None:
    pairs = _write_pairs(tmp_path, [(20, 20), (20, 24)])
    dataset = PairedImageDataset(pairs, "train", patch_size=PATCH, repeat=repeat)
    assert len(dataset) == 2 * repeat
    assert [dataset[i]["name"] for i in range(len(dataset))] == ["img0", "img1"] * repeat


def test_mismatched_pair_sizes_raise_naming_both_files(tmp_path: Path) -> None:
    inp, tgt = tmp_path / "in" / "blurry_7.png", tmp_path / "gt" / "sharp_7.png"
    write_image(inp, _coded_image(32, 40, 0))
    write_image(tgt, _coded_image(32, 44, 20))
    pair = ImagePair("7", ImageRef("7", path=inp), ImageRef("7", path=tgt))
    for patch in (None, PATCH):
        dataset = PairedImageDataset([pair], "train", patch_size=patch)
        with pytest.raises(ValueError) as info:
            dataset[0]
        message = str(info.value)
        assert str(inp) in message and str(tgt) in message


def test_small_image_error_names_the_file(tmp_path: Path) -> None:
    pairs = _write_pairs(tmp_path, [(40, 40), (12, 50)])
    dataset = PairedImageDataset(pairs, "train", patch_size=PATCH, small_image="error")
    dataset[0]  # large enough
    with pytest.raises(ValueError, match=r"img1\.png") as info:
        dataset[1]
    assert str(pairs[1].input.path) in str(info.value)


@pytest.mark.parametrize("size", [(12, 14), (10, 40), (40, 5), (3, 3)])
def test_small_image_pad_gives_full_patches_that_stay_aligned(tmp_path: Path, size: tuple[int, int]) -> None:
    h, w = size
    pairs = _write_pairs(tmp_path, [size])
    dataset = PairedImageDataset(pairs, "train", patch_size=PATCH, small_image="pad")
    for _ in range(5):
        item = dataset[0]
        inp, tgt = _levels(item["input"]), _levels(item["target"])
        assert inp.shape == tgt.shape == (3, PATCH, PATCH)
        assert torch.equal(inp[:2], tgt[:2])
        assert (inp[2] == 0).all() and (tgt[2] == 20).all()
        # padding only repeats existing rows/columns
        assert inp[0].max() < h and inp[1].max() < w
    if h < PATCH and w < PATCH:
        # the whole padded image is the patch: the original sits in its top-left corner
        assert torch.equal(inp[:, :h, :w], _levels(_coded_image(h, w, 0)))


def test_small_image_pad_is_a_reflection_when_possible(tmp_path: Path) -> None:
    dataset = PairedImageDataset(_write_pairs(tmp_path, [(12, 14)]), "train", patch_size=PATCH, small_image="pad")
    rows = _levels(dataset[0]["input"])[0, :, 0]
    assert rows.tolist() == [*range(12), 10, 9, 8, 7]


def test_invalid_small_image_policy_and_empty_sets_raise(tmp_path: Path) -> None:
    pairs = _write_pairs(tmp_path, [(20, 20)])
    with pytest.raises(ValueError, match="small_image"):
        PairedImageDataset(pairs, "train", patch_size=PATCH, small_image="resize")
    with pytest.raises(ValueError, match="no image pairs"):
        PairedImageDataset([], "empty")
    with pytest.raises(ValueError, match="no images"):
        DegradedImageDataset([], GaussianNoise(), "empty")


# -- degraded on the fly ---------------------------------------------------------------------------------


def _clean_refs(folder: Path, n: int = 3, same: bool = True) -> list[ImageRef]:
    refs = []
    for i in range(n):
        gen = torch.Generator().manual_seed(0 if same else i)
        image = torch.randint(40, 216, (3, 24, 28), generator=gen).float() / 255
        path = folder / f"clean{i}.png"
        write_image(path, image)
        refs.append(ImageRef(f"clean{i}", path=path))
    return refs


def test_degraded_targets_are_the_clean_files_and_inputs_carry_the_noise(tmp_path: Path) -> None:
    refs = _clean_refs(tmp_path, 1)
    dataset = DegradedImageDataset(refs, GaussianNoise(25.0), "val", seed=0)
    item = dataset[0]
    clean = torch.randint(40, 216, (3, 24, 28), generator=torch.Generator().manual_seed(0)).float() / 255
    assert torch.equal(item["target"], clean)
    assert item["input"].shape == clean.shape
    std = (item["input"] - item["target"]).std().item()
    assert abs(std - 25 / 255) < 0.1 * 25 / 255


def test_seeded_degradation_is_identical_across_instantiations(tmp_path: Path) -> None:
    refs = _clean_refs(tmp_path, 3, same=True)  # identical clean images: only the noise tells them apart
    first = DegradedImageDataset(refs, GaussianNoise(25.0), "val", seed=7)
    torch.manual_seed(123)  # the global RNG must not matter
    second = DegradedImageDataset(list(refs), GaussianNoise(25.0), "val", seed=7)
    torch.rand(10)
    for i in range(3):
        assert torch.equal(first[i]["input"], second[i]["input"])
        assert torch.equal(first[i]["input"], first[i]["input"])  # and on every read
    # different images get different noise, even when their clean content is the same
    assert torch.equal(first[0]["target"], first[1]["target"])
    assert not torch.allclose(first[0]["input"], first[1]["input"])
    assert not torch.allclose(first[1]["input"], first[2]["input"])
    # another seed, other noise
    other = DegradedImageDataset(refs, GaussianNoise(25.0), "val", seed=8)
    assert not torch.allclose(other[0]["input"], first[0]["input"])


def test_seeded_degradation_with_repeat_reuses_each_images_noise(tmp_path: Path) -> None:
    refs = _clean_refs(tmp_path, 2, same=False)
    dataset = DegradedImageDataset(refs, GaussianNoise(25.0), "val", seed=3, repeat=2)
    assert len(dataset) == 4
    assert torch.equal(dataset[0]["input"], dataset[2]["input"])
    assert torch.equal(dataset[1]["input"], dataset[3]["input"])


def test_unseeded_degradation_draws_fresh_noise(tmp_path: Path) -> None:
    refs = _clean_refs(tmp_path, 1)
    dataset = DegradedImageDataset(refs, GaussianNoise(25.0), "train")
    a, b = dataset[0], dataset[0]
    assert torch.equal(a["target"], b["target"])
    assert not torch.allclose(a["input"], b["input"])


def test_degraded_crops_keep_input_and_target_aligned(tmp_path: Path) -> None:
    """The degradation is applied to the crop of the target: input - target is pure noise (no shift)."""
    path = tmp_path / "coded.png"
    write_image(path, _coded_image(40, 50, 100))
    ref = ImageRef("coded", path=path)
    dataset = DegradedImageDataset([ref], GaussianNoise(1.0), "train", patch_size=PATCH, repeat=3)
    assert len(dataset) == 3
    for i in range(3):
        item = dataset[i]
        assert item["input"].shape == item["target"].shape == (3, PATCH, PATCH)
        assert (item["input"] - item["target"]).abs().max() < 6 / 255  # sigma 1/255: no misalignment
        top, left = _levels(item["target"])[:2, 0, 0].tolist()
        expected = _levels(_coded_image(40, 50, 100))[:, top : top + PATCH, left : left + PATCH]
        assert torch.equal(_levels(item["target"]), expected)


def test_degraded_small_image_policies(tmp_path: Path) -> None:
    path = tmp_path / "tiny_photo.png"
    write_image(path, _coded_image(10, 12, 5))
    ref = ImageRef("tiny", path=path)
    with pytest.raises(ValueError, match=r"tiny_photo\.png"):
        DegradedImageDataset([ref], GaussianNoise(), "train", patch_size=PATCH)[0]
    item = DegradedImageDataset([ref], GaussianNoise(), "train", patch_size=PATCH, small_image="pad")[0]
    assert item["input"].shape == item["target"].shape == (3, PATCH, PATCH)


def test_in_memory_refs(tmp_path: Path) -> None:
    array = np.full((20, 22, 3), 128, np.uint8)
    ref = ImageRef("bundled", array=array)
    assert "bundled" in str(ref)
    item = DegradedImageDataset([ref], GaussianNoise(), "val", seed=0, channels=1)[0]
    assert item["target"].shape == (1, 20, 22)
    torch.testing.assert_close(item["target"], torch.full((1, 20, 22), 128 / 255))
