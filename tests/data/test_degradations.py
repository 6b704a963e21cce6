"""Synthetic degradations: noise level, blur as a low-pass filter, JPEG at any size and quality."""

from __future__ import annotations

import math

import pytest
import skimage.data
import torch

from laformer.data.degradations import Compose, GaussianBlur, GaussianNoise, JpegCompression


def _textured(b: int = 1, c: int = 3, h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A natural-ish image: smooth ramps plus fine random texture, inside [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, h).view(h, 1)
    x = torch.linspace(0, 1, w).view(1, w)
    base = 0.3 + 0.2 * torch.sin(6 * x + 4 * y) + 0.1 * x
    texture = 0.15 * torch.rand(b, c, h, w, generator=gen)
    return (base + texture).clamp(0, 1)


def _high_frequency_energy(image: torch.Tensor) -> float:
    """Spectral energy outside the lowest quarter of frequencies (the mean removed)."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(image - image.mean(dim=(-2, -1), keepdim=True)), dim=(-2, -1))
    h, w = image.shape[-2:]
    fy = torch.arange(h).view(h, 1) - h // 2
    fx = torch.arange(w).view(1, w) - w // 2
    high = (fy.abs() > h // 8) | (fx.abs() > w // 8)
    return float((spectrum.abs() ** 2)[..., high].sum())


@pytest.mark.parametrize("sigma", [15.0, 25.0, 50.0])
def test_gaussian_noise_has_the_right_std(sigma: float) -> None:
    clean = torch.full((1, 3, 256, 256), 0.5)
    gen = torch.Generator().manual_seed(0)
    noisy = GaussianNoise(sigma)(clean, gen)
    assert noisy.shape == clean.shape and noisy.dtype == clean.dtype
    noise = noisy - clean
    # 196608 samples: the std estimate is within ~0.5 % of the truth
    assert noise.std().item() == pytest.approx(sigma / 255, rel=0.02)
    assert abs(noise.mean().item()) < 0.01 * sigma / 255 * 5


def test_gaussian_noise_is_reproducible_with_a_seeded_generator() -> None:
    clean = _textured()
    noise = GaussianNoise(25.0)
    a = noise(clean, torch.Generator().manual_seed(11))
    b = noise(clean, torch.Generator().manual_seed(11))
    c = noise(clean, torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    # without a generator: fresh noise each call
    assert not torch.allclose(noise(clean), noise(clean))


def test_gaussian_noise_is_unclipped_by_default_and_clipped_on_request() -> None:
    clean = torch.full((1, 1, 64, 64), 0.02)
    unclipped = GaussianNoise(50.0)(clean, torch.Generator().manual_seed(0))
    assert unclipped.min() < 0
    clipped = GaussianNoise(50.0, clip=True)(clean, torch.Generator().manual_seed(0))
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert torch.equal(clipped, unclipped.clamp(0, 1))


def test_gaussian_blur_removes_high_frequencies() -> None:
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 64, 64, generator=gen)
    blurred = GaussianBlur(sigma=2.0, kernel_size=15)(clean)
    assert blurred.shape == clean.shape
    assert _high_frequency_energy(blurred) < 0.01 * _high_frequency_energy(clean)
    # a low-pass filter keeps the mean and the range
    torch.testing.assert_close(blurred.mean(), clean.mean(), atol=5e-3, rtol=0)
    assert blurred.min() >= clean.min() - 1e-6 and blurred.max() <= clean.max() + 1e-6
    # stronger blur, less detail
    stronger = GaussianBlur(sigma=4.0, kernel_size=25)(clean)
    assert _high_frequency_energy(stronger) < _high_frequency_energy(blurred)


def test_gaussian_blur_keeps_flat_images_flat() -> None:
    flat = torch.full((2, 1, 20, 30), 0.37)
    torch.testing.assert_close(GaussianBlur(sigma=2.0)(flat), flat)


def test_gaussian_blur_with_noise_is_reproducible() -> None:
    clean = _textured()
    blur = GaussianBlur(sigma=1.5, kernel_size=9, noise_sigma=5.0)
    a = blur(clean, torch.Generator().manual_seed(3))
    b = blur(clean, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    residual = a - GaussianBlur(sigma=1.5, kernel_size=9)(clean)
    assert residual.std().item() == pytest.approx(5 / 255, rel=0.1)


def test_jpeg_changes_the_image_but_stays_close() -> None:
    clean = _textured()
    coded = JpegCompression(quality=20)(clean)
    assert coded.shape == clean.shape
    difference = (coded - clean).abs()
    assert difference.max() > 1 / 255
    assert difference.mean() < 0.08


@pytest.mark.parametrize("size", [(37, 45), (17, 16), (64, 50), (31, 31)])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_keeps_shape_for_any_size_and_channels(size: tuple[int, int], channels: int) -> None:
    clean = _textured(b=2, c=channels, h=size[0], w=size[1])
    coded = JpegCompression(quality=30)(clean)
    assert coded.shape == clean.shape
    assert coded.dtype == clean.dtype
    assert not torch.allclose(coded, clean, atol=1e-3)
    assert (coded - clean).abs().mean() < 0.1


def test_jpeg_of_grey_image_is_grey_coding_of_it() -> None:
    grey = _textured(c=1)
    coded = JpegCompression(quality=40)(grey)
    as_rgb = JpegCompression(quality=40)(grey.expand(-1, 3, -1, -1))
    torch.testing.assert_close(coded, as_rgb.mean(1, keepdim=True))


@pytest.mark.parametrize("channels", [1, 3])
def test_higher_jpeg_quality_is_closer(channels: int) -> None:
    photo = torch.from_numpy(skimage.data.astronaut()[40:90, 150:220].copy()).permute(2, 0, 1)[None].float() / 255
    clean = photo.mean(1, keepdim=True) if channels == 1 else photo  # 50 x 70: not multiples of 16
    mses = [(JpegCompression(quality=q)(clean) - clean).pow(2).mean().item() for q in (10, 30, 60, 95)]
    psnrs = [-10 * math.log10(mse) for mse in mses]
    assert psnrs == sorted(psnrs)
    assert psnrs[-1] > psnrs[0] + 6
    # the textbook range for a photo: q 10 visibly lossy, q 95 nearly transparent
    assert psnrs[0] < 34 and psnrs[-1] > 38


def test_compose_applies_in_order_with_one_generator() -> None:
    clean = _textured()
    chain = Compose([GaussianBlur(sigma=1.0, kernel_size=7), GaussianNoise(10.0)])
    a = chain(clean, torch.Generator().manual_seed(5))
    expected = GaussianNoise(10.0)(GaussianBlur(sigma=1.0, kernel_size=7)(clean), torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, expected)
    assert "GaussianNoise" in repr(chain)
