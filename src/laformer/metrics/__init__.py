"""Evaluation protocols and the metrics that follow them."""

from laformer.metrics.image_metrics import psnr, rgb_to_y, score, ssim
from laformer.metrics.protocol import EvalProtocol, apply_size_policy

__all__ = ["EvalProtocol", "apply_size_policy", "psnr", "rgb_to_y", "score", "ssim"]
