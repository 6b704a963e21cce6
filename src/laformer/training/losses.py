"""Restoration losses: a pixel term (Charbonnier or L1) plus an optional frequency-domain term."""

from __future__ import annotations

import torch
from torch import Tensor, nn

PIXEL_LOSSES = ("charbonnier", "l1")


class RestorationLoss(nn.Module):
    """``pixel(pred, target) + fft_weight * |FFT(pred) - FFT(target)|_1``.

    Charbonnier, ``sqrt((x - y)^2 + eps^2)``, is a smooth L1 that the restoration Transformers train with;
    the FFT term (as in the frequency losses of deblurring work) penalises lost high frequencies.
    """

    def __init__(self, pixel: str = "charbonnier", eps: float = 1e-3, fft_weight: float = 0.0) -> None:
        super().__init__()
        if pixel not in PIXEL_LOSSES:
            raise ValueError(f"unknown pixel loss {pixel!r}; choose one of {PIXEL_LOSSES}")
        self.pixel, self.eps, self.fft_weight = pixel, eps, fft_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = pred.float(), target.float()
        diff = pred - target
        if self.pixel == "charbonnier":
            loss = torch.sqrt(diff * diff + self.eps**2).mean()
        else:
            loss = diff.abs().mean()
        if self.fft_weight > 0:
            spectrum = torch.fft.rfft2(pred) - torch.fft.rfft2(target)
            loss = loss + self.fft_weight * torch.view_as_real(spectrum).abs().mean()
        return loss
