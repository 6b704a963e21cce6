"""Training augmentation applied on the batch, after it reaches the device."""

from __future__ import annotations

import torch
from torch import Tensor


def random_dihedral(*batches: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
    """One of the 8 flips/90-degree rotations per sample, the same for every tensor given (input, target).

    Rotations swap height and width, so they are drawn only for square patches.
    """
    n, (h, w) = batches[0].shape[0], batches[0].shape[-2:]
    choices = 8 if h == w else 2 * 2  # without rotation: identity, h-flip, v-flip, both
    ops = torch.randint(0, choices, (n,), generator=generator).tolist()

    def apply(x: Tensor, op: int) -> Tensor:
        if op & 1:
            x = x.flip(-1)
        if op & 2:
            x = x.flip(-2)
        if op & 4:
            x = x.transpose(-1, -2)
        return x

    return tuple(torch.stack([apply(b[i], op) for i, op in enumerate(ops)]) for b in batches)
