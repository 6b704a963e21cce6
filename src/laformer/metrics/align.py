"""RealBlur's alignment before scoring: the restored image is registered onto the ground truth.

RealBlur's pairs are not pixel-aligned, so its evaluation (rimchang/RealBlur ``evaluation_RealBlur_ecc.py``,
reused by Restormer) first matches intensities, ``z * sum(x z) / sum(z z)``, then finds a homography with
OpenCV's ECC on the grey images (100 iterations, gaussFiltSize 5), warps the restored image onto the target
(bicubic, reflected border) and scores only where the warped image has support (a mask of warped ones).
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import torch
from torch import Tensor

ECC_ITERATIONS = 100


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.shape[2] == 3 else image[..., 0]


def ecc_align_one(restored: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align H x W x C float32 ``restored`` onto ``target``; returns (restored, target, mask), each masked.

    If ECC cannot converge (a flat image has no gradient), the identity is used, with a warning.
    """
    energy = max(float(np.sum(restored * restored, dtype=np.float64)), 1e-12)
    scale = float(np.sum(target * restored, dtype=np.float64)) / energy
    scaled = (restored * scale).astype(np.float32)
    warp = np.eye(3, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 0)
    try:
        _, warp = cv2.findTransformECC(
            _grey(target), _grey(scaled), warp, cv2.MOTION_HOMOGRAPHY, criteria, inputMask=None, gaussFiltSize=5
        )
    except cv2.error as error:
        warnings.warn(f"ECC alignment did not converge ({error.msg.strip()}); scoring unaligned", stacklevel=2)
        warp = np.eye(3, 3, dtype=np.float32)
    h, w = target.shape[:2]
    warped = cv2.warpPerspective(
        scaled, warp, (w, h), flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
    )
    mask = cv2.warpPerspective(
        np.ones_like(scaled),
        warp,
        (w, h),
        flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    warped, mask = warped.reshape(target.shape), mask.reshape(target.shape)
    return warped * mask, target * mask, mask


def ecc_align(restored: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Batched ``ecc_align_one`` on (B, C, H, W) tensors in [0, 1]; returns float64 (restored, target, mask)."""
    outputs = []
    for r, t in zip(restored, target):
        r_np = r.detach().float().cpu().numpy().transpose(1, 2, 0)
        t_np = t.detach().float().cpu().numpy().transpose(1, 2, 0)
        outputs.append([torch.from_numpy(a.transpose(2, 0, 1).copy()) for a in ecc_align_one(r_np, t_np)])
    stacked = [torch.stack(group).double().to(restored.device) for group in zip(*outputs)]
    return stacked[0], stacked[1], stacked[2]
