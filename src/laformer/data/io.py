"""Reading and writing images as float tensors in [0, 1]: 8- and 16-bit PNG, JPEG, TIFF, BMP."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import torch
from torch import Tensor

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_array(path: str | Path) -> np.ndarray:
    """The file's pixels as stored: H x W or H x W x C (RGB order), uint8 or uint16."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ImageReadError(f"cannot decode image {path}: the file is corrupt, truncated or not an image")
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"unsupported pixel type {image.dtype} in {path}; expected 8- or 16-bit")
    return image


def array_to_tensor(image: np.ndarray, channels: int | None = None) -> Tensor:
    """H x W (x C) uint8/uint16/float array -> C x H x W float32 in [0, 1], converted to 1 or 3 channels."""
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        scale = 1.0
    tensor = torch.from_numpy(np.ascontiguousarray(image)).float().div_(scale)
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    if channels == 3 and tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1).contiguous()
    elif channels == 1 and tensor.shape[0] == 3:
        # ITU-R BT.601 luma, as OpenCV's and PIL's grayscale conversion.
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        tensor = (tensor * weights).sum(0, keepdim=True)
    return tensor


def read_image(path: str | Path, channels: int | None = None) -> Tensor:
    """C x H x W float32 in [0, 1]; ``channels`` 1 or 3 converts, None keeps what the file has."""
    return array_to_tensor(read_array(path), channels)


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding the pixels (checks before training).

    Falls back to a full decode for formats PIL cannot identify; raises ``ImageReadError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with PIL.Image.open(path) as image:
            width, height = image.size
        return height, width
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError):
        array = read_array(path)  # raises ImageReadError when OpenCV cannot decode it either
        return int(array.shape[0]), int(array.shape[1])


def bit_depth(path: str | Path) -> int:
    return 16 if read_array(path).dtype == np.uint16 else 8


def tensor_to_array(image: Tensor, bit_depth: int = 8) -> np.ndarray:
    """C x H x W float in [0, 1] -> H x W (x C) uint8 or uint16, rounded and clipped."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    peak, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    array = image.detach().float().clamp(0, 1).mul(peak).round().cpu().numpy().astype(dtype)
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def write_image(path: str | Path, image: Tensor, bit_depth: int = 8) -> None:
    """Write C x H x W in [0, 1]; the extension picks the format (16 bit needs PNG or TIFF)."""
    write_array(path, tensor_to_array(image, bit_depth))


def write_array(path: str | Path, array: np.ndarray) -> None:
    """Write H x W (x 3, RGB) uint8 or uint16 pixels; the extension picks the format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bit_depth = 16 if array.dtype == np.uint16 else 8
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix.lower() or ".png", array)
    if not ok:
        raise OSError(f"cannot encode {path} as {path.suffix} at {bit_depth} bit")
    encoded.tofile(path)
