"""The bundled demo: real photos shipped inside scikit-image, degraded on the fly. No download."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import skimage.data
from torch import Tensor

from laformer.data.datamodule import RestorationDataModule
from laformer.data.datasets import DegradedImageDataset, ImageRef
from laformer.data.degradations import GaussianNoise

# Natural RGB photos in skimage.data that load without a download. The split is by name and fixed.
DEMO_TRAIN = ("astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "motorcycle")
DEMO_VAL = ("chelsea", "rocket")


def load_demo_photo(name: str) -> np.ndarray:
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]  # the left view
    return getattr(skimage.data, name)()


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return image[top : top + size, left : left + size]


def demo_refs(names: tuple[str, ...]) -> list[ImageRef]:
    return [ImageRef(name=name, array=load_demo_photo(name)) for name in names]


class DemoDataModule(RestorationDataModule):
    """Train on six bundled photos, validate on two held-out ones (whole images, seeded degradation).

    Args:
        degradation: callable ``(clean_batch, generator) -> degraded``; Gaussian noise sigma 25 by default.
        channels: 3 (RGB) or 1 (photos converted to grey).
        seed: seed of the validation degradations.
        train_photos / val_photos: names of photos from ``skimage.data`` (see ``DEMO_TRAIN``, ``DEMO_VAL``).
        val_crop: score the centre ``val_crop`` x ``val_crop`` of each validation photo instead of the whole
            photo: for quadratic softmax attention on a CPU. None (default) validates whole images.
    """

    def __init__(
        self,
        degradation: Callable[..., Tensor] | None = None,
        channels: int = 3,
        seed: int = 0,
        train_photos: tuple[str, ...] = DEMO_TRAIN,
        val_photos: tuple[str, ...] = DEMO_VAL,
        val_crop: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.degradation = degradation or GaussianNoise(25.0)
        self.channels, self.seed = channels, seed
        self.train_photos, self.val_photos = tuple(train_photos), tuple(val_photos)
        self.val_crop = val_crop
        if overlap := set(self.train_photos) & set(self.val_photos):
            raise ValueError(f"photos {sorted(overlap)} are in both the training and validation split")

    def train_dataset(self) -> DegradedImageDataset:
        return DegradedImageDataset(
            demo_refs(self.train_photos),
            self.degradation,
            set_name="demo-train",
            patch_size=self.patch_size,
            small_image=self.small_image,
            repeat=self.repeat,
            channels=self.channels,
        )

    def val_dataset(self) -> DegradedImageDataset:
        refs = demo_refs(self.val_photos)
        if self.val_crop:
            refs = [ImageRef(r.name, array=center_crop(r.array, self.val_crop)) for r in refs]
        return DegradedImageDataset(refs, self.degradation, set_name="demo-val", seed=self.seed, channels=self.channels)
