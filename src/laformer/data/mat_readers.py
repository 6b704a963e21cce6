"""Benchmarks stored as MATLAB arrays: SIDD validation blocks, and DND (noisy images only, scored online).

SIDD ships ``ValidationNoisyBlocksSrgb.mat`` and ``ValidationGtBlocksSrgb.mat``: uint8 RGB arrays of shape
(images, blocks, 256, 256, 3), 40 x 32 in the release. DND ships ``info.mat`` (20 boxes per image, MATLAB
1-based inclusive corners) and ``images_srgb/0001.mat ...`` (``InoisySRGB``, float in [0, 1]), both MATLAB v7.3
(HDF5). DND results go back as one ``.mat`` per image with the denoised boxes, in the layout its submission
kit bundles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from laformer.data.datasets import ImagePair, ImageRef

SIDD_NOISY = "ValidationNoisyBlocksSrgb.mat"
SIDD_GT = "ValidationGtBlocksSrgb.mat"


class MatFileError(ValueError):
    """A ``.mat`` file that cannot be read or does not hold what the benchmark needs."""


def load_mat_array(path: Path, key: str | None = None) -> np.ndarray:
    """One array from a ``.mat`` file, MATLAB v5 (scipy) or v7.3 (HDF5, axes reversed back to MATLAB order).

    ``key`` defaults to the file's stem, as SIDD names its arrays.
    """
    key = key or path.stem
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    if h5py.is_hdf5(path):  # v7.3 files are HDF5 behind a 512-byte MATLAB header
        return _load_hdf5_array(path, key)
    try:
        content = scipy.io.loadmat(path, variable_names=[key])
    except Exception as error:
        raise MatFileError(f"cannot read {path} as a MATLAB file ({error}); the file may be truncated") from error
    if key not in content:
        raise MatFileError(f"{path} has no array named {key!r}")
    return content[key]


def _load_hdf5_array(path: Path, key: str) -> np.ndarray:
    try:
        with h5py.File(path, "r") as handle:
            if key not in handle:
                raise MatFileError(f"{path} has no array named {key!r}; it holds {sorted(handle.keys())}")
            return np.asarray(handle[key]).transpose()
    except OSError as error:
        raise MatFileError(f"cannot read {path} as a MATLAB v7.3 file ({error}); the file may be truncated") from error


def sidd_block_pairs(noisy_file: Path, gt_file: Path) -> list[ImagePair]:
    """The validation blocks as in-memory pairs named ``<image>_<block>`` (0-based, as in the arrays)."""
    noisy, gt = load_mat_array(noisy_file), load_mat_array(gt_file)
    for path, array in ((noisy_file, noisy), (gt_file, gt)):
        if array.ndim != 5 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise MatFileError(
                f"{path} holds a {array.dtype} array of shape {array.shape}; expected uint8 (images, blocks, H, W, 3)"
            )
    if noisy.shape != gt.shape:
        raise MatFileError(f"{noisy_file} holds {noisy.shape} blocks but {gt_file} holds {gt.shape}")
    pairs = []
    for i in range(noisy.shape[0]):
        for k in range(noisy.shape[1]):
            name = f"{i:02d}_{k:02d}"
            pairs.append(ImagePair(name, ImageRef(name, array=noisy[i, k]), ImageRef(name, array=gt[i, k])))
    return pairs


@dataclass(frozen=True)
class DndBox:
    """One 512 x 512 crop of a DND image: 0-based image and box indices, pixel rows/cols as slices."""

    image: int
    box: int
    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def name(self) -> str:
        return f"{self.image + 1:04d}_{self.box + 1:02d}"


def dnd_boxes(info_file: Path) -> list[list[DndBox]]:
    """Per image, its boxes from ``info.mat`` (``info/boundingboxes`` references, one 4 x 20 array each)."""
    try:
        with h5py.File(info_file, "r") as handle:
            refs = handle["info"]["boundingboxes"]
            per_image = []
            for i, ref in enumerate(np.asarray(refs).reshape(-1)):
                corners = np.asarray(handle[ref]).T  # (boxes, 4): row1, col1, row2, col2, 1-based inclusive
                boxes = [(int(b[0]) - 1, int(b[2]), int(b[1]) - 1, int(b[3])) for b in corners]
                per_image.append([DndBox(i, k, (r0, r1), (c0, c1)) for k, (r0, r1, c0, c1) in enumerate(boxes)])
    except (OSError, KeyError) as error:
        raise MatFileError(
            f"cannot read the DND boxes from {info_file} ({error}); expected a MATLAB v7.3 file with info/boundingboxes"
        ) from error
    return per_image


def load_dnd_image(path: Path) -> np.ndarray:
    """H x W x 3 float32 in [0, 1] from ``images_srgb/NNNN.mat``."""
    image = load_mat_array(path, "InoisySRGB").astype(np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise MatFileError(f"{path}: InoisySRGB has shape {image.shape}; expected H x W x 3")
    return image


def dnd_crops(folder: Path) -> list[tuple[DndBox, ImageRef]]:
    """Every box of every DND image as an in-memory crop; ``folder`` holds ``info.mat`` and ``images_srgb/``."""
    crops = []
    for boxes in dnd_boxes(folder / "info.mat"):
        if not boxes:
            continue
        image = load_dnd_image(folder / "images_srgb" / f"{boxes[0].image + 1:04d}.mat")
        for box in boxes:
            crop = image[box.rows[0] : box.rows[1], box.cols[0] : box.cols[1]]
            if crop.shape[:2] != (box.rows[1] - box.rows[0], box.cols[1] - box.cols[0]):
                raise MatFileError(f"box {box.name} lies outside image {box.image + 1:04d} of shape {image.shape}")
            crops.append((box, ImageRef(box.name, array=np.ascontiguousarray(crop))))
    return crops


def write_dnd_submission(restored: dict[str, np.ndarray], folder: Path) -> list[Path]:
    """Write denoised crops (name ``NNNN_BB`` -> H x W x 3 float in [0, 1]) as DND's kit expects.

    ``folder/NNNN_BB.mat`` holds ``Idenoised_crop`` per box; ``folder/bundled/NNNN.mat`` holds the image's
    boxes in order as ``Idenoised`` (a cell array) with ``israw=False`` and ``eval_version='1.0'``: upload the
    ``bundled`` folder.
    """
    folder = Path(folder)
    (folder / "bundled").mkdir(parents=True, exist_ok=True)
    by_image: dict[str, dict[int, np.ndarray]] = {}
    for name, crop in restored.items():
        image, box = name.split("_")
        crop = np.asarray(crop, dtype=np.float32)
        scipy.io.savemat(folder / f"{name}.mat", {"Idenoised_crop": crop})
        by_image.setdefault(image, {})[int(box)] = crop
    written = []
    for image, boxes in sorted(by_image.items()):
        cells = np.empty((len(boxes),), dtype=object)
        for i, box in enumerate(sorted(boxes)):
            cells[i] = boxes[box]
        path = folder / "bundled" / f"{image}.mat"
        scipy.io.savemat(path, {"Idenoised": cells, "israw": False, "eval_version": "1.0"})
        written.append(path)
    return written
