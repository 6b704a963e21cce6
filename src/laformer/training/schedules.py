"""Learning-rate schedules."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 1e-3,
    hold_steps: int = 0,
) -> LambdaLR:
    """Linear warm-up from ~0 to the base rate, an optional hold at it, then cosine decay to ``min_lr_ratio``
    of it at ``total_steps``.

    ``hold_steps`` (counted after the warm-up) reproduces Restormer's recipe: 3e-4 held for the first 92k of
    300k iterations, then cosine to 1e-6.
    """
    total_steps = max(int(total_steps), 1)
    decay_start = warmup_steps + hold_steps

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if step < decay_start:
            return 1.0
        progress = min((step - decay_start) / max(total_steps - decay_start, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
