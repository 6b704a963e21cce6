"""Datasets of image pairs for restoration: stored pairs, or clean images degraded on the fly.

Every item is a dict ``{"input", "target", "name", "set"}`` with C x H x W float tensors in [0, 1]. An item
keeps its whole image unless a ``patch_size`` asks for random aligned crops (training). Crops are cut from the
stored uint8/uint16 pixels and only the patch is converted to float: converting a whole 1280 x 720 frame to
crop 256 x 256 of it cost more than the crop itself. The conversion is per pixel, so the patch's floats are
exactly the floats of the same window of the converted frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from laformer.data.io import array_to_tensor, read_array, read_image

SMALL_IMAGE_POLICIES = ("error", "pad")
SIZE_MISMATCH_POLICIES = ("error", "center_crop_target")


@dataclass(frozen=True)
class ImageRef:
    """An image on disk, or an in-memory array (bundled photos) under a name."""

    name: str
    path: Path | None = None
    array: np.ndarray | None = None

    def load(self, channels: int | None = None) -> Tensor:
        if self.path is not None:
            return read_image(self.path, channels)
        return array_to_tensor(self.array, channels)

    def planes(self) -> list[np.ndarray]:
        """The stored pixels (H x W or H x W x C, uint8/uint16 from files), one array per image read as one.

        Crops are taken from these before any float conversion (:func:`planes_to_tensor` converts the patch).
        """
        return [read_array(self.path) if self.path is not None else self.array]

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"<bundled {self.name}>"


@dataclass(frozen=True)
class StackedRef(ImageRef):
    """Several images of one scene read as one, channels stacked (dual-pixel left and right views)."""

    parts: tuple[ImageRef, ...] = ()

    def load(self, channels: int | None = None) -> Tensor:
        return torch.cat([part.load(channels) for part in self.parts])

    def planes(self) -> list[np.ndarray]:
        return [plane for part in self.parts for plane in part.planes()]

    def __str__(self) -> str:
        return " + ".join(str(part) for part in self.parts)


@dataclass(frozen=True)
class ImagePair:
    name: str
    input: ImageRef
    target: ImageRef


def planes_to_tensor(planes: Sequence[np.ndarray], channels: int | None = None) -> Tensor:
    """Stored pixels -> C x H x W float32 in [0, 1]: each plane converted (to ``channels``), then stacked."""
    if len(planes) == 1:
        return array_to_tensor(planes[0], channels)
    return torch.cat([array_to_tensor(plane, channels) for plane in planes])


def crop_window(height: int, width: int, patch: int, generator: torch.Generator | None = None) -> tuple[int, int]:
    """(top, left) of a random ``patch`` x ``patch`` window: the draws every training crop makes, in this order."""
    top = int(torch.randint(0, height - patch + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - patch + 1, (1,), generator=generator))
    return top, left


def random_crop(images: Sequence[Tensor], patch: int, generator: torch.Generator | None = None) -> list[Tensor]:
    """The same random ``patch`` x ``patch`` window from each of several equally sized images."""
    top, left = crop_window(*images[0].shape[-2:], patch, generator)
    return [im[..., top : top + patch, left : left + patch] for im in images]


def center_crop_array(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """:func:`center_crop_to` for stored pixels (H x W (x C)): the same window."""
    h, w = array.shape[:2]
    th, tw = min(size[0], h), min(size[1], w)
    top, left = (h - th) // 2, (w - tw) // 2
    return array[top : top + th, left : left + tw]


def too_small_message(source: object, height: int, width: int, patch: int) -> str:
    """The one wording for an image smaller than the training patch (raised while loading and in up-front checks)."""
    return (
        f"{source} is {height}x{width}, smaller than the training patch {patch}x{patch}; "
        "lower data.patch_size or set data.small_image=pad"
    )


def fit_patch(images: Sequence[Tensor], patch: int, policy: str, source: object) -> list[Tensor]:
    """Reflect-pad images smaller than the patch, or refuse them, naming the file."""
    h, w = images[0].shape[-2:]
    if h >= patch and w >= patch:
        return list(images)
    if policy == "error":
        raise ValueError(too_small_message(source, h, w, patch))
    ph, pw = max(patch - h, 0), max(patch - w, 0)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return [F.pad(im.unsqueeze(0), (0, pw, 0, ph), mode=mode).squeeze(0) for im in images]


def center_crop_to(image: Tensor, size: Sequence[int]) -> Tensor:
    """The centre ``size`` (h, w) of ``image``; unchanged where it is not larger (the caller checks sizes)."""
    h, w = image.shape[-2:]
    th, tw = min(size[0], h), min(size[1], w)
    top, left = (h - th) // 2, (w - tw) // 2
    return image[..., top : top + th, left : left + tw]


class CenterCropped(Dataset):
    """The centre ``size`` x ``size`` window of every item of a whole-image dataset (e.g. GoPro validation)."""

    def __init__(self, dataset: Dataset, size: int) -> None:
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        for key in ("input", "target"):
            item[key] = center_crop_to(item[key], (self.size, self.size))
        return item


class Limited(Dataset):
    """The first ``count`` items of a dataset: a declared, smaller validation set."""

    def __init__(self, dataset: Dataset, count: int) -> None:
        self.dataset, self.count = dataset, min(count, len(dataset))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        if index >= self.count:
            raise IndexError(index)
        return self.dataset[index]


class _CroppingDataset(Dataset):
    """Shared crop-and-repeat behaviour: ``repeat`` lengthens a training epoch over few large images."""

    def __init__(self, set_name: str, patch_size: int | None, small_image: str, repeat: int, channels: int | None):
        if small_image not in SMALL_IMAGE_POLICIES:
            raise ValueError(f"small_image must be one of {SMALL_IMAGE_POLICIES}, got {small_image!r}")
        self.set_name, self.patch_size, self.small_image = set_name, patch_size, small_image
        self.repeat, self.channels = max(1, repeat), channels

    def __len__(self) -> int:
        return self.num_images * self.repeat

    @property
    def num_images(self) -> int:
        raise NotImplementedError

    def _crop(self, images: list[Tensor], source: object) -> list[Tensor]:
        if self.patch_size is None:
            return images
        images = fit_patch(images, self.patch_size, self.small_image, source)
        return random_crop(images, self.patch_size)

    def _crop_planes(self, images: list[list[np.ndarray]], source: object) -> list[Tensor]:
        """Crop stored pixels (each image a list of planes), then convert the patch to float.

        Images smaller than the patch take the float path (pad or refuse, :func:`fit_patch`): rare, and their
        frames are small. Either way the crop's random draws are the same (:func:`crop_window`).
        """
        patch = self.patch_size
        h, w = images[0][0].shape[:2]
        if patch is None or h < patch or w < patch:
            return self._crop([planes_to_tensor(planes, self.channels) for planes in images], source)
        top, left = crop_window(h, w, patch)
        window = (slice(top, top + patch), slice(left, left + patch))
        return [planes_to_tensor([plane[window] for plane in planes], self.channels) for planes in images]


class PairedImageDataset(_CroppingDataset):
    """Stored (degraded, clean) pairs, already matched by name."""

    def __init__(
        self,
        pairs: Sequence[ImagePair],
        set_name: str,
        patch_size: int | None = None,
        small_image: str = "error",
        repeat: int = 1,
        channels: int | None = None,
        size_mismatch: str = "error",
    ) -> None:
        super().__init__(set_name, patch_size, small_image, repeat, channels)
        if not pairs:
            raise ValueError(f"dataset {set_name!r} has no image pairs")
        if size_mismatch not in SIZE_MISMATCH_POLICIES:
            raise ValueError(f"size_mismatch must be one of {SIZE_MISMATCH_POLICIES}, got {size_mismatch!r}")
        self.pairs, self.size_mismatch = list(pairs), size_mismatch

    @property
    def num_images(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index % len(self.pairs)]
        return self.pair_item(pair.input.planes(), pair.target.planes(), pair.name, pair.input, pair.target)

    def pair_item(
        self, inp: list[np.ndarray], tgt: list[np.ndarray], name: str, input_source: object, target_source: object
    ) -> dict:
        """The item of one pair of stored pixels (image files or a packed store read the same way)."""
        if self.size_mismatch == "center_crop_target":
            tgt = [center_crop_array(plane, inp[0].shape[:2]) for plane in tgt]
        if inp[0].shape[:2] != tgt[0].shape[:2]:
            shapes = [tuple(planes_to_tensor(planes, self.channels).shape) for planes in (inp, tgt)]
            raise ValueError(
                f"input {input_source} is {shapes[0]} but its target {target_source} is {shapes[1]} "
                "(channels x height x width); a pair must have the same height and width"
            )
        inp_t, tgt_t = self._crop_planes([inp, tgt], input_source)
        return {"input": inp_t, "target": tgt_t, "name": name, "set": self.set_name}


class DegradedImageDataset(_CroppingDataset):
    """Clean images with the degraded input made on the fly.

    With ``seed`` set (validation and test), image i is degraded with a generator seeded ``seed + i``
    after any crop, so every run sees the same inputs. Without it (training), noise is fresh each time.
    """

    def __init__(
        self,
        targets: Sequence[ImageRef],
        degradation: Callable[[Tensor, torch.Generator | None], Tensor],
        set_name: str,
        seed: int | None = None,
        patch_size: int | None = None,
        small_image: str = "error",
        repeat: int = 1,
        channels: int | None = None,
    ) -> None:
        super().__init__(set_name, patch_size, small_image, repeat, channels)
        if not targets:
            raise ValueError(f"dataset {set_name!r} has no images")
        self.targets, self.degradation, self.seed = list(targets), degradation, seed

    @property
    def num_images(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict:
        ref = self.targets[index % len(self.targets)]
        (tgt,) = self._crop_planes([ref.planes()], ref)
        generator = None
        if self.seed is not None:
            generator = torch.Generator().manual_seed(self.seed + index % len(self.targets))
        inp = self.degradation(tgt.unsqueeze(0), generator).squeeze(0)
        return {"input": inp, "target": tgt, "name": ref.name, "set": self.set_name}


class InputOnlyDataset(Dataset):
    """Degraded images without ground truth (DND): items ``{"input", "name", "set"}`` for prediction."""

    def __init__(self, inputs: Sequence[ImageRef], set_name: str, channels: int | None = None) -> None:
        if not inputs:
            raise ValueError(f"dataset {set_name!r} has no images")
        self.inputs, self.set_name, self.channels = list(inputs), set_name, channels

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        ref = self.inputs[index]
        return {"input": ref.load(self.channels), "name": ref.name, "set": self.set_name}
