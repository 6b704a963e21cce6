"""Bad data fails at setup, before any step, with an error naming the file or folder and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from laformer.cli.data import main as data_cli
from laformer.data import (
    BenchmarkDataModule,
    DataCheckError,
    DatasetNotFoundError,
    LayoutError,
    PairingError,
)
from tests.data.coded import write_coded


def gopro(root: Path, **kwargs) -> BenchmarkDataModule:
    return BenchmarkDataModule(
        "gopro", root=str(root), test_sets=["gopro"], patch_size=16, batch_size=1, num_workers=0, **kwargs
    )


def write_restormer_gopro(root: Path, names=("a", "b"), size=(24, 32)) -> None:
    for split in ("train", "test"):
        for i, name in enumerate(names):
            write_coded(root / split / "GoPro" / "input" / f"{name}.png", i, False, size)
            write_coded(root / split / "GoPro" / "target" / f"{name}.png", i, True, size)


def test_missing_root_names_the_layouts_and_where_the_data_is_published(tmp_path: Path) -> None:
    root = tmp_path / "no_such_folder"
    with pytest.raises(DatasetNotFoundError) as info:
        gopro(root).setup("fit")
    message = str(info.value)
    assert str(root) in message and "does not exist" in message
    assert "train/<scene>/blur" in message and "train/GoPro/input" in message  # the official and Restormer layouts
    assert "seungjunnah.github.io" in message  # where GoPro is published
    assert "data.root=" in message


def test_wrong_layout_lists_the_expected_layouts_and_what_was_found(tmp_path: Path) -> None:
    for name in ("blurry", "clear"):
        write_coded(tmp_path / "GoPro" / name / "1.png", 0, name == "clear")
    with pytest.raises(DatasetNotFoundError) as info:
        gopro(tmp_path).setup("fit")
    message = str(info.value)
    assert "no GoPro train split" in message
    assert "input_crops" in message and "train/<scene>/sharp" in message
    assert "blurry" in message and "clear" in message  # what is there instead


def test_input_folder_without_its_target_folder_names_both(tmp_path: Path) -> None:
    write_coded(tmp_path / "test" / "GoPro" / "input" / "1.png", 0, False)
    with pytest.raises(LayoutError) as info:
        gopro(tmp_path).setup("test")
    message = str(info.value)
    assert str(tmp_path / "test" / "GoPro" / "input") in message
    assert str(tmp_path / "test" / "GoPro" / "target") in message


def test_inputs_without_targets_and_targets_without_inputs_are_listed(tmp_path: Path) -> None:
    write_restormer_gopro(tmp_path)
    orphan = tmp_path / "train" / "GoPro" / "input" / "c.png"
    widow = tmp_path / "train" / "GoPro" / "target" / "d.png"
    write_coded(orphan, 3, False)
    write_coded(widow, 4, True)
    with pytest.raises(PairingError) as info:
        gopro(tmp_path).setup("fit")
    message = str(info.value)
    assert f"input(s) without a target: {orphan}" in message
    assert f"target(s) without an input: {widow}" in message
    with pytest.warns(UserWarning, match=r"c\.png"):
        module = gopro(tmp_path, strict_pairs=False)
        module.setup("fit")
    assert len(module.train_dataloader().dataset) == 2


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_or_truncated_image_is_named_before_training(tmp_path: Path, damage: str, capsys) -> None:
    write_restormer_gopro(tmp_path)
    bad = tmp_path / "train" / "GoPro" / "target" / "b.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not an image at all")
    module = gopro(tmp_path, check="full")
    with pytest.raises(DataCheckError, match="corrupt, truncated or not an image") as info:
        module.setup("fit")
    assert str(bad) in str(info.value)
    if damage == "garbage":  # the default header check already refuses an unreadable file
        with pytest.raises(DataCheckError, match=str(bad)):
            gopro(tmp_path).setup("fit")
    assert (
        data_cli(["verify", "data=gopro", f"data.root={tmp_path}", "data.test_sets=[gopro]", "data.patch_size=16"]) == 1
    )
    out = capsys.readouterr().out
    assert "INVALID" in out and str(bad) in out


def test_mismatched_input_and_target_sizes_are_named(tmp_path: Path) -> None:
    write_restormer_gopro(tmp_path)
    target = tmp_path / "test" / "GoPro" / "target" / "a.png"
    write_coded(target, 0, True, (24, 36))
    with pytest.raises(DataCheckError) as info:
        gopro(tmp_path).setup("test")
    message = str(info.value)
    assert str(tmp_path / "test" / "GoPro" / "input" / "a.png") in message and str(target) in message
    assert "24x32" in message and "24x36" in message and "same size" in message


def test_image_smaller_than_the_training_patch_is_named_at_setup(tmp_path: Path) -> None:
    write_restormer_gopro(tmp_path)
    small = tmp_path / "train" / "GoPro" / "input" / "b.png"
    write_coded(small, 1, False, (12, 20))
    write_coded(tmp_path / "train" / "GoPro" / "target" / "b.png", 1, True, (12, 20))
    with pytest.raises(DataCheckError) as info:
        gopro(tmp_path).setup("fit")
    message = str(info.value)
    assert str(small) in message and "smaller than the training patch 16x16" in message
    assert "data.small_image=pad" in message
    # the largest progressive stage counts too
    stages = [{"steps": 1, "patch_size": 8, "batch_size": 1}, {"steps": 1, "patch_size": 28, "batch_size": 1}]
    with pytest.raises(DataCheckError, match="training patch 28x28"):
        gopro(tmp_path, progressive=stages).setup("fit")
    padded = gopro(tmp_path, small_image="pad")
    padded.setup("fit")
    assert all(b["input"].shape[-2:] == (16, 16) for b in padded.train_dataloader())


def test_missing_test_sets_are_reported_when_training_starts(tmp_path: Path) -> None:
    write_restormer_gopro(tmp_path)
    module = BenchmarkDataModule("gopro", root=str(tmp_path), patch_size=16, batch_size=1, num_workers=0)
    with pytest.warns(UserWarning, match=r"test set HIDE is not on disk(.|\n)*data.test_sets"):
        module.setup("fit")
