"""PSNR and SSIM per image, under an ``EvalProtocol``."""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio

from laformer.metrics.protocol import EvalProtocol

# MATLAB rgb2ycbcr luma for RGB in [0, 1], output in [0, 1] (16/255 .. 235/255): ITU-R BT.601.
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_Y_OFFSET = 16.0 / 255.0


def rgb_to_y(image: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) BT.601 luma in [0, 1], as MATLAB's ``rgb2ycbcr``."""
    weights = image.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True) + _Y_OFFSET


def prepare_for_scoring(image: Tensor, protocol: EvalProtocol) -> Tensor:
    """Quantise, convert colour space and crop the border, as the protocol says; float64 for exactness."""
    image = image.double().clamp(0, 1)
    if protocol.quantize:
        image = image.mul(255).round().div(255)
    if protocol.color == "y" and image.shape[1] == 3:
        image = rgb_to_y(image)
    b = protocol.crop_border
    if b:
        image = image[..., b:-b, b:-b]
    return image


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB for prepared (B, C, H, W) images in [0, 1]."""
    return peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM with a Gaussian window, averaged over channels and valid window positions.

    Only windows lying wholly inside the image count, as in Wang et al.'s reference, BasicSR and
    skimage (``gaussian_weights=True, use_sample_covariance=False``); torchmetrics pads the border
    instead, which shifts results by ~1e-4.
    """
    c1, c2 = 0.01**2, 0.03**2
    channels = pred.shape[1]
    # built in the images' dtype: a float32 kernel shifts float64 SSIM by up to ~5e-6
    kernel = kornia.filters.get_gaussian_kernel2d(
        (window, window), (sigma, sigma), device=pred.device, dtype=pred.dtype
    )
    kernel = kernel.expand(channels, 1, window, window)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, kernel, groups=channels)

    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def score(pred: Tensor, target: Tensor, protocol: EvalProtocol) -> dict[str, Tensor]:
    """``{"psnr": (B,), "ssim": (B,)}`` of restored ``pred`` against ``target`` under ``protocol``."""
    if pred.shape != target.shape:
        raise ValueError(f"cannot score: restored image is {tuple(pred.shape)}, target {tuple(target.shape)}")
    with torch.no_grad():
        p, t = prepare_for_scoring(pred, protocol), prepare_for_scoring(target, protocol)
        return {"psnr": psnr(p, t), "ssim": ssim(p, t)}
