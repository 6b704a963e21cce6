"""Geometric self-ensemble (x8): average the restorations of the 8 flips/rotations of the input."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _transform(x: Tensor, k: int) -> Tensor:
    x = x.flip(-1) if k & 4 else x
    return torch.rot90(x, k & 3, dims=(-2, -1))


def _inverse(x: Tensor, k: int) -> Tensor:
    x = torch.rot90(x, -(k & 3), dims=(-2, -1))
    return x.flip(-1) if k & 4 else x


def self_ensemble(restore: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Mean of ``inverse_k(restore(transform_k(x)))`` over the dihedral group of the square."""
    return torch.stack([_inverse(restore(_transform(x, k)), k) for k in range(8)]).mean(0)
