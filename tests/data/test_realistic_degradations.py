"""Degradations stored as a camera or file holds them: clipped to [0, 1] and quantised to 8 or 16 bits."""

from __future__ import annotations

from pathlib import Path

import pytest
import skimage.data
import torch

from laformer.data.degradations import (
    GaussianBlur,
    GaussianNoise,
    JpegCompression,
    RandomGaussianNoise,
    as_stored,
    known_noise_sigma,
)
from laformer.data.io import read_image, write_image


def _photo() -> torch.Tensor:
    """A real photo crop with dark and bright areas, so clipping matters: 1 x 3 x 64 x 80."""
    return torch.from_numpy(skimage.data.astronaut()[200:264, 40:120].copy()).permute(2, 0, 1)[None].float() / 255


def _on_grid(image: torch.Tensor, bits: int) -> bool:
    peak = 2**bits - 1
    return bool(torch.allclose(image * peak, (image * peak).round(), atol=1e-3))


def test_as_stored_clips_and_quantises() -> None:
    x = torch.linspace(-0.2, 1.2, 1001)
    assert torch.equal(as_stored(x), x)
    clipped = as_stored(x, clip=True)
    assert clipped.min() == 0 and clipped.max() == 1
    for bits in (8, 16):
        stored = as_stored(x, quantize=bits)  # quantising implies clipping
        assert stored.min() == 0 and stored.max() == 1
        assert _on_grid(stored, bits)
        assert (stored - x.clamp(0, 1)).abs().max() <= 0.5 / (2**bits - 1) + 1e-7
    assert len(torch.unique(as_stored(x, quantize=8))) <= 256
    with pytest.raises(ValueError, match="quantize"):
        as_stored(x, quantize=12)
    with pytest.raises(ValueError, match="quantize"):
        GaussianNoise(25.0, quantize=7)


@pytest.mark.parametrize("bits", [8, 16])
def test_stored_noise_is_the_float_noise_clipped_and_rounded(bits: int) -> None:
    clean = _photo()
    float_noisy = GaussianNoise(25.0)(clean, torch.Generator().manual_seed(4))
    assert float_noisy.min() < 0 or float_noisy.max() > 1, "the check needs noise that leaves [0, 1]"
    stored = GaussianNoise(25.0, clip=True, quantize=bits)(clean, torch.Generator().manual_seed(4))
    peak = 2**bits - 1
    torch.testing.assert_close(stored, float_noisy.clamp(0, 1).mul(peak).round().div(peak))
    assert _on_grid(stored, bits)


def test_the_stored_noisy_image_survives_a_png_file_unchanged(tmp_path: Path) -> None:
    clean = _photo()
    stored = GaussianNoise(25.0, clip=True, quantize=8)(clean, torch.Generator().manual_seed(0))[0]
    write_image(tmp_path / "noisy.png", stored)
    assert torch.equal(read_image(tmp_path / "noisy.png"), stored)
    # Float noise does not: the file clips and rounds it.
    float_noisy = GaussianNoise(25.0)(clean, torch.Generator().manual_seed(0))[0]
    write_image(tmp_path / "float.png", float_noisy)
    assert (read_image(tmp_path / "float.png") - float_noisy).abs().max() > 0.01

    stored16 = GaussianNoise(25.0, quantize=16)(clean, torch.Generator().manual_seed(0))[0]
    write_image(tmp_path / "noisy16.png", stored16, bit_depth=16)
    torch.testing.assert_close(read_image(tmp_path / "noisy16.png"), stored16, atol=1e-7, rtol=0)


@pytest.mark.parametrize(
    "degradation",
    [
        GaussianBlur(sigma=1.5, kernel_size=9, noise_sigma=10.0, clip=True, quantize=8),
        JpegCompression(quality=30, quantize=8),
        RandomGaussianNoise(10.0, 40.0, clip=True, quantize=8),
    ],
    ids=["blur+noise", "jpeg", "blind-noise"],
)
def test_every_degradation_can_be_stored_8_bit(degradation) -> None:
    clean = _photo()
    out = degradation(clean, torch.Generator().manual_seed(1))
    assert out.shape == clean.shape
    assert out.min() >= 0 and out.max() <= 1 and _on_grid(out, 8)
    # The same degradation left as floats differs from it by at most half a level plus what clipping removed.
    loose = type(degradation)(**{**degradation.__dict__, "clip": False, "quantize": None})
    raw = loose(clean, torch.Generator().manual_seed(1))
    assert not _on_grid(raw, 8)
    torch.testing.assert_close(out, as_stored(raw, quantize=8))


def test_known_noise_sigma_only_for_plain_gaussian_noise() -> None:
    assert known_noise_sigma(GaussianNoise(15.0, clip=True, quantize=8)) == 15.0
    assert known_noise_sigma(RandomGaussianNoise()) is None
    assert known_noise_sigma(GaussianBlur(noise_sigma=5.0)) is None
    assert known_noise_sigma(JpegCompression()) is None


def test_demo_stores_its_degradations_benchmarks_do_not(make_cfg) -> None:
    demo = make_cfg("train", [])
    assert (demo.data.degradation.clip, demo.data.degradation.quantize) == (True, 8)
    blur = make_cfg("train", ["data/degradation=blur"])
    assert blur.data.degradation._target_.endswith("GaussianBlur") and blur.data.degradation.quantize == 8
    dfwb = make_cfg("train", ["experiment=denoise_gaussian_dfwb"])
    assert (dfwb.data.degradation.clip, dfwb.data.degradation.quantize) == (False, None)
    fixed = make_cfg("train", ["experiment=denoise_gaussian_dfwb", "data/degradation=noise"])
    assert fixed.data.degradation.clip is False and fixed.data.degradation.quantize is None
