"""Synthetic degradations for ground-truth-only data, applied to (B, C, H, W) batches in [0, 1].

Each takes an optional ``torch.Generator``: evaluation sets seed one per image, so a benchmark is
degraded identically on every run; training passes none and draws fresh noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import kornia
import torch
from torch import Tensor


@dataclass
class GaussianNoise:
    """Additive white Gaussian noise; ``sigma`` on the 0-255 scale as the field reports it (15, 25, 50).

    Not clipped by default, as in the standard synthetic denoising benchmarks.
    """

    sigma: float = 25.0
    clip: bool = False

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        noisy = clean + noise * (self.sigma / 255.0)
        return noisy.clamp(0, 1) if self.clip else noisy


@dataclass
class GaussianBlur:
    """Isotropic Gaussian blur (kornia), with optional mild noise on top."""

    sigma: float = 2.0
    kernel_size: int = 15
    noise_sigma: float = 0.0

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        blurred = kornia.filters.gaussian_blur2d(
            clean, (self.kernel_size, self.kernel_size), (self.sigma, self.sigma), border_type="reflect"
        )
        if self.noise_sigma > 0:
            blurred = GaussianNoise(self.noise_sigma)(blurred, generator)
        return blurred


@dataclass
class JpegCompression:
    """JPEG at a fixed quality through kornia's JPEG codec (RGB; grayscale is encoded as grey RGB)."""

    quality: float = 20.0

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        grey = clean.shape[1] == 1
        rgb = clean.expand(-1, 3, -1, -1) if grey else clean
        h, w = rgb.shape[-2:]
        # kornia's codec works on 16 x 16 macro blocks: replicate-pad, code, crop back.
        ph, pw = (-h) % 16, (-w) % 16
        padded = torch.nn.functional.pad(rgb, (0, pw, 0, ph), mode="replicate")
        quality = torch.full((rgb.shape[0],), float(self.quality), device=rgb.device, dtype=rgb.dtype)
        coded = kornia.enhance.jpeg_codec_differentiable(padded.clamp(0, 1), quality)[..., :h, :w]
        return coded.mean(1, keepdim=True) if grey else coded


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

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n = clean.shape[0]
        sigma = self.low + (self.high - self.low) * torch.rand(n, generator=generator, dtype=clean.dtype)
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        return clean + noise * (sigma.to(clean.device) / 255.0).view(n, *([1] * (clean.ndim - 1)))
