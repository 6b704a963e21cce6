"""Procedural training images: seeded dead-leaves pictures, natural-looking statistics with no data at all.

The dead-leaves model (Matheron; Lee, Mumford and Huang 2001) stacks random opaque shapes whose radii follow a
power law ``p(r) ~ r^-alpha``. With ``alpha`` near 3 the picture is close to scale invariant, with the edge,
occlusion and flat-region statistics of natural photos, which is what a denoiser has to learn (Achddou et al.
2021 train restoration networks on such images). Here the shapes are discs and rotated rectangles (straight
edges), each with a flat colour plus a gentle linear shading, and the whole picture gets a mild random blur
(out-of-focus depth, anti-aliased edges). It is stored as 8-bit, as a photo would be.

Every picture is a function of one integer seed. :class:`ProceduralImageDataset` draws that seed from torch's
random state, which the training sampler seeds per sample from ``(seed, epoch, position)``
(``laformer.data.sampling``), so runs with procedural images stay reproducible and resumable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import Tensor
from torch.utils.data import Dataset

from laformer.data.io import array_to_tensor

_SEED_BOUND = 2**62


@dataclass(frozen=True)
class DeadLeaves:
    """Seeded dead-leaves images.

    Attributes:
        alpha: exponent of the radius density ``r^-alpha`` (3: scale invariant).
        radius_min: smallest shape radius, in pixels.
        radius_max: largest radius as a fraction of the image side.
        coverage: mean number of shapes over a pixel (the first-drawn, hidden ones included); the picture starts
            from a flat background, which shows through in about ``exp(-coverage)`` of the pixels.
        rectangles: fraction of the shapes that are rotated rectangles rather than discs.
        shading: largest change of a shape's colour across its radius (a linear ramp in a random direction).
        grey: fraction of the pictures drawn in grey levels only.
        max_blur: the picture's Gaussian blur sigma (pixels) is drawn uniformly from [0, max_blur].
    """

    alpha: float = 3.0
    radius_min: float = 1.0
    radius_max: float = 1.0
    coverage: float = 4.0
    rectangles: float = 0.3
    shading: float = 0.15
    grey: float = 0.2
    max_blur: float = 1.0

    def _radii(self, rng: np.random.Generator, count: int, r_max: float) -> np.ndarray:
        """Radii drawn from ``r^-alpha`` on [radius_min, r_max] by inverting its CDF."""
        r_min, u = self.radius_min, rng.random(count)
        if math.isclose(self.alpha, 1.0):
            return r_min * (r_max / r_min) ** u
        e = 1.0 - self.alpha
        return (r_min**e + u * (r_max**e - r_min**e)) ** (1.0 / e)

    def _mean_area(self, r_max: float) -> float:
        """E[pi r^2] under the radius density, for the number of shapes that reaches ``coverage``."""
        radii = self._radii(np.random.default_rng(0), 4096, r_max)  # a fixed sample: a deterministic count
        return float(np.pi * np.mean(radii**2))

    def _colours(self, rng: np.random.Generator, count: int, grey: bool) -> np.ndarray:
        """``count`` x 3 colours: uniform levels, each desaturated toward its grey by a random amount."""
        rgb = rng.random((count, 3))
        level = rgb.mean(1, keepdims=True)
        if grey:
            return np.repeat(level, 3, axis=1)
        saturation = rng.random((count, 1)) ** 1.5  # most natural colours are far from saturated
        return level + saturation * (rgb - level)

    # Shapes whose clipped bounding box fits this many pixels a side are drawn all at once (most of them: radii follow
    # r^-3); larger ones one by one. Both mark the same pixels as the per-shape loop this replaced (golden test).
    _window = 12

    @classmethod
    def _owners(
        cls, size: int, centres: np.ndarray, radii: np.ndarray, is_rect: np.ndarray, angles: np.ndarray,
        aspects: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """For each pixel, the index of the last shape covering it (-1: none): painter's order, later on top.

        Painting shape after shape in Python cost 33 ms a 64 x 64 picture (~600 shapes, most a pixel or two), a
        fifth of the demo's training time; the pixel each shape wins is the highest index that covers it.
        """
        top = np.maximum(0, (centres[:, 0] - radii).astype(np.int64))  # int() of the loop: toward zero
        left = np.maximum(0, (centres[:, 1] - radii).astype(np.int64))
        bottom = np.minimum(size, np.ceil(centres[:, 0] + radii).astype(np.int64) + 1)
        right = np.minimum(size, np.ceil(centres[:, 1] + radii).astype(np.int64) + 1)
        owner = np.full((size, size), -1, dtype=np.int64)
        small = (bottom - top <= cls._window) & (right - left <= cls._window)
        index = np.flatnonzero(small)
        steps = np.arange(cls._window)
        ys = top[index, None, None] + steps[None, :, None]  # (n, window, 1)
        xs = left[index, None, None] + steps[None, None, :]  # (n, 1, window)
        inside = (ys < bottom[index, None, None]) & (xs < right[index, None, None])
        mask = inside & cls._covers(ys, xs, centres[index], radii[index], is_rect[index], angles[index], aspects[index])
        ys, xs = np.broadcast_arrays(ys, xs)
        np.maximum.at(owner, (ys[mask], xs[mask]), np.broadcast_to(index[:, None, None], mask.shape)[mask])
        for i in np.flatnonzero(~small):
            yy = np.arange(top[i], bottom[i])[None, :, None]
            xx = np.arange(left[i], right[i])[None, None, :]
            hit = cls._covers(yy, xx, centres[i : i + 1], radii[i : i + 1], is_rect[i : i + 1], angles[i : i + 1],
                              aspects[i : i + 1])[0]  # fmt: skip
            window = owner[top[i] : bottom[i], left[i] : right[i]]
            window[hit] = np.maximum(window[hit], i)
        return owner

    @staticmethod
    def _covers(
        ys: np.ndarray, xs: np.ndarray, centres: np.ndarray, radii: np.ndarray, is_rect: np.ndarray,
        angles: np.ndarray, aspects: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Which pixels (rows ``ys``, columns ``xs``, broadcast per shape along the first axis) each shape covers."""
        dy = (ys + 0.5) - centres[:, 0, None, None]
        dx = (xs + 0.5) - centres[:, 1, None, None]
        r = radii[:, None, None]
        # math.cos/sin per shape, as the loop this replaced: NumPy's vectorised ones may round differently on other
        # CPUs (SIMD builds), which could move a boundary pixel of the pictures every recorded study trained on.
        # Only the rectangles are turned.
        cos, sin = np.ones(len(angles)), np.zeros(len(angles))
        for k in np.flatnonzero(is_rect):
            cos[k], sin[k] = math.cos(angles[k]), math.sin(angles[k])
        cos, sin = cos[:, None, None], sin[:, None, None]
        u, v = dx * cos + dy * sin, -dx * sin + dy * cos
        rect = (np.abs(u) <= r) & (np.abs(v) <= r * aspects[:, None, None])
        return np.where(is_rect[:, None, None], rect, dy * dy + dx * dx <= r * r)

    def render(self, size: int, seed: int) -> np.ndarray:
        """One ``size`` x ``size`` x 3 uint8 picture, a function of ``seed`` alone."""
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        rng = np.random.default_rng(seed)
        r_max = max(self.radius_min, self.radius_max * size)
        count = max(1, math.ceil(self.coverage * size * size / self._mean_area(r_max)))
        grey = bool(rng.random() < self.grey)
        radii = self._radii(rng, count, r_max)
        centres = rng.random((count, 2)) * size
        colours = self._colours(rng, count + 1, grey)
        is_rect = rng.random(count) < self.rectangles
        angles = rng.random(count) * np.pi
        aspects = 0.3 + 0.7 * rng.random(count)
        ramps = (rng.random((count, 2)) * 2 - 1) * self.shading  # colour change per radius, along y and x

        owner = self._owners(size, centres, radii, is_rect, angles, aspects)
        image = np.empty((size, size, 3))
        image[:] = colours[-1]  # the background, where no shape landed
        ys, xs = np.nonzero(owner >= 0)
        shape = owner[ys, xs]
        dy, dx = (ys + 0.5) - centres[shape, 0], (xs + 0.5) - centres[shape, 1]
        shade = (ramps[shape, 0] * dy + ramps[shape, 1] * dx) / radii[shape]
        image[ys, xs] = colours[shape] + shade[:, None]
        blur = rng.random() * self.max_blur
        if blur > 0.05:
            image = gaussian_filter(image, sigma=(blur, blur, 0), mode="reflect")
        return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


PROCEDURAL_SOURCES: dict[str, Callable[[], DeadLeaves]] = {"dead_leaves": DeadLeaves}


class ProceduralImageDataset(Dataset):
    """``length`` training samples, each a fresh ``patch_size`` x ``patch_size`` procedural picture and its
    degraded input.

    A sample's picture seed is drawn from torch's random state, which the training sampler seeds per sample
    (``SeededItems``): the same run position always gives the same picture. Items match
    :class:`~laformer.data.datasets.DegradedImageDataset`'s ``{"input", "target", "name", "set"}``.
    """

    def __init__(
        self,
        source: DeadLeaves,
        degradation: Callable[[Tensor, torch.Generator | None], Tensor],
        patch_size: int,
        length: int,
        set_name: str = "procedural",
        channels: int | None = 3,
        name: str = "dead_leaves",
    ) -> None:
        if length < 1:
            raise ValueError(f"a procedural dataset needs at least one sample, got length={length}")
        self.source, self.degradation, self.patch_size = source, degradation, patch_size
        self.length, self.set_name, self.channels, self.name = length, set_name, channels, name

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        seed = int(torch.randint(0, _SEED_BOUND, (1,)))
        target = array_to_tensor(self.source.render(self.patch_size, seed), self.channels)
        inp = self.degradation(target.unsqueeze(0), None).squeeze(0)
        return {"input": inp, "target": target, "name": self.name, "set": self.set_name}
