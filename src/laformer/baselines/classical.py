"""NL-means and BM3D given the true noise level: the anchors a denoising score stands beside.

Both take the noisy image as the network gets it (C x H x W float in [0, 1]) and the sigma it was degraded with,
on the 0-255 scale. Neither estimates the noise: they are told the truth, as the network was trained for it.

- ``nlmeans``: ``skimage.restoration.denoise_nl_means`` with ``h = 0.8 sigma`` and ``sigma = sigma`` (patch
  distances minus the expected noise variance), 5 x 5 patches searched within 13 x 13 (``patch_distance=6``),
  ``fast_mode``; colour patches are compared over all channels. These are scikit-image's own example settings.
- ``bm3d``: the ``bm3d`` package (Mäkinen, Azzari and Foi): CBM3D (``bm3d_rgb``, opponent colour transform) for
  3 channels, ``bm3d`` for 1, the reference profile ``np``, both stages. An optional extra:
  ``pip install -e '.[classical]'``; without it the BM3D anchor is skipped with a note.

:class:`AnchorCache` keeps each result by a hash of its exact input: the anchors of a fixed, seeded evaluation set
are computed once, not at every validation, and, with a cache folder, not again in the next run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from laformer.io_atomic import atomic_write

NLMEANS_H = 0.8  # h = NLMEANS_H * sigma
NLMEANS_PATCH_SIZE = 5
NLMEANS_PATCH_DISTANCE = 6
BM3D_PROFILE = "np"
BM3D_INSTALL_HINT = "pip install -e '.[classical]' (or pip install bm3d)"


class AnchorUnavailable(RuntimeError):
    """A classical method that cannot run here (its optional package is missing)."""


def _to_hwc(image: Tensor) -> np.ndarray:
    array = image.detach().float().cpu().numpy()
    if array.ndim != 3:
        raise ValueError(f"expected one C x H x W image, got shape {tuple(array.shape)}")
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def _to_chw(array: np.ndarray, channels: int) -> Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1).contiguous()


def nl_means(noisy: Tensor, sigma: float) -> Tensor:
    """Non-local means of a C x H x W image with known Gaussian ``sigma`` (0-255 scale); float, not clipped."""
    from skimage.restoration import denoise_nl_means

    s = sigma / 255.0
    array = _to_hwc(noisy)
    out = denoise_nl_means(
        array,
        h=NLMEANS_H * s,
        sigma=s,
        patch_size=NLMEANS_PATCH_SIZE,
        patch_distance=NLMEANS_PATCH_DISTANCE,
        fast_mode=True,
        channel_axis=None if array.ndim == 2 else -1,
    )
    return _to_chw(out, noisy.shape[0])


def _bm3d_module():
    try:
        import bm3d
    except ImportError as error:
        raise AnchorUnavailable(f"the optional package bm3d is not installed: {BM3D_INSTALL_HINT}") from error
    return bm3d


def bm3d_denoise(noisy: Tensor, sigma: float) -> Tensor:
    """BM3D (CBM3D for 3 channels) of a C x H x W image with known Gaussian ``sigma`` (0-255 scale)."""
    bm3d = _bm3d_module()
    s = sigma / 255.0
    array = _to_hwc(noisy).astype(np.float64)
    if array.ndim == 3:
        out = bm3d.bm3d_rgb(array, s, profile=BM3D_PROFILE)
    else:
        out = bm3d.bm3d(array, s, profile=BM3D_PROFILE)
    return _to_chw(np.asarray(out), noisy.shape[0])


# name -> (label, function, the packages whose versions key the cache)
ANCHORS: dict[str, tuple[str, Callable[[Tensor, float], Tensor], tuple[str, ...]]] = {
    "nlmeans": ("NL-means", nl_means, ("scikit-image",)),
    "bm3d": ("BM3D", bm3d_denoise, ("bm3d",)),
}


def anchor_available(method: str) -> str | None:
    """None when ``method`` can run here, else why not (for the note that it was skipped)."""
    if method not in ANCHORS:
        raise ValueError(f"unknown classical anchor {method!r}; choose from {sorted(ANCHORS)}")
    if method == "bm3d":
        try:
            _bm3d_module()
        except AnchorUnavailable as error:
            return str(error)
    return None


def _versions(packages: tuple[str, ...]) -> str:
    out = []
    for package in packages:
        try:
            out.append(f"{package}={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{package}=?")
    return ",".join(out)


class AnchorCache:
    """Classical restorations by (method, sigma, exact input), in memory and optionally in ``cache_dir``.

    The key hashes the input's bytes and shape, the method's settings and its package version, so a changed
    image, noise, seed or library never reads a stale result. Files are written to a temporary name and renamed.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._memory: dict[str, Tensor] = {}
        self.computed_s: dict[str, float] = {}  # seconds spent computing, per method (cache hits cost none)

    def key(self, method: str, noisy: Tensor, sigma: float) -> str:
        if method not in ANCHORS:
            raise ValueError(f"unknown classical anchor {method!r}; choose from {sorted(ANCHORS)}")
        settings = f"{method}|sigma={float(sigma)!r}|{_versions(ANCHORS[method][2])}|"
        settings += f"h={NLMEANS_H},p={NLMEANS_PATCH_SIZE},d={NLMEANS_PATCH_DISTANCE},profile={BM3D_PROFILE}|"
        array = noisy.detach().float().cpu().contiguous().numpy()
        digest = hashlib.sha256(settings.encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
        return f"{method}-{digest.hexdigest()[:32]}"

    def get(self, method: str, noisy: Tensor, sigma: float) -> Tensor:
        """``method``'s restoration of ``noisy`` (C x H x W), computed at most once per input."""
        key = self.key(method, noisy, sigma)
        if key in self._memory:
            return self._memory[key]
        path = self.cache_dir / f"{key}.npy" if self.cache_dir else None
        restored = None
        if path is not None and path.is_file():
            try:
                restored = torch.from_numpy(np.load(path))
            except (OSError, ValueError):
                restored = None  # a damaged file: compute again and rewrite it
        if restored is None or restored.shape != noisy.shape:
            start = time.perf_counter()
            restored = ANCHORS[method][1](noisy, sigma)
            self.computed_s[method] = self.computed_s.get(method, 0.0) + time.perf_counter() - start
            if path is not None:
                # unique: several processes may fill one cache; not durable: a damaged file is recomputed
                array = restored.numpy()
                atomic_write(path, lambda handle: np.save(handle, array), unique=True, durable=False)
        self._memory[key] = restored
        return restored
