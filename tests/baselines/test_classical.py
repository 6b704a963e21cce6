"""NL-means and BM3D anchors: they denoise, they use the true sigma, and each input is computed only once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import skimage.data
import torch

from laformer.baselines import classical
from laformer.baselines.classical import AnchorCache, anchor_available, bm3d_denoise, nl_means
from laformer.data.degradations import GaussianNoise
from laformer.metrics import EvalProtocol, score


def _pair(sigma: float = 25.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 64 x 64 colour crop of a real photo and its noisy version, stored as 8-bit."""
    clean = torch.from_numpy(skimage.data.chelsea()[100:164, 180:244].copy()).permute(2, 0, 1).float() / 255
    noisy = GaussianNoise(sigma, clip=True, quantize=8)(clean[None], torch.Generator().manual_seed(seed))[0]
    return noisy, clean


def _psnr(image: torch.Tensor, clean: torch.Tensor) -> float:
    return float(score(image.clamp(0, 1)[None], clean[None], EvalProtocol())["psnr"][0])


def test_nl_means_denoises_and_follows_sigma() -> None:
    noisy, clean = _pair()
    restored = nl_means(noisy, 25.0)
    assert restored.shape == noisy.shape and restored.dtype == torch.float32
    assert _psnr(restored, clean) > _psnr(noisy, clean) + 5
    # h is tied to the sigma it is told: told far too little, it barely filters.
    assert _psnr(nl_means(noisy, 2.0), clean) < _psnr(noisy, clean) + 2
    grey = nl_means(noisy[:1], 25.0)
    assert grey.shape == (1, 64, 64)


def test_bm3d_beats_nl_means() -> None:
    pytest.importorskip("bm3d", reason="BM3D is an optional extra: pip install -e '.[classical]'")
    noisy, clean = _pair()
    restored = bm3d_denoise(noisy, 25.0)
    assert restored.shape == noisy.shape
    assert _psnr(restored, clean) > _psnr(nl_means(noisy, 25.0), clean)
    assert bm3d_denoise(noisy[:1], 25.0).shape == (1, 64, 64)


def test_a_missing_bm3d_is_reported_not_raised(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d now fails
    why = anchor_available("bm3d")
    assert why is not None and "pip install" in why
    assert anchor_available("nlmeans") is None
    with pytest.raises(classical.AnchorUnavailable, match="not installed"):
        bm3d_denoise(_pair()[0], 25.0)
    with pytest.raises(ValueError, match="unknown"):
        anchor_available("wiener")


def test_the_cache_computes_each_input_once_and_keeps_it_on_disk(monkeypatch, tmp_path: Path) -> None:
    calls: list[float] = []

    def counted(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        calls.append(sigma)
        return nl_means(noisy, sigma)

    label, _, packages = classical.ANCHORS["nlmeans"]
    monkeypatch.setitem(classical.ANCHORS, "nlmeans", (label, counted, packages))
    noisy, _ = _pair()
    cache = AnchorCache(tmp_path / "anchors")
    first = cache.get("nlmeans", noisy, 25.0)
    assert torch.equal(cache.get("nlmeans", noisy, 25.0), first)
    assert calls == [25.0]
    # A new cache on the same folder (the next run) reads the file instead of computing.
    again = AnchorCache(tmp_path / "anchors").get("nlmeans", noisy.clone(), 25.0)
    assert torch.equal(again, first) and calls == [25.0]
    assert len(list((tmp_path / "anchors").glob("nlmeans-*.npy"))) == 1
    # Another noise draw, another sigma: computed anew.
    cache.get("nlmeans", _pair(seed=1)[0], 25.0)
    cache.get("nlmeans", noisy, 15.0)
    assert calls == [25.0, 25.0, 15.0]
    # A damaged file is computed again and rewritten.
    for path in (tmp_path / "anchors").glob("*.npy"):
        path.write_bytes(b"not a numpy file")
    assert torch.equal(AnchorCache(tmp_path / "anchors").get("nlmeans", noisy, 25.0), first)
    assert len(calls) == 4
