"""Inputs of the measurements: random images in a network's layout, and a noisy mosaic of real photos.

Time and memory do not depend on pixel values, so forward benchmarks feed uniform noise; quality comparisons (one
pass against tiles, fp32 against half precision) need photographic content, hence the mosaic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Photos bundled with scikit-image that fill the 4K mosaic, in this order.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "hubble_deep_field", "immunohistochemistry")


def random_image(
    channels: int, height: int, width: int, device: Any = "cpu", channels_last: bool = False, batch: int = 1
) -> Any:
    """A (batch, channels, height, width) uniform tensor on ``device``, channels-last if asked (as the CPU runs)."""
    import torch

    x = torch.rand(batch, channels, height, width, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def photo_mosaic(height: int, width: int, row_height: int = 720) -> np.ndarray:
    """H x W x 3 uint8: rows of the bundled photos, each scaled to ``row_height`` (at most 1.5x), cycled."""
    import cv2

    from laformer.data.demo import load_demo_photo

    photos = []
    for name in PHOTOS:
        image = load_demo_photo(name)
        image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        rows = min(row_height, int(image.shape[0] * 1.5))
        cols = round(image.shape[1] * rows / image.shape[0])
        photos.append(cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA))
    canvas = np.zeros((height, width, 3), np.uint8)
    y, k = 0, 0
    while y < height:
        x, band = 0, 0
        while x < width:
            photo = photos[k % len(photos)][: height - y, : width - x]
            canvas[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
            x, band, k = x + photo.shape[1], max(band, photo.shape[0]), k + 1
        y += band
    return canvas


def photo_crop(size: int, photo: str = "chelsea") -> Any:
    """(1, 3, size, size) float64 centre crop of a photo bundled with scikit-image, in [0, 1]."""
    import torch

    from laformer.data.demo import center_crop, load_demo_photo

    image = center_crop(load_demo_photo(photo), size)
    if image.shape[:2] != (size, size):
        raise ValueError(f"photo {photo!r} is smaller than {size} x {size}")
    return torch.from_numpy(image.copy()).permute(2, 0, 1).unsqueeze(0).double() / 255.0


def add_noise(clean: Any, sigma: float, seed: int = 0) -> Any:
    """``clean`` (a float tensor in [0, 1]) with Gaussian noise of ``sigma`` (on the 0-255 scale), clipped."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return (clean + torch.randn(clean.shape, generator=generator) * sigma / 255).clamp(0, 1)


def noisy_photo(height: int, width: int, sigma: float = 25.0, seed: int = 0) -> tuple[Any, Any]:
    """(clean, noisy): the photo mosaic as a (3, H, W) float tensor, and it with Gaussian noise of ``sigma``."""
    from laformer.data.io import array_to_tensor

    clean = array_to_tensor(photo_mosaic(height, width))
    return clean, add_noise(clean, sigma, seed)
