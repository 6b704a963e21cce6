"""PSNR and SSIM per image, under an ``EvalProtocol``."""

from __future__ import annotations

from dataclasses import replace

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio

from laformer.metrics.align import ecc_align
from laformer.metrics.protocol import EvalProtocol

# MATLAB rgb2ycbcr luma for RGB in [0, 1], output in [0, 1] (16/255 .. 235/255): ITU-R BT.601.
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_Y_OFFSET = 16.0 / 255.0


def rgb_to_y(image: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) BT.601 luma in [0, 1], as MATLAB's ``rgb2ycbcr``."""
    weights = image.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True) + _Y_OFFSET


def quantize_for_scoring(image: Tensor, protocol: EvalProtocol) -> Tensor:
    """Clamp to [0, 1] in float64 and, when the protocol says so, round to 8 bit (as if saved as PNG)."""
    image = image.double().clamp(0, 1)
    return image.mul(255).round().div(255) if protocol.quantize else image


def to_scored_space(image: Tensor, protocol: EvalProtocol) -> Tensor:
    """Colour space (RGB or Y) and border crop of the protocol."""
    if protocol.color == "y" and image.shape[1] == 3:
        image = rgb_to_y(image)
    b = protocol.crop_border
    if b:
        image = image[..., b:-b, b:-b]
    return image


def prepare_for_scoring(image: Tensor, protocol: EvalProtocol) -> Tensor:
    """Quantise, convert colour space and crop the border, as the protocol says; float64 for exactness."""
    return to_scored_space(quantize_for_scoring(image, protocol), protocol)


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB for prepared (B, C, H, W) images in [0, 1]."""
    return peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim_map(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """SSIM at every position where the Gaussian window lies wholly inside the image, (B, C, H-10, W-10).

    The Gaussian window is separable, so the five local means are taken as one row pass and one column pass over
    the five maps stacked along the channels: 22 multiply-adds a pixel instead of 121, and two convolution calls
    instead of five. The same values as the 2-D window to float64 rounding (~1e-14), 14x faster on the demo's
    256 x 256 crops on a 2-core CPU, where the 2-D float64 window took a tenth of the demo's wall time.
    """
    c1, c2 = 0.01**2, 0.03**2
    channels = pred.shape[1]
    # built in the images' dtype: a float32 kernel shifts float64 SSIM by up to ~5e-6
    g = kornia.filters.get_gaussian_kernel1d(window, sigma, device=pred.device, dtype=pred.dtype).view(-1)
    maps = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    n = maps.shape[1]
    means = F.conv2d(maps, g.view(1, 1, 1, window).expand(n, 1, 1, window), groups=n)
    means = F.conv2d(means, g.view(1, 1, window, 1).expand(n, 1, window, 1), groups=n)
    mu_p, mu_t, mean_pp, mean_tt, mean_pt = means.split(channels, dim=1)
    var_p = mean_pp - mu_p**2
    var_t = mean_tt - mu_t**2
    cov = mean_pt - mu_p * mu_t
    return ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM with a Gaussian window, averaged over channels and valid window positions.

    Only windows lying wholly inside the image count, as in Wang et al.'s reference, BasicSR and
    skimage (``gaussian_weights=True, use_sample_covariance=False``); torchmetrics pads the border
    instead, which shifts results by ~1e-4.
    """
    return ssim_map(pred, target, window, sigma).mean(dim=(1, 2, 3))


def masked_psnr(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """PSNR over the pixels where ``mask`` is 1 (RealBlur: the support of the aligned image)."""
    err = (pred - target).pow(2).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3))
    return 10 * torch.log10(1.0 / err)


def masked_ssim(pred: Tensor, target: Tensor, mask: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean of the valid-window SSIM map weighted by ``mask``, per channel, then averaged over channels.

    The window's half-width is trimmed from the mask, as RealBlur trims its SSIM map.
    """
    values = ssim_map(pred, target, window, sigma)
    pad = window // 2
    inner = mask[..., pad:-pad, pad:-pad]
    per_channel = (values * inner).sum(dim=(2, 3)) / inner.sum(dim=(2, 3))
    return per_channel.mean(dim=1)


def score(pred: Tensor, target: Tensor, protocol: EvalProtocol) -> dict[str, Tensor]:
    """``{"psnr": (B,), "ssim": (B,)}`` of restored ``pred`` against ``target`` under ``protocol``.

    With ``align="ecc"`` the (quantised) restoration is first registered onto the target and both metrics
    count only the pixels the aligned image covers, as RealBlur's evaluation does.
    """
    if pred.shape != target.shape:
        raise ValueError(f"cannot score: restored image is {tuple(pred.shape)}, target {tuple(target.shape)}")
    with torch.no_grad():
        p, t = quantize_for_scoring(pred, protocol), quantize_for_scoring(target, protocol)
        if protocol.align == "ecc":
            p, t, mask = ecc_align(p, t)
            p, t = to_scored_space(p, protocol), to_scored_space(t, protocol)
            mask = to_scored_space(mask, replace(protocol, color="rgb"))[:, : p.shape[1]]
            return {"psnr": masked_psnr(p, t, mask), "ssim": masked_ssim(p, t, mask)}
        p, t = to_scored_space(p, protocol), to_scored_space(t, protocol)
        return {"psnr": psnr(p, t), "ssim": ssim(p, t)}
