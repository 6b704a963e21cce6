"""RealBlur's alignment before scoring: a shifted restoration scores higher once aligned, and the masked PSNR/SSIM
match an independent computation with scikit-image's full SSIM map (RealBlur's evaluation script)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import structural_similarity

from laformer.metrics import EvalProtocol, score
from laformer.metrics.align import ecc_align_one

REALBLUR = EvalProtocol(color="rgb", crop_border=0, quantize=True, align="ecc")


def shifted_pair(dy: int, dx: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(restoration, target) as H x W x 3 uint8: the same photo window, the restoration moved by (dy, dx)."""
    photo = skimage.data.astronaut()
    top, left = 150, 180
    target = photo[top : top + size, left : left + size]
    moved = photo[top + dy : top + dy + size, left + dx : left + dx + size]
    return moved.copy(), target.copy()


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].double() / 255


def realblur_reference(restored: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """RealBlur's evaluation of uint8 images: align with cv2 (intensity match, ECC homography, warp, mask), then
    PSNR over the mask and scikit-image's Gaussian SSIM map, masked and trimmed by the window radius."""
    z = restored.astype(np.float32) / 255
    x = target.astype(np.float32) / 255
    zs = (np.sum(x * z) / np.sum(z * z)) * z
    warp = np.eye(3, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 0)
    _, warp = cv2.findTransformECC(
        cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.cvtColor(zs, cv2.COLOR_RGB2GRAY), warp, cv2.MOTION_HOMOGRAPHY,
        criteria, inputMask=None, gaussFiltSize=5,
    )  # fmt: skip
    h, w = x.shape[:2]
    zr = cv2.warpPerspective(
        zs, warp, (w, h), flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
    )
    cr = cv2.warpPerspective(
        np.ones_like(zs), warp, (w, h), flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip
    zr, xr = zr * cr, x * cr
    err = np.sum((xr - zr) ** 2, dtype=np.float64) / np.sum(cr)
    psnr = 10 * np.log10(1 / err)
    _, ssim_map = structural_similarity(
        xr,
        zr,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        full=True,
    )
    pad = 5
    masked = (ssim_map * cr)[pad:-pad, pad:-pad]
    ssim = np.mean(masked.sum(axis=(0, 1)) / cr[pad:-pad, pad:-pad].sum(axis=(0, 1)))
    return float(psnr), float(ssim)


@pytest.mark.parametrize("shift", [(2, 3), (-1, 2), (3, -2)])
def test_a_shifted_restoration_scores_higher_after_alignment(shift: tuple[int, int]) -> None:
    restored, target = shifted_pair(*shift)
    pred, tgt = as_tensor(restored), as_tensor(target)
    plain = score(pred, tgt, EvalProtocol(color="rgb", quantize=True))
    aligned = score(pred, tgt, REALBLUR)
    assert aligned["psnr"].item() > plain["psnr"].item() + 10
    assert aligned["ssim"].item() > plain["ssim"].item() + 0.2
    assert aligned["ssim"].item() > 0.97


@pytest.mark.parametrize("shift", [(0, 0), (2, 3)])
def test_masked_scores_match_realblurs_evaluation(shift: tuple[int, int]) -> None:
    restored, target = shifted_pair(*shift)
    noise = np.random.default_rng(0).normal(0, 6, restored.shape)
    restored = np.clip(restored + noise, 0, 255).round().astype(np.uint8)
    ours = score(as_tensor(restored), as_tensor(target), REALBLUR)
    ref_psnr, ref_ssim = realblur_reference(restored, target)
    assert ours["psnr"].item() == pytest.approx(ref_psnr, abs=1e-4)
    assert ours["ssim"].item() == pytest.approx(ref_ssim, abs=1e-5)


def test_a_flat_image_falls_back_to_no_alignment_with_a_warning() -> None:
    flat = np.full((32, 32, 3), 0.5, np.float32)
    with pytest.warns(UserWarning, match="ECC"):
        restored, target, mask = ecc_align_one(flat, flat)
    assert mask.min() == 1.0 and np.allclose(restored, target)


def test_alignment_mask_excludes_the_uncovered_border() -> None:
    restored, target = shifted_pair(0, 4)
    r, t, mask = ecc_align_one(restored.astype(np.float32) / 255, target.astype(np.float32) / 255)
    assert mask.min() == 0.0 and mask.mean() > 0.9
    assert np.all(r[mask == 0] == 0) and np.all(t[mask == 0] == 0)
