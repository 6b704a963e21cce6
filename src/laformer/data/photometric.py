"""Global photometric degradations: each changes a whole image by one factor drawn for that image.

Undoing them needs statistics of the whole image (how bright is it overall?), which a crop or a tile only
samples; that makes them a task where global context should matter, next to Gaussian denoising, where every
pixel's noise is independent of the rest. Applied to (B, C, H, W) batches in [0, 1], with the same
``(clean, generator)`` call as ``laformer.data.degradations``, so any dataset that synthesises its inputs takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from laformer.data.degradations import GaussianNoise, as_stored


def _per_image_uniform(low: float, high: float, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """``n`` draws from U[low, high], shaped (n, 1, 1, 1) to scale a batch image by image."""
    draw = torch.rand(n, generator=generator, dtype=like.dtype).to(like.device)
    return (low + (high - low) * draw).view(n, 1, 1, 1)


@dataclass
class LowLight:
    """A dim exposure of the scene, as a camera would take it.

    The clean image (read as scene brightness) goes through a gamma curve, ``clean ** gamma``, and is scaled by
    one exposure factor per image, drawn from ``exposure`` = [low, high]. Then come the sensor's noises: shot
    noise with variance ``shot`` x signal (Poisson-like, so the brighter a pixel the noisier in absolute terms)
    and Gaussian read noise ``read_sigma`` (0-255 scale, :class:`~laformer.data.degradations.GaussianNoise`).
    The result is stored as a file would hold it: clipped to [0, 1] and, with ``quantize``, rounded to that many
    bits (:func:`~laformer.data.degradations.as_stored`), which at low exposure leaves few grey levels.

    The target is the clean image: the network must undo the unknown exposure (an image-wide factor it has to
    estimate from the whole input), the gamma curve, the noise and the quantisation at once.
    """

    gamma: float = 2.0
    exposure: Sequence[float] = (0.1, 0.4)
    shot: float = 0.005
    read_sigma: float = 2.0
    clip: bool = True
    quantize: int | None = 8

    def __post_init__(self) -> None:
        low, high = (float(x) for x in self.exposure)
        if not 0 < low <= high <= 1:
            raise ValueError(f"LowLight.exposure must be [low, high] with 0 < low <= high <= 1, got {self.exposure}")
        if self.gamma <= 0 or self.shot < 0 or self.read_sigma < 0:
            raise ValueError(
                f"LowLight needs gamma > 0, shot >= 0 and read_sigma >= 0, got {self.gamma}, {self.shot}, "
                f"{self.read_sigma}"
            )
        self.exposure = (low, high)
        self._read_noise = GaussianNoise(self.read_sigma, clip=self.clip, quantize=self.quantize)

    def __call__(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        exposure = _per_image_uniform(*self.exposure, clean.shape[0], generator, clean)
        signal = clean.clamp(0, 1) ** self.gamma * exposure
        if self.shot > 0:
            noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype).to(clean.device)
            signal = signal + noise * (self.shot * signal).sqrt()
        if self.read_sigma > 0:
            return self._read_noise(signal, generator)  # read noise, then clipped and quantised as stored
        return as_stored(signal, self.clip, self.quantize)
