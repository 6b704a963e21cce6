"""Lightning training: the restoration module, its loss, schedule and callbacks."""

from laformer.training.losses import RestorationLoss
from laformer.training.module import NonFiniteLossError, RestorationModule
from laformer.training.schedules import warmup_cosine

__all__ = ["NonFiniteLossError", "RestorationLoss", "RestorationModule", "warmup_cosine"]
