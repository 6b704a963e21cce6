"""SIDD validation blocks and DND's files, written with scipy and h5py as MATLAB v5 and v7.3 files."""

from __future__ import annotations

from pathlib import Path

import h5py
import lightning as L
import numpy as np
import pytest
import scipy.io
import torch

from laformer.data import BenchmarkDataModule
from laformer.data.mat_readers import (
    MatFileError,
    dnd_boxes,
    dnd_crops,
    load_mat_array,
    sidd_block_pairs,
    write_dnd_submission,
)
from laformer.training import RestorationModule


def matlab_v73(path: Path) -> h5py.File:
    """An HDF5 file with MATLAB's 512-byte v7.3 header, as MATLAB's ``save -v7.3`` writes it."""
    handle = h5py.File(path, "w", userblock_size=512)
    handle.close()
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with path.open("r+b") as raw:
        raw.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")
    return h5py.File(path, "a")


def blocks(seed: int, shape=(3, 2, 16, 16, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_sidd_blocks_from_matlab_v5_files(tmp_path: Path) -> None:
    noisy, gt = blocks(0), blocks(1)
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": gt})
    pairs = sidd_block_pairs(tmp_path / "ValidationNoisyBlocksSrgb.mat", tmp_path / "ValidationGtBlocksSrgb.mat")
    assert len(pairs) == 6 and pairs[3].name == "01_01"
    np.testing.assert_array_equal(pairs[3].input.array, noisy[1, 1])
    np.testing.assert_array_equal(pairs[3].target.array, gt[1, 1])
    image = pairs[3].input.load()
    assert image.shape == (3, 16, 16)
    assert torch.equal((image * 255).round().byte(), torch.from_numpy(noisy[1, 1]).permute(2, 0, 1))


def test_sidd_blocks_from_matlab_v73_files(tmp_path: Path) -> None:
    noisy = blocks(2)
    for name in ("ValidationNoisyBlocksSrgb", "ValidationGtBlocksSrgb"):
        with matlab_v73(tmp_path / f"{name}.mat") as handle:  # HDF5 stores MATLAB arrays axes reversed
            handle.create_dataset(name, data=noisy.transpose())
    np.testing.assert_array_equal(load_mat_array(tmp_path / "ValidationNoisyBlocksSrgb.mat"), noisy)


def test_sidd_blocks_with_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": blocks(0)[0]})
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": blocks(0)})
    with pytest.raises(MatFileError, match=r"ValidationNoisyBlocksSrgb.mat.*expected uint8"):
        sidd_block_pairs(tmp_path / "ValidationNoisyBlocksSrgb.mat", tmp_path / "ValidationGtBlocksSrgb.mat")


def test_truncated_mat_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ValidationGtBlocksSrgb.mat"
    scipy.io.savemat(path, {"ValidationGtBlocksSrgb": blocks(0)})
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(MatFileError, match=r"ValidationGtBlocksSrgb\.mat"):
        load_mat_array(path)


def write_dnd(folder: Path, images: int = 2, boxes: int = 3, size: int = 8) -> list[np.ndarray]:
    """A DND copy in MATLAB v7.3 layout: info.mat with per-image box references, images_srgb/NNNN.mat."""
    rng = np.random.default_rng(0)
    (folder / "images_srgb").mkdir(parents=True)
    noisy = []
    with matlab_v73(folder / "info.mat") as info:
        group = info.create_group("info")
        refs = []
        for i in range(images):
            corners = np.array([[1 + 4 * k, 1 + 2 * k, 4 * k + size, 2 * k + size] for k in range(boxes)], float)
            refs.append(info.create_dataset(f"#refs#/b{i}", data=corners.T).ref)  # MATLAB: boxes x 4, stored 4 x boxes
        group.create_dataset("boundingboxes", data=np.array([refs], dtype=h5py.ref_dtype))
    for i in range(images):
        image = rng.random((20, 24, 3), dtype=np.float32)
        noisy.append(image)
        with matlab_v73(folder / "images_srgb" / f"{i + 1:04d}.mat") as handle:
            handle.create_dataset("InoisySRGB", data=image.T)
    return noisy


def test_dnd_boxes_and_crops(tmp_path: Path) -> None:
    noisy = write_dnd(tmp_path)
    per_image = dnd_boxes(tmp_path / "info.mat")
    assert [len(b) for b in per_image] == [3, 3]
    box = per_image[1][2]
    assert (box.rows, box.cols, box.name) == ((8, 16), (4, 12), "0002_03")
    crops = dnd_crops(tmp_path)
    assert len(crops) == 6
    np.testing.assert_array_equal(crops[5][1].array, noisy[1][8:16, 4:12])


def test_dnd_submission_layout(tmp_path: Path) -> None:
    crops = {f"{i:04d}_{k:02d}": np.full((8, 8, 3), i + k / 10, np.float32) for i in (1, 2) for k in (1, 2, 3)}
    written = write_dnd_submission(crops, tmp_path)
    assert [p.name for p in written] == ["0001.mat", "0002.mat"]
    assert (tmp_path / "0002_03.mat").is_file()
    bundled = scipy.io.loadmat(tmp_path / "bundled" / "0002.mat")
    assert bundled["Idenoised"].shape[-1] == 3 and not bundled["israw"].item()
    assert str(bundled["eval_version"][0]) == "1.0"
    np.testing.assert_allclose(bundled["Idenoised"].reshape(-1)[2], crops["0002_03"])
    per_box = scipy.io.loadmat(tmp_path / "0001_02.mat")["Idenoised_crop"]
    np.testing.assert_allclose(per_box, crops["0001_02"])


def test_dnd_predicts_with_a_trainer_and_writes_the_submission(tmp_path: Path) -> None:
    noisy = write_dnd(tmp_path / "DND")
    module = BenchmarkDataModule("dnd", root=str(tmp_path), num_workers=0)
    assert module.prediction_only
    with pytest.raises(ValueError, match="no ground truth"):
        module.setup("test")
    net = RestorationModule(net=torch.nn.Identity())
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)
    outputs = trainer.predict(net, datamodule=module)
    written = module.write_predictions(outputs, tmp_path / "submission")
    assert len(written) == 2
    bundled = scipy.io.loadmat(tmp_path / "submission" / "bundled" / "0001.mat")["Idenoised"].reshape(-1)
    np.testing.assert_allclose(bundled[1], noisy[0][4:12, 2:10], atol=1e-6)  # identity "denoiser"
