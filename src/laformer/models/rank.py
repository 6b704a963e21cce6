"""Attention-rank analysis: the effective N x N attention map of each head, its numerical rank and its energy rank.

Vanilla linear attention computes ``diag(1/z) phi(Q) phi(K)^T V`` without forming the map; its rank is at
most the head dimension d. RELA adds a depthwise convolution on V, i.e. one banded N x N matrix per
channel, so channel c of a head sees the map ``A + M_c``, whose rank can reach N. Everything here runs in
float64 on batch element 0, for small inputs (N up to a few thousand tokens).

The numerical rank (singular values above a tiny threshold) says whether a map is confined to d dimensions, but a
banded term lifts it to N however weak it is. The energy rank (how many singular values hold 99 % of the squared
sum, i.e. of the squared Frobenius norm) says how many directions carry real weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from laformer.models.attention import LinearAttention, RankEnhancedLinearAttention, SoftmaxAttention

DEFAULT_RTOL = 1e-6
DEFAULT_ENERGY = 0.99


@dataclass
class CapturedAttention:
    """The inputs one spatial-attention module saw in a forward pass."""

    name: str
    module: nn.Module
    q: Tensor
    k: Tensor
    size: tuple[int, int]


def capture_attention_inputs(model: nn.Module, x: Tensor) -> list[CapturedAttention]:
    """Run ``model(x)`` once and record q, k (and the grid size) at every spatial-attention module."""
    captured: list[CapturedAttention] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (LinearAttention, SoftmaxAttention)):

            def hook(mod, args, name=name):
                q, k, _v, size = args
                captured.append(CapturedAttention(name, mod, q.detach(), k.detach(), tuple(size)))

            handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def depthwise_conv_matrices(conv: nn.Conv2d, size: tuple[int, int]) -> Tensor:
    """The depthwise convolution as one N x N matrix per channel: (C, N, N), ``out_c = M_c @ in_c``."""
    h, w = size
    n, channels = h * w, conv.weight.shape[0]
    basis = torch.eye(n, dtype=torch.float64, device=conv.weight.device).reshape(n, 1, h, w)
    responses = F.conv2d(
        basis.expand(n, channels, h, w), conv.weight.double(), padding=conv.padding, groups=channels
    )  # (N_in, C, H, W): column j of every M_c
    return responses.reshape(n, channels, n).permute(1, 2, 0)


def global_attention_maps(captured: CapturedAttention) -> Tensor:
    """The row-stochastic global maps of batch element 0, (heads, 1, N, N): softmax, or linear attention's."""
    module = captured.module
    q, k = captured.q[0].double(), captured.k[0].double()  # (heads, N, d)
    n, d = q.shape[-2:]
    if isinstance(module, SoftmaxAttention):
        return torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1).unsqueeze(1)
    scores = module.phi(q) @ module.phi(k).transpose(-1, -2) / n  # matches the 1/N scaling of the fast path
    return (scores / (scores.sum(-1, keepdim=True) + 1e-6)).unsqueeze(1)


def local_term_matrices(captured: CapturedAttention) -> Tensor | None:
    """RELA's depthwise term as matrices, (heads, channels_per_head, N, N); None for the other attentions."""
    if not isinstance(captured.module, RankEnhancedLinearAttention):
        return None
    heads, n = captured.q.shape[1:3]
    return depthwise_conv_matrices(captured.module.dwconv, captured.size).reshape(heads, -1, n, n)


def effective_attention_maps(captured: CapturedAttention) -> Tensor:
    """Maps of batch element 0, shaped (heads, channels_per_head, N, N); channel axis is 1 unless RELA."""
    maps = global_attention_maps(captured)
    local = local_term_matrices(captured)
    return maps if local is None else maps + local


def rank_above(singular_values: Tensor, rtol: float = DEFAULT_RTOL) -> Tensor:
    """Singular values (descending, last axis) above ``rtol * largest``: the numerical rank."""
    return (singular_values > rtol * singular_values[..., :1]).sum(-1)


def energy_rank(singular_values: Tensor, energy: float = DEFAULT_ENERGY) -> Tensor:
    """The fewest leading singular values (descending, last axis) whose squares hold ``energy`` of their sum."""
    if not 0 < energy <= 1:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    power = singular_values.square()
    share = power.cumsum(-1) / power.sum(-1, keepdim=True)
    return ((share < energy - 1e-12).sum(-1) + 1).clamp(max=singular_values.shape[-1])


def numerical_rank(maps: Tensor, rtol: float = DEFAULT_RTOL) -> Tensor:
    """Singular values above ``rtol * largest``, per matrix of a (..., N, N) stack."""
    return rank_above(torch.linalg.svdvals(maps), rtol)


@torch.no_grad()
def attention_rank_report(
    model: nn.Module, x: Tensor, rtol: float = DEFAULT_RTOL, energy: float = DEFAULT_ENERGY
) -> list[dict]:
    """One row per attention head of every block: where it is, its size, and the numerical and energy ranks.

    For RELA the ranks differ per channel; the row gives min, median and max over the head's channels.
    ``global_norm`` is the Frobenius norm of the head's row-stochastic global map: 1 for uniform averaging over
    all tokens (its lowest value), sqrt(N) for one token per row. ``local_norm`` is the median Frobenius norm of
    RELA's depthwise term over the head's channels (0 for the other attentions): the two norms say which term
    carries the weight.
    """
    rows = []
    for captured in capture_attention_inputs(model, x):
        global_maps, local = global_attention_maps(captured), local_term_matrices(captured)
        global_norms = torch.linalg.matrix_norm(global_maps[:, 0])
        local_norms = torch.linalg.matrix_norm(local).median(-1).values if local is not None else 0 * global_norms
        singular = torch.linalg.svdvals(global_maps if local is None else global_maps + local)
        ranks, energy_ranks = rank_above(singular, rtol).float(), energy_rank(singular, energy).float()
        n, d = captured.q.shape[-2:]
        for head, (head_ranks, head_energy) in enumerate(zip(ranks, energy_ranks)):
            rows.append(
                {
                    "layer": captured.name.removesuffix(".perception.spatial"),
                    "attention": type(captured.module).__name__,
                    "head": head,
                    "tokens": n,
                    "head_dim": d,
                    "rank_min": int(head_ranks.min()),
                    "rank_median": float(head_ranks.median()),
                    "rank_max": int(head_ranks.max()),
                    "energy_rank_min": int(head_energy.min()),
                    "energy_rank_median": float(head_energy.median()),
                    "energy_rank_max": int(head_energy.max()),
                    "global_norm": float(global_norms[head]),
                    "local_norm": float(local_norms[head]),
                }
            )
    return rows
