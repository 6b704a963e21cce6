"""Pairing rules on real files: by name only, extensions ignored, unmatched files listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from laformer.data.pairing import (
    NameTemplate,
    PairingError,
    PrefixBefore,
    Replace,
    SameStem,
    list_images,
    pair_folders,
)


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def as_names(pairs) -> dict[str, str]:
    return {p.input.path.name: p.target.path.name for p in pairs}


def test_same_stem_ignores_extension_and_its_case(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.PNG", "b.jpg", "c.TIFF")
    touch(tmp_path / "gt", "a.png", "b.png", "c.tif")
    pairs = pair_folders(tmp_path / "in", tmp_path / "gt", SameStem())
    assert as_names(pairs) == {"a.PNG": "a.png", "b.jpg": "b.png", "c.TIFF": "c.tif"}


def test_pairs_follow_names_not_sorted_order(tmp_path: Path) -> None:
    # sorted order would pair 1.png with 1x.png and 2.png with 2x.png; the names say otherwise
    touch(tmp_path / "in", "1.png", "2.png")
    touch(tmp_path / "gt", "2.png", "1.png")
    pairs = pair_folders(tmp_path / "in", tmp_path / "gt", SameStem())
    assert all(p.input.path.name == p.target.path.name for p in pairs)


def test_name_template(tmp_path: Path) -> None:
    touch(tmp_path / "lr", "0801x4.png", "0802x4.png")
    touch(tmp_path / "hr", "0801.png", "0802.png")
    pairs = pair_folders(tmp_path / "lr", tmp_path / "hr", NameTemplate("{}x4"))
    assert as_names(pairs) == {"0801x4.png": "0801.png", "0802x4.png": "0802.png"}
    with pytest.raises(ValueError, match="exactly one"):
        NameTemplate("x4")


def test_prefix_many_inputs_to_one_target(tmp_path: Path) -> None:
    touch(tmp_path / "hazy", "1400_1.png", "1400_10.png", "1401_2.png", "0001_0.8_0.2.jpg")
    touch(tmp_path / "clear", "1400.png", "1401.png", "0001.png")
    pairs = pair_folders(tmp_path / "hazy", tmp_path / "clear", PrefixBefore())
    assert as_names(pairs) == {
        "1400_1.png": "1400.png",
        "1400_10.png": "1400.png",
        "1401_2.png": "1401.png",
        "0001_0.8_0.2.jpg": "0001.png",
    }


def test_prefix_prefers_an_identical_name(tmp_path: Path) -> None:
    # DehazeFormer's copy repeats the clear image under each hazy name
    touch(tmp_path / "hazy", "1400_1.png", "1400_2.png")
    touch(tmp_path / "GT", "1400_1.png", "1400_2.png")
    assert as_names(pair_folders(tmp_path / "hazy", tmp_path / "GT", PrefixBefore())) == {
        "1400_1.png": "1400_1.png",
        "1400_2.png": "1400_2.png",
    }


def test_replace_in_two_folders_and_with_renamed_copies(tmp_path: Path) -> None:
    touch(tmp_path / "Low", "low00690.png", "00691.png")
    touch(tmp_path / "Normal", "normal00690.png", "00691.png")
    pairs = pair_folders(tmp_path / "Low", tmp_path / "Normal", Replace("low", "normal"))
    assert as_names(pairs) == {"low00690.png": "normal00690.png", "00691.png": "00691.png"}


def test_replace_in_one_folder_splits_inputs_from_targets(tmp_path: Path) -> None:
    touch(tmp_path / "scene", "0001_NOISY_SRGB_010.PNG", "0001_GT_SRGB_010.PNG", "0001_NOISY_SRGB_011.PNG")
    touch(tmp_path / "scene", "0001_GT_SRGB_011.PNG", "0001_METADATA_RAW_010.MAT")
    pairs = pair_folders(tmp_path / "scene", tmp_path / "scene", Replace("_NOISY_", "_GT_"), name_prefix="scene/")
    assert as_names(pairs) == {
        "0001_NOISY_SRGB_010.PNG": "0001_GT_SRGB_010.PNG",
        "0001_NOISY_SRGB_011.PNG": "0001_GT_SRGB_011.PNG",
    }
    assert pairs[0].name == "scene/0001_NOISY_SRGB_010"


def test_unmatched_files_on_both_sides_are_listed(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.png", "b.png")
    touch(tmp_path / "gt", "a.png", "c.png")
    with pytest.raises(PairingError) as info:
        pair_folders(tmp_path / "in", tmp_path / "gt", SameStem())
    message = str(info.value)
    assert "1 input(s) without a target" in message and str(tmp_path / "in" / "b.png") in message
    assert "1 target(s) without an input" in message and str(tmp_path / "gt" / "c.png") in message
    assert "strict_pairs=false" in message


def test_non_strict_pairing_skips_unmatched_files_with_a_warning(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.png", "b.png")
    touch(tmp_path / "gt", "a.png", "c.png")
    with pytest.warns(UserWarning, match="b.png"):
        pairs = pair_folders(tmp_path / "in", tmp_path / "gt", SameStem(), strict=False)
    assert as_names(pairs) == {"a.png": "a.png"}


def test_two_files_with_one_name_are_ambiguous(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.png")
    touch(tmp_path / "gt", "a.png", "a.jpg")
    with pytest.raises(PairingError, match="ambiguous"):
        pair_folders(tmp_path / "in", tmp_path / "gt", SameStem())


def test_one_to_one_rules_refuse_shared_targets(tmp_path: Path) -> None:
    touch(tmp_path / "in", "x_low.png", "x.png")
    touch(tmp_path / "gt", "x.png")
    with pytest.raises(PairingError, match="all pair with target"):
        pair_folders(tmp_path / "in", tmp_path / "gt", Replace("_low", ""))


def test_empty_folders_and_non_images(tmp_path: Path) -> None:
    touch(tmp_path / "in", "notes.txt", "a.PNG", "b.Jpeg", "c.bmp")
    touch(tmp_path / "gt")
    assert [p.name for p in list_images(tmp_path / "in")] == ["a.PNG", "b.Jpeg", "c.bmp"]
    with pytest.raises(PairingError, match="no target images"):
        pair_folders(tmp_path / "in", tmp_path / "gt", SameStem())
