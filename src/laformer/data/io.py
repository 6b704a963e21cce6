"""The one door for image files: reading and writing pixels, with a pixel limit, EXIF orientation and alpha.

Training, evaluation, ``laformer-restore`` and the web app all read through :func:`read_array`, so every one of
them gets the same guarantees for files people bring:

* **A pixel limit before decoding.** The size is read from the file's header (PIL parses only the header), so a
  small PNG that claims 20000 x 20000 pixels is refused at no cost instead of being decoded into gigabytes.
* **EXIF orientation.** Phones store JPEGs sideways with an orientation tag; OpenCV's unchanged-depth decode
  ignores it, so the pixels are turned here the way every image viewer shows them.
* **Alpha.** Colour and transparency are separated on request (``keep_alpha``): restoration works on the colour
  and carries the alpha through unchanged; training and scoring use the colour only.

Pixels are 8- or 16-bit PNG, JPEG, TIFF and BMP; tensors are C x H x W float32 in [0, 1].
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import torch
from torch import Tensor

from laformer.io_atomic import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# 8192 x 8192 = 67.1 Mpx: above any camera's photo (a 50 Mpx phone, a 61 Mpx full-frame body), far below what
# would exhaust memory at decode time (67 Mpx of 16-bit RGBA is 537 MB). Callers lower or raise it per use.
DEFAULT_MAX_PIXELS = 8192 * 8192
EXIF_ORIENTATION = 0x0112
# Header modes whose grey colour plus alpha OpenCV expands to four channels; kept as two (grey, alpha).
_GREY_ALPHA_MODES = ("LA", "La")


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file."""


class ImageTooLargeError(ImageReadError):
    """An image whose header claims more pixels than the caller's limit; nothing was decoded."""


@dataclass(frozen=True)
class ImageHeader:
    """What the file's header says, before any pixel is decoded.

    ``height`` and ``width`` are as displayed: already swapped for an EXIF orientation that turns the image by 90°.
    """

    height: int
    width: int
    orientation: int = 1
    mode: str = ""

    @property
    def pixels(self) -> int:
        return self.height * self.width


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def megapixels(count: int) -> str:
    """A pixel count as people read it: ``12,345 pixels`` or ``24.2 Mpx``."""
    return f"{count:,} pixels" if count < 1_000_000 else f"{count / 1e6:.1f} Mpx"


def _too_large(path: Path, width: int, height: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{path} is {width} x {height} ({megapixels(width * height)}), above the limit of {megapixels(max_pixels)}: "
        "crop or downscale it, or raise the limit (--max-pixels, or data.max_pixels for datasets) if this machine "
        "has the memory"
    )


def _bomb_pixels(error: Exception) -> int | None:
    """The pixel count PIL's decompression-bomb error quotes (it refuses before saying the size otherwise)."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return int(found.group(1)) if found else None


def read_header(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """The image's displayed size, EXIF orientation and mode from its header, refusing one above ``max_pixels``.

    Raises ``FileNotFoundError``, :class:`ImageTooLargeError` or :class:`ImageReadError`, each naming the file. A
    format PIL cannot parse falls back to a full OpenCV decode (after which the limit is still applied).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with PIL.Image.open(path) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise _too_large(path, width, height, max_pixels)
            orientation = _orientation(image)
            mode = image.mode
    except PIL.Image.DecompressionBombError as exc:  # PIL's own guard fires past ~179 Mpx, before it tells the size
        claimed = _bomb_pixels(exc)
        size = f"{megapixels(claimed)}" if claimed else "hundreds of megapixels"
        limit = megapixels(max_pixels) if max_pixels is not None else "what PIL allows"
        raise ImageTooLargeError(
            f"{path} claims {size}, far above the limit of {limit}: crop or downscale it"
        ) from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError):
        array = _decode(path)  # raises ImageReadError when OpenCV cannot decode it either
        height, width = int(array.shape[0]), int(array.shape[1])
        if max_pixels is not None and height * width > max_pixels:
            raise _too_large(path, width, height, max_pixels) from None
        return ImageHeader(height, width)
    if orientation in (5, 6, 7, 8):  # turned by 90°: displayed sides swap
        height, width = width, height
    return ImageHeader(height, width, orientation, mode)


def _orientation(image: PIL.Image.Image) -> int:
    """The EXIF orientation tag (1-8), 1 where there is none or it is unreadable."""
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not stop the pixels from being read
        return 1
    return value if 1 <= value <= 8 else 1


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H x W [x C]) the way EXIF ``orientation`` says they are displayed."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.swapaxes(0, 1)
    elif orientation == 6:
        array = np.rot90(array, k=-1)
    elif orientation == 7:
        array = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        array = np.rot90(array, k=1)
    return np.ascontiguousarray(array)


def _decode(path: Path) -> np.ndarray:
    """OpenCV's decode of the stored pixels (BGR[A] order, no orientation), or :class:`ImageReadError`."""
    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:  # OpenCV refuses some layouts with an assertion text of its own
        reason = str(exc).strip().splitlines()[-1][:120]
        raise ImageReadError(f"cannot decode image {path}: OpenCV cannot read its pixel layout ({reason})") from None
    if image is None:
        raise ImageReadError(f"cannot decode image {path}: the file is corrupt, truncated or not an image")
    return image


def read_array(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS, keep_alpha: bool = False) -> np.ndarray:
    """The file's pixels as displayed: H x W or H x W x C (RGB order), uint8 or uint16.

    The header is checked against ``max_pixels`` before decoding and the EXIF orientation applied. With
    ``keep_alpha`` an image with transparency comes back as RGBA (or grey + alpha, two channels); without it the
    alpha is dropped, as training and scoring want.
    """
    path = Path(path)
    header = read_header(path, max_pixels)
    image = _decode(path)
    if image.ndim == 3 and image.shape[2] == 4 and header.mode in _GREY_ALPHA_MODES:
        image = image[..., [0, 3]]  # OpenCV expanded grey + alpha to BGRA with equal colours
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if keep_alpha else cv2.COLOR_BGRA2RGB)
        elif image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        elif image.shape[2] == 2 and not keep_alpha:
            image = image[..., 0]
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"unsupported pixel type {image.dtype} in {path}; expected 8- or 16-bit")
    return apply_orientation(image, header.orientation)


def split_alpha(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour, alpha)`` of file pixels: RGBA -> RGB + alpha, grey + alpha -> grey + alpha, else no alpha."""
    if array.ndim == 3 and array.shape[2] in (2, 4):
        colour = array[..., :-1]
        return (colour[..., 0] if colour.shape[2] == 1 else colour), array[..., -1]
    return array, None


def join_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """The inverse of :func:`split_alpha`: the alpha plane appended as the last channel, unchanged."""
    if alpha is None:
        return colour
    planes = colour[..., None] if colour.ndim == 2 else colour
    return np.concatenate([planes, alpha[..., None].astype(colour.dtype)], axis=-1)


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


def read_image(path: str | Path, channels: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Tensor:
    """C x H x W float32 in [0, 1]; ``channels`` 1 or 3 converts, None keeps what the file has (alpha dropped)."""
    return array_to_tensor(read_array(path, max_pixels), channels)


def image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) as displayed, from the file's header without decoding the pixels (checks before training).

    Falls back to a full decode for formats PIL cannot identify; raises ``ImageReadError`` naming the file.
    """
    header = read_header(path, max_pixels)
    return header.height, header.width


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


def encode_array(array: np.ndarray, suffix: str) -> bytes:
    """H x W (x 3 RGB, x 4 RGBA, x 2 grey + alpha) uint8 or uint16 pixels encoded in the format ``suffix`` names.

    OpenCV has no grey + alpha encoding: an 8-bit one goes to PNG through PIL's ``LA`` mode; any other is encoded
    as RGBA with equal colour channels, which viewers show as the same grey picture with the same transparency.
    """
    suffix = suffix.lower() or ".png"
    bit_depth = 16 if array.dtype == np.uint16 else 8
    grey_alpha = array.ndim == 3 and array.shape[2] == 2
    if grey_alpha and bit_depth == 8 and suffix == ".png":
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.ascontiguousarray(array), "LA").save(buffer, format="PNG")
        return buffer.getvalue()
    if grey_alpha:
        array = np.concatenate([np.repeat(array[..., :1], 3, axis=2), array[..., 1:]], axis=2)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(suffix, array)
    if not ok:
        raise OSError(f"cannot encode pixels as {suffix} at {bit_depth} bit")
    return encoded.tobytes()


def write_array(path: str | Path, array: np.ndarray) -> None:
    """Write pixels (see :func:`encode_array`); the extension picks the format. The file appears whole or not at
    all (:func:`laformer.io_atomic.atomic_write`), so an interrupted run never leaves half an image behind."""
    path = Path(path)
    try:
        data = encode_array(array, path.suffix)
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc}") from None
    atomic_write(path, lambda handle: handle.write(data), durable=False)
