"""Classical restoration baselines scored beside the network: NL-means and BM3D for Gaussian denoising."""

from laformer.baselines.classical import (
    ANCHORS,
    AnchorCache,
    AnchorUnavailable,
    anchor_available,
    bm3d_denoise,
    nl_means,
)

__all__ = ["ANCHORS", "AnchorCache", "AnchorUnavailable", "anchor_available", "bm3d_denoise", "nl_means"]
