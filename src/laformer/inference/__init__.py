"""Inference helpers shared by evaluation and restoration of user photos."""

from laformer.inference.ensemble import self_ensemble

__all__ = ["self_ensemble"]
