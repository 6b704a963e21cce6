"""The one image door (``laformer.data.io.read_array``) with files as people bring them: decompression bombs,
phone JPEGs stored sideways, cut-outs with transparency; and the same files through laformer-restore and the app."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest

from laformer.data.io import (
    ImageTooLargeError,
    image_size,
    read_array,
    read_header,
    read_image,
    split_alpha,
    write_array,
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG of a few dozen bytes whose header claims ``width`` x ``height`` RGB pixels (a decompression bomb's
    header; a real bomb's pixels compress to ~1 MB, which the door never reaches)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _photo(height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([x / width, y / height, 0.5 + 0.3 * np.sin(x / 7 + y / 5)], axis=-1)
    return np.clip((smooth + 0.05 * rng.standard_normal(smooth.shape)) * 255, 0, 255).astype(np.uint8)


def _with_orientation(path: Path, pixels: np.ndarray, orientation: int, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = PIL.Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes(), **save)
    return path


# ----------------------------------------------------------------------------------------------- pixel limit


@pytest.mark.parametrize(("width", "height"), [(20000, 20000), (60000, 60000)])
def test_a_bomb_header_is_refused_before_decoding(tmp_path: Path, width: int, height: int) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", width, height)
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match=rf"{bomb}.*(claims|is).*above the limit"):
        read_array(bomb)
    with pytest.raises(ImageTooLargeError):
        read_image(bomb)  # the datasets' reader: the same door
    assert time.perf_counter() - start < 2


def test_the_limit_is_the_callers_and_names_the_size(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    write_array(path, _photo(48, 80))
    with pytest.raises(ImageTooLargeError, match=r"photo\.png is 80 x 48 \(3,840 pixels\), above the limit of 1,000"):
        read_array(path, max_pixels=1000)
    assert read_array(path, max_pixels=80 * 48).shape == (48, 80, 3)


# ----------------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_reads_as_viewers_show_it(tmp_path: Path, orientation: int) -> None:
    pixels = _photo(6, 9)
    path = _with_orientation(tmp_path / "turned.png", pixels, orientation)  # lossless, so equality is exact
    shown = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(read_array(path), shown)
    assert image_size(path) == shown.shape[:2] == (read_header(path).height, read_header(path).width)


def test_a_phone_jpeg_stored_sideways_is_restored_upright(tmp_path: Path, trained_ckpt: Path) -> None:
    from laformer.cli.restore import main

    stored = _photo(48, 80)
    phone = _with_orientation(tmp_path / "in" / "IMG_0001.jpg", stored, 6, quality=95)
    assert main([str(phone), "-o", str(tmp_path / "out"), "--ckpt", str(trained_ckpt), "--device", "cpu"]) == 0
    restored = read_array(tmp_path / "out" / "IMG_0001.jpg")
    assert restored.shape == (80, 48, 3)  # displayed: turned 90° clockwise from the stored 48 x 80
    upright = np.rot90(stored, k=-1).astype(float)
    assert np.abs(restored - upright).mean() < np.abs(restored - upright[::-1, ::-1]).mean()


# ----------------------------------------------------------------------------------------------- alpha


@pytest.mark.parametrize(("channels", "dtype"), [(4, np.uint8), (4, np.uint16), (2, np.uint8)])
def test_alpha_is_split_and_written_back_unchanged(tmp_path: Path, channels: int, dtype) -> None:
    rng = np.random.default_rng(1)
    peak = np.iinfo(dtype).max
    pixels = rng.integers(0, peak, (20, 30, channels), endpoint=True).astype(dtype)
    path = tmp_path / "cutout.png"
    write_array(path, pixels)
    back = read_array(path, keep_alpha=True)
    np.testing.assert_array_equal(back, pixels)
    _, alpha = split_alpha(back)
    np.testing.assert_array_equal(alpha, pixels[..., -1])
    assert read_array(path).shape == ((20, 30, 3) if channels == 4 else (20, 30))  # without keep_alpha


def test_restore_keeps_the_alpha_and_restores_the_colour(tmp_path: Path, trained_ckpt: Path) -> None:
    from laformer.cli.restore import main

    colour = _photo(40, 56)
    alpha = np.tile(np.linspace(0, 255, 56).astype(np.uint8), (40, 1))
    alpha[:10] = 0  # a fully transparent band, as cut-outs have
    write_array(tmp_path / "rgba" / "cutout.png", np.dstack([colour, alpha]))
    write_array(tmp_path / "rgb" / "cutout.png", colour)
    for folder in ("rgba", "rgb"):
        args = [str(tmp_path / folder / "cutout.png"), "-o", str(tmp_path / f"out_{folder}"), "--ckpt"]
        assert main([*args, str(trained_ckpt), "--device", "cpu"]) == 0
    restored = read_array(tmp_path / "out_rgba" / "cutout.png", keep_alpha=True)
    assert restored.shape == (40, 56, 4)
    np.testing.assert_array_equal(restored[..., 3], alpha)
    np.testing.assert_array_equal(restored[..., :3], read_array(tmp_path / "out_rgb" / "cutout.png"))


def test_the_app_keeps_the_alpha_of_an_upload(tmp_path: Path, trained_ckpt: Path) -> None:
    from laformer.app.service import Degradation, Request, RestoreOptions, Restorer, handle_request

    colour, alpha = _photo(40, 56), np.full((40, 56), 128, np.uint8)
    upload = tmp_path / "upload.png"
    write_array(upload, np.dstack([colour, alpha]))
    restorer = Restorer.from_path(trained_ckpt, RestoreOptions(device="cpu"))
    request = Request(upload=upload, upload_name="cutout.png", degradation=Degradation("noise", noise_sigma=25))
    restoration, files = handle_request(restorer, request, tmp_path / "request")
    result = read_array(files.result, keep_alpha=True)
    assert result.shape == (40, 56, 4)
    np.testing.assert_array_equal(result[..., 3], alpha)  # neither degraded nor restored
    np.testing.assert_array_equal(restoration.degraded[..., 3], alpha)
    assert restoration.psnr_restored is not None  # scored on the colour
