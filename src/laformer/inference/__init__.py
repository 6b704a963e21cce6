"""Inference helpers shared by evaluation and restoration of user photos.

``laformer.inference.checkpoint`` is the one door for loading a network from a file (checkpoint, model folder,
published weights); it is imported on its own, where a file is read. Nothing here imports training code.
"""

from laformer.inference.ensemble import self_ensemble
from laformer.inference.restore import pick_device, restore_image
from laformer.inference.tiling import tiled_forward

__all__ = ["pick_device", "restore_image", "self_ensemble", "tiled_forward"]
