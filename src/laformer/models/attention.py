"""Spatial attention variants compared in the paper: vanilla linear, rank-enhanced linear (RELA), softmax.

All three share one call signature, ``attn(q, k, v, size) -> (B, C, H, W)`` with ``q, k, v`` shaped
``(B, heads, N, head_dim)``, so the network swaps them by name (see ``ATTENTIONS``) and an ablation is a
constructor argument, never a copied network.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def elu_plus_one(x: Tensor) -> Tensor:
    return F.elu(x) + 1.0


FEATURE_MAPS: dict[str, Callable[[Tensor], Tensor]] = {"elu": elu_plus_one, "relu": F.relu}
# Each feature map as ``phi(x) = base(x) + offset``. The keys' offset is folded into the small sums
# (``phi(K)^T V = base(K)^T V + offset * sum(V)``), the queries' is added in place: no full-size ``phi`` map is
# allocated beside the base's output (the profile showed an ``add`` and a new map per q and k and block).
FEATURE_PARTS: dict[str, tuple[Callable[[Tensor], Tensor], float]] = {"elu": (F.elu, 1.0), "relu": (F.relu, 0.0)}

# Guards the normaliser when every phi(k) of a head is zero (possible with the ReLU feature map).
_NORMALISER_EPS = 1e-6


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()  # e.g. the meta device used for counting MACs


def heads_to_map(x: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, heads, H*W, d) -> (B, heads*d, H, W); a view (channels-last strides) when heads and d are adjacent."""
    return rearrange(x, "b h (y x) d -> b (h d) y x", y=size[0], x=size[1])


class LinearAttention(nn.Module):
    """Vanilla linear attention: ``phi(Q) (phi(K)^T V) / (phi(Q) phi(K)^T 1)``, linear in N pixels.

    The two reductions over pixels run in (at least) float32: summed over the millions of pixels of a 4K image
    they would overflow bf16 or fp16. They are split into ``summarize`` (keys and values) and ``read`` (queries)
    so that a large image can go through in strips of rows (``GlobalPerception``), with the same global result.
    """

    # Rows of context around each output row that ``local`` reads (none: vanilla linear attention is global only).
    halo = 0

    def __init__(self, dim: int, num_heads: int, feature_map: str = "elu", kernel_size: int = 5) -> None:
        super().__init__()
        if feature_map not in FEATURE_MAPS:
            raise ValueError(f"unknown feature_map {feature_map!r}; choose one of {sorted(FEATURE_MAPS)}")
        self.dim, self.num_heads = dim, num_heads
        self.feature_map = feature_map
        self.phi = FEATURE_MAPS[feature_map]
        self.base, self.offset = FEATURE_PARTS[feature_map]

    def _dtype(self, *tensors: Tensor) -> torch.dtype:
        # At least float32: half precisions go up, float64 (the rank analysis, gradcheck) stays float64.
        return functools.reduce(torch.promote_types, (t.dtype for t in tensors), torch.float32)

    def summarize(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """The two sums over pixels: ``phi(K)^T V`` (B, heads, d, e) and ``phi(K)`` summed (B, heads, d).

        Sums of disjoint sets of pixels add up, so a large image can be summarised strip by strip.
        """
        dtype = self._dtype(k, v)
        with _autocast_off(k.device.type):
            base, v = self.base(k.to(dtype)), v.to(dtype)
            kv = torch.einsum("bhnd,bhne->bhde", base, v)
            k_sum = base.sum(dim=-2)
            if self.offset:  # (base + offset)^T V = base^T V + offset * (column sums of V), on (d, e) numbers
                kv = kv + self.offset * v.sum(dim=-2, keepdim=True)
                k_sum = k_sum + self.offset * k.shape[-2]
            return kv, k_sum

    def read(self, q: Tensor, kv_sum: Tensor, k_sum: Tensor, pixels: int, out_dtype: torch.dtype) -> Tensor:
        """``phi(Q) kv / (phi(Q) k)`` for the queries ``q`` (any subset of pixels), from sums over ``pixels``.

        All heads go through one matrix product in the pixels-by-channels layout ``(B, N, heads * d)``, against a
        block-diagonal ``(heads * d, heads * e)`` matrix of every head's ``kv`` (and one of ``(heads * d, heads)``
        for the normalisers). For q heads cut from a feature map (``GlobalPerception.heads``) that layout
        is a view, and the result comes out pixels-by-channels, so ``heads_to_map`` is a view too: per-head products
        needed two full-size copies per multi-head block (reshape and contiguous, in the profile). The zero blocks
        add exact zeros; the multiplications they cost are on the narrow lower levels only.
        """
        b, h, n, d = q.shape
        e = kv_sum.shape[-1]
        with _autocast_off(q.device.type):
            dtype = self._dtype(q, kv_sum)
            # Scaled by 1/N: the 1/N cancels in the ratio, it keeps values small.
            kv, k_mean = kv_sum.to(dtype) / pixels, k_sum.to(dtype) / pixels
            if h > 1:  # block diagonal: each head's (d, e) block, zero elsewhere
                eye = torch.eye(h, dtype=dtype, device=q.device).view(1, h, 1, h, 1)
                values = (kv.unsqueeze(3) * eye).reshape(b, h * d, h * e)
                norms = (k_mean.unsqueeze(-1) * eye[..., 0]).reshape(b, h * d, h)
            else:
                values, norms = kv.reshape(b, d, e), k_mean.reshape(b, d, 1)
            flat_q = q.transpose(1, 2).reshape(b, n, h * d)  # a view for heads cut from a map
            features = self.base(flat_q.to(dtype))
            if self.offset:  # in place on the fresh map, no new one: the base's backward reads its input, not this
                features.add_(self.offset)
            # Two products, not one against [values | norms]: slicing one result cost a full-size zero-filled copy
            # per slice in the backward pass (SliceBackward0).
            z = torch.bmm(features, norms).unsqueeze(-1) + _NORMALISER_EPS  # normaliser, (B, N, heads, 1)
            out = torch.bmm(features, values).unflatten(-1, (h, e)) / z  # (B, N, heads, e)
        return out.to(out_dtype).transpose(1, 2)  # (B, heads, N, e), a view of the pixels-by-channels result

    def linear_term(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        kv_sum, k_sum = self.summarize(k, v)
        return self.read(q, kv_sum, k_sum, k.shape[-2], v.dtype)

    def local(self, v_map: Tensor) -> Tensor | None:
        """The term added to the global one, from the value map (B, C, H, W); none for vanilla linear attention."""
        return None

    def forward(self, q: Tensor, k: Tensor, v: Tensor, size: tuple[int, int]) -> Tensor:
        return heads_to_map(self.linear_term(q, k, v), size)


class RankEnhancedLinearAttention(LinearAttention):
    """RELA: linear attention plus a depthwise convolution on the values.

    The depthwise convolution is a banded, generally full-rank N x N operator, so the sum lifts the rank
    of the attention map above the head dimension that bounds vanilla linear attention. It has no bias,
    so zero weights reduce RELA exactly to ``LinearAttention``.

    The depthwise weights are drawn from a generator of their own, never from PyTorch's global random stream.
    Drawing them from the global stream shifted every weight built after them, so under one seed RELA started
    from other weights than linear and softmax (58 of 276 shared tensors equal in the tiny network), and an
    ablation's paired difference mixed the attention with a new initial draw. Now one seed gives every variant the
    same shared weights, and the global stream after construction is the same too.
    """

    def __init__(self, dim: int, num_heads: int, feature_map: str = "elu", kernel_size: int = 5) -> None:
        super().__init__(dim, num_heads, feature_map)
        self.kernel_size = kernel_size
        self.halo = kernel_size // 2
        # skip_init builds the layer without drawing its default initial weights (which would use the global stream),
        # on the default device, as the rest of the network (``with torch.device(...)`` included).
        self.dwconv = nn.utils.skip_init(
            nn.Conv2d,
            dim,
            dim,
            kernel_size,
            padding=kernel_size // 2,
            groups=dim,
            bias=False,
            device=torch.get_default_device(),
        )
        self.reset_local_parameters(local_init_generator())

    def reset_local_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default Conv2d initialisation of the depthwise weights, drawn from the CPU ``generator``.

        Drawn on the CPU and copied, so the weights are the same whatever device the layer lives on.
        """
        weight = torch.empty(self.dwconv.weight.shape, device="cpu")
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        with torch.no_grad():
            self.dwconv.weight.copy_(weight)

    def local(self, v_map: Tensor) -> Tensor:
        return self.dwconv(v_map)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, size: tuple[int, int]) -> Tensor:
        return heads_to_map(self.linear_term(q, k, v), size) + self.local(heads_to_map(v, size))


def local_init_generator() -> torch.Generator:
    """A generator for RELA's depthwise weights, seeded from the global seed without drawing from its stream.

    ``torch.initial_seed()`` is what ``torch.manual_seed`` (or Lightning's ``seed_everything``) set, so the
    depthwise weights are as reproducible as the rest, and a different seed gives different kernels.
    """
    return torch.Generator().manual_seed((torch.initial_seed() + 0x9E3779B9) % 2**63)


def reset_local_terms(net: nn.Module) -> None:
    """Give every RELA layer of ``net`` its own depthwise draw, in module order, from one seeded generator.

    Each layer seeds its own generator when built alone; within a network, layers of equal width would then start
    from equal kernels.
    """
    generator = local_init_generator()
    for module in net.modules():
        if isinstance(module, RankEnhancedLinearAttention):
            module.reset_local_parameters(generator)


class SoftmaxAttention(nn.Module):
    """Full global softmax attention, quadratic in N: the reference point of the ablation.

    Query/key width (``qk_ratio``) usually differs from the value width, and PyTorch's fused kernels need them
    equal: zero-padding q and k to the value width leaves every score unchanged (the scale stays that of the
    true width) and keeps the fused kernel, several times faster on CPU than the fallback that materialises
    the N x N map. Queries also go through in chunks so that at most ``max_scores`` scores would exist at once
    should a backend fall back anyway. The result is the same exact global attention.
    ``feature_map`` and ``kernel_size`` are accepted so every variant has one constructor, and ignored.
    """

    max_scores = 2**26

    def __init__(self, dim: int, num_heads: int, feature_map: str = "elu", kernel_size: int = 5) -> None:
        super().__init__()
        self.dim, self.num_heads = dim, num_heads

    def forward(self, q: Tensor, k: Tensor, v: Tensor, size: tuple[int, int]) -> Tensor:
        b, h, n, d_qk = q.shape
        d_v = v.shape[-1]
        scale = d_qk**-0.5
        # Shape-only passes (MAC counting on the meta device) count the true widths and need no chunking.
        if d_qk < d_v and not q.is_meta:
            q, k = F.pad(q, (0, d_v - d_qk)), F.pad(k, (0, d_v - d_qk))
        elif d_v < d_qk and not q.is_meta:
            v = F.pad(v, (0, d_qk - d_v))
        # The fused CPU kernel needs unit strides on the last dimension; v arrives as a strided view and sent every
        # call down the slow path (3-7x slower training and inference at 64-192 px on the 2-core CPU).
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        chunk = n if q.is_meta else max(1, self.max_scores // (b * h * n))
        parts = [F.scaled_dot_product_attention(qc, k, v, scale=scale) for qc in q.split(chunk, dim=2)]
        return heads_to_map(torch.cat(parts, dim=2)[..., :d_v], size)


ATTENTIONS: dict[str, type[nn.Module]] = {
    "rela": RankEnhancedLinearAttention,
    "linear": LinearAttention,
    "softmax": SoftmaxAttention,
}


def build_attention(name: str, dim: int, num_heads: int, feature_map: str = "elu", kernel_size: int = 5) -> nn.Module:
    try:
        cls = ATTENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown attention {name!r}; choose one of {sorted(ATTENTIONS)}") from None
    return cls(dim, num_heads, feature_map=feature_map, kernel_size=kernel_size)
