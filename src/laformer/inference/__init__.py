"""Inference helpers shared by evaluation and restoration of user photos.

``laformer.inference.checkpoint`` (rebuilding a network from a checkpoint) is imported on its own: it needs
Lightning, which the rest of this package does not.
"""

from laformer.inference.ensemble import self_ensemble
from laformer.inference.restore import pick_device, restore_image
from laformer.inference.tiling import tiled_forward

__all__ = ["pick_device", "restore_image", "self_ensemble", "tiled_forward"]
