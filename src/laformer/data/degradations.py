"""Synthetic degradations for ground-truth-only data, applied to (B, C, H, W) batches in [0, 1].

Each takes an optional ``torch.Generator``: evaluation sets seed one per image, so a benchmark is
degraded identically on every run; training passes none and draws fresh noise.

Each can also finish its output as a camera or an image file would hold it (:func:`as_stored`): ``clip`` to
[0, 1], and ``quantize`` to 8 (or 16) bits, which implies clipping. Off by default, as in the standard synthetic
benchmarks (float noise, unclipped); the demo turns both on, so what it trains and validates on is what a user's
noisy PNG holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import kornia
import torch
from torch import Tensor

QUANTIZE_BITS = (8, 16)


def as_stored(image: Tensor, clip: bool = False, quantize: int | None = None) -> Tensor:
    """``image`` as a file stores it: clipped to [0, 1] when ``clip`` or ``quantize``, then rounded to
    ``quantize`` bits (8: multiples of 1/255; 16: of 1/65535). ``quantize`` None (or 0) keeps floats."""
    if quantize:
        _check_quantize(quantize)
        peak = float(2**quantize - 1)
        return image.clamp(0, 1).mul(peak).round().div(peak)
    return image.clamp(0, 1) if clip else image


def _check_quantize(quantize: int | None) -> None:
    if quantize and quantize not in QUANTIZE_BITS:
        raise ValueError(f"quantize must be one of {QUANTIZE_BITS} bits or null, got {quantize!r}")


@dataclass
class GaussianNoise:
    """Additive white Gaussian noise; ``sigma`` on the 0-255 scale as the field reports it (15, 25, 50).

    Not clipped by default, as in the standard synthetic denoising benchmarks; ``clip`` and ``quantize``
    (bits) store the noisy image as a camera or a PNG file would (:func:`as_stored`).
    """

    sigma: float = 25.0
    clip: bool = False
    quantize: int | None = None

    def __post_init__(self) -> None:
        _check_quantize(self.quantize)

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        return as_stored(clean + noise * (self.sigma / 255.0), self.clip, self.quantize)


@dataclass
class GaussianBlur:
    """Isotropic Gaussian blur (kornia), with optional mild noise on top, then stored as ``clip``/``quantize`` say."""

    sigma: float = 2.0
    kernel_size: int = 15
    noise_sigma: float = 0.0
    clip: bool = False
    quantize: int | None = None

    def __post_init__(self) -> None:
        _check_quantize(self.quantize)

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        blurred = kornia.filters.gaussian_blur2d(
            clean, (self.kernel_size, self.kernel_size), (self.sigma, self.sigma), border_type="reflect"
        )
        if self.noise_sigma > 0:
            blurred = GaussianNoise(self.noise_sigma)(blurred, generator)
        return as_stored(blurred, self.clip, self.quantize)


@dataclass
class JpegCompression:
    """JPEG at a fixed quality through kornia's JPEG codec (RGB; grayscale is encoded as grey RGB).

    kornia's codec returns floats; ``quantize=8`` rounds them to the 8-bit values a decoded JPEG file holds.
    """

    quality: float = 20.0
    clip: bool = False
    quantize: int | None = None

    def __post_init__(self) -> None:
        _check_quantize(self.quantize)

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        grey = clean.shape[1] == 1
        rgb = clean.expand(-1, 3, -1, -1) if grey else clean
        h, w = rgb.shape[-2:]
        # kornia's codec works on 16 x 16 macro blocks: replicate-pad, code, crop back.
        ph, pw = (-h) % 16, (-w) % 16
        padded = torch.nn.functional.pad(rgb, (0, pw, 0, ph), mode="replicate")
        quality = torch.full((rgb.shape[0],), float(self.quality), device=rgb.device, dtype=rgb.dtype)
        coded = kornia.enhance.jpeg_codec_differentiable(padded.clamp(0, 1), quality)[..., :h, :w]
        coded = coded.mean(1, keepdim=True) if grey else coded
        return as_stored(coded, self.clip, self.quantize)


class Compose:
    """Degradations applied in order, sharing one generator."""

    def __init__(self, degradations: Sequence) -> None:
        self.degradations = list(degradations)

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for degrade in self.degradations:
            clean = degrade(clean, generator)
        return clean

    def __repr__(self) -> str:
        return f"Compose({self.degradations})"


@dataclass
class RandomGaussianNoise:
    """Gaussian noise with sigma drawn uniformly from [low, high] per image (blind denoising training)."""

    low: float = 0.0
    high: float = 50.0
    clip: bool = False
    quantize: int | None = None

    def __post_init__(self) -> None:
        _check_quantize(self.quantize)

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n = clean.shape[0]
        sigma = self.low + (self.high - self.low) * torch.rand(n, generator=generator, dtype=clean.dtype)
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        noisy = clean + noise * (sigma.to(clean.device) / 255.0).view(n, *([1] * (clean.ndim - 1)))
        return as_stored(noisy, self.clip, self.quantize)


def known_noise_sigma(degradation: object) -> float | None:
    """The Gaussian noise level (0-255 scale) of a pure, known-sigma denoising degradation, else None.

    Classical denoisers that take the true sigma (NL-means, BM3D) are scored only for these.
    """
    if isinstance(degradation, Compose) and len(degradation.degradations) == 1:
        degradation = degradation.degradations[0]
    if isinstance(degradation, GaussianNoise):
        return float(degradation.sigma)
    return None
