"""Image I/O: round trips through every supported format, bit depths, channel conversion and clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import torch

from laformer.data.io import ImageReadError, bit_depth, read_array, read_image, write_image


def _random_image(channels: int, h: int = 37, w: int = 53, seed: int = 0) -> torch.Tensor:
    """A C x H x W image already on the 8-bit grid, so an 8-bit lossless round trip is exact."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (channels, h, w), generator=gen).float() / 255


def _smooth_image(channels: int, h: int = 64, w: int = 80) -> torch.Tensor:
    """A smooth image with distinct channels (JPEG keeps it close)."""
    y = torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    x = torch.linspace(0, 1, w).view(1, w).expand(h, w)
    planes = [0.1 + 0.8 * x, 0.1 + 0.8 * y, 0.5 + 0.3 * torch.sin(3 * x + 2 * y)]
    return torch.stack(planes[:channels])


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".bmp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_8bit_round_trip(tmp_path: Path, ext: str, channels: int) -> None:
    image = _random_image(channels)
    path = tmp_path / f"img{ext}"
    write_image(path, image)
    back = read_image(path)
    assert back.dtype == torch.float32
    assert back.shape == image.shape
    assert torch.equal(back, image)
    assert bit_depth(path) == 8


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_16bit_round_trip(tmp_path: Path, ext: str, channels: int) -> None:
    gen = torch.Generator().manual_seed(1)
    levels = torch.randint(0, 65536, (channels, 29, 41), generator=gen)
    image = levels.double() / 65535
    path = tmp_path / f"img16{ext}"
    write_image(path, image.float(), bit_depth=16)
    assert bit_depth(path) == 16
    stored = read_array(path)
    assert stored.dtype == np.uint16
    expected = levels.numpy().astype(np.uint16)
    expected = expected[0] if channels == 1 else expected.transpose(1, 2, 0)
    # float32 holds every 16-bit level/65535 closely enough that rounding recovers the exact level
    np.testing.assert_array_equal(stored, expected)
    back = read_image(path)
    assert back.shape == image.shape
    torch.testing.assert_close(back.double(), image, atol=1e-7, rtol=0)


def test_16bit_png_written_by_opencv_keeps_exact_values(tmp_path: Path) -> None:
    gradient = np.arange(0, 65536, 16, dtype=np.uint16).reshape(64, 64)  # 4096 distinct levels, 0 .. 65520
    gradient[-1, -1] = 65535  # replaces 65520: still 4096 levels, now with the peak
    path = tmp_path / "gradient.png"
    assert cv2.imwrite(str(path), gradient)
    image = read_image(path)
    assert image.shape == (1, 64, 64)
    expected = torch.from_numpy(gradient.astype(np.float64) / 65535)
    torch.testing.assert_close(image[0].double(), expected, atol=1e-7, rtol=0)
    assert image.max().item() == 1.0
    # neighbouring 16-bit levels stay distinct (no reduction to 8 bit on the way)
    assert torch.unique(image).numel() == np.unique(gradient).size == 4096


def test_16bit_rgb_tiff_written_by_tifffile_keeps_exact_values_and_channel_order(tmp_path: Path) -> None:
    h, w = 16, 24
    ramp = np.linspace(0, 65535, h * w).round().astype(np.uint16).reshape(h, w)
    rgb = np.stack([ramp, 65535 - ramp, np.full_like(ramp, 1234)], axis=-1)
    path = tmp_path / "ramp.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    image = read_image(path)
    assert image.shape == (3, h, w)
    expected = torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float64) / 65535)
    torch.testing.assert_close(image.double(), expected, atol=1e-7, rtol=0)


def test_rgb_channel_order_is_preserved(tmp_path: Path) -> None:
    """A pure red image must come back red (not BGR-swapped), and be stored red for other readers."""
    red = torch.zeros(3, 8, 8)
    red[0] = 1.0
    path = tmp_path / "red.png"
    write_image(path, red)
    assert torch.equal(read_image(path), red)
    stored_bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored_bgr[..., 2].min() == 255 and stored_bgr[..., :2].max() == 0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_jpeg_round_trip_is_close(tmp_path: Path, channels: int, ext: str) -> None:
    image = _smooth_image(channels)
    path = tmp_path / f"photo{ext}"
    write_image(path, image)
    back = read_image(path)
    assert back.shape == image.shape
    assert (back - image).abs().mean() < 0.01
    assert (back - image).abs().max() < 0.1


@pytest.mark.parametrize("ext", [".PNG", ".JPG", ".TIF", ".Bmp"])
def test_uppercase_extensions(tmp_path: Path, ext: str) -> None:
    image = _smooth_image(3, 32, 32)
    path = tmp_path / f"UPPER{ext}"
    write_image(path, image)
    assert path.is_file()
    back = read_image(path)
    assert back.shape == (3, 32, 32)
    assert (back - image).abs().mean() < 0.01


def test_uppercase_png_is_really_png(tmp_path: Path) -> None:
    path = tmp_path / "x.PNG"
    write_image(path, _random_image(3))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_channels_conversion(tmp_path: Path) -> None:
    rgb = _random_image(3, seed=3)
    rgb_path = tmp_path / "rgb.png"
    write_image(rgb_path, rgb)
    grey = read_image(rgb_path, channels=1)
    assert grey.shape == (1, *rgb.shape[1:])
    expected = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    torch.testing.assert_close(grey[0], expected, atol=1e-6, rtol=0)
    # agrees with OpenCV's own grayscale conversion up to its 8-bit rounding
    cv_grey = cv2.cvtColor(cv2.imread(str(rgb_path)), cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    assert np.abs(grey[0].numpy() - cv_grey).max() <= 1 / 255 + 1e-6
    assert torch.equal(read_image(rgb_path, channels=3), rgb)

    mono = _random_image(1, seed=4)
    mono_path = tmp_path / "mono.png"
    write_image(mono_path, mono)
    as_rgb = read_image(mono_path, channels=3)
    assert as_rgb.shape == (3, *mono.shape[1:])
    for c in range(3):
        assert torch.equal(as_rgb[c], mono[0])
    assert read_image(mono_path).shape == mono.shape
    assert torch.equal(read_image(mono_path, channels=1), mono)


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    bgra = np.zeros((6, 7, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128
    path = tmp_path / "alpha.png"
    assert cv2.imwrite(str(path), bgra)
    image = read_image(path)
    assert image.shape == (3, 6, 7)
    torch.testing.assert_close(image[:, 0, 0], torch.tensor([30, 20, 10]) / 255.0)


def test_write_creates_parent_folders_and_non_ascii_names(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "ordner" / "bild_ä_写真.png"
    image = _random_image(3)
    write_image(path, image)
    assert torch.equal(read_image(path), image)


def test_write_clips_out_of_range_values(tmp_path: Path) -> None:
    image = torch.tensor([[[-0.5, 0.25, 1.7]]])
    path = tmp_path / "clip.png"
    write_image(path, image)
    torch.testing.assert_close(read_image(path), torch.tensor([[[0.0, 64 / 255, 1.0]]]))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".bmp"])
def test_truncated_file_raises_naming_it(tmp_path: Path, ext: str) -> None:
    good = tmp_path / f"good{ext}"
    write_image(good, _random_image(3, 64, 64))
    bad = tmp_path / f"broken_file{ext}"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="broken_file") as info:
        read_image(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"this is not an image at all", bytes(range(256)) * 4])
def test_garbage_file_raises_image_read_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "garbage.png"
    bad.write_bytes(content)
    with pytest.raises(ImageReadError, match=r"garbage\.png"):
        read_image(bad)
    assert issubclass(ImageReadError, ValueError)


def test_missing_file_raises_file_not_found_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "missing_image.png"
    with pytest.raises(FileNotFoundError, match=r"missing_image\.png") as info:
        read_image(missing)
    assert str(missing) in str(info.value)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=r"folder\.png"):
        read_image(folder)


def test_invalid_bit_depth_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "x.png", _random_image(1), bit_depth=12)
    assert not (tmp_path / "x.png").exists()
