"""A CPU Trainer with nothing but the loop (no logger, checkpoints, progress bar or summary), and small random
image pairs to feed it: what the training tests share when they look at one callback or option."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


def quiet_cpu_trainer(**kwargs: Any) -> L.Trainer:
    """``L.Trainer`` on the CPU without its side outputs; ``kwargs`` (steps, callbacks, precision...) go through."""
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def random_pairs(count: int, size: int = 32) -> list[dict[str, torch.Tensor]]:
    """``count`` seeded ``{"input", "target"}`` RGB pairs of ``size`` x ``size``, as a restoration batch holds them."""
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "input": torch.rand(3, size, size, generator=generator),
            "target": torch.rand(3, size, size, generator=generator),
        }
        for _ in range(count)
    ]
