"""Building blocks of LAformer: channel LayerNorm, global perception (spatial + channel attention), CGFN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from laformer.models.attention import build_attention, heads_to_map

FUSION_MODES = ("gate", "sum", "sequence")


def strip_spans(x: Tensor, strip_pixels: int) -> list[tuple[int, int]] | None:
    """Row spans ``[top, bottom)`` of about ``strip_pixels`` pixels each, or None for the plain whole-map path.

    Strips are for inference only (no autograd) and for maps larger than one strip; training keeps the plain path.
    """
    height, width = x.shape[-2:]
    if torch.is_grad_enabled() or height * width <= strip_pixels:
        return None
    rows = max(1, strip_pixels // width)
    return [(top, min(height, top + rows)) for top in range(0, height, rows)]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        # Back in the input's memory format: the bare permute is a channels-last view, which sent the branch's
        # convolutions down their channels-last path and gave depthwise weights channels-last gradient strides
        # (DDP warned "Grad strides do not match bucket view strides"). Channels-last input stays so: no copy.
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        out = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation style channel weights: pool, 1x1 bottleneck, sigmoid. No softmax."""

    def __init__(self, dim: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(dim // reduction, 4)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dim, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Returns (B, C, 1, 1) weights in (0, 1)."""
        return self.gate(x)


class GlobalPerception(nn.Module):
    """Global context from spatial attention (the variant under study) joined with channel attention.

    Queries and keys are ``qk_ratio`` times as wide as the values: the attention map only needs enough
    width to score pixel pairs, and the 1x1 projections dominate the block's cost.

    ``fusion`` says how the two join:
      - ``gate``: channel weights of the input gate the spatial output, ``S(x) * CA(x)``;
      - ``sum``: two parallel branches, ``S(x) + x * CA(x)``;
      - ``sequence``: channel attention re-weights the spatial output, ``S(x) * CA(S(x))``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attention: str = "rela",
        feature_map: str = "elu",
        kernel_size: int = 5,
        fusion: str = "gate",
        qk_ratio: float = 0.5,
        channel_reduction: int = 4,
    ) -> None:
        super().__init__()
        qk_dim = int(dim * qk_ratio)
        if dim % num_heads or qk_dim % num_heads or qk_dim == 0:
            raise ValueError(f"width {dim} (query/key width {qk_dim}) is not divisible by {num_heads} heads")
        if fusion not in FUSION_MODES:
            raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSION_MODES}")
        self.num_heads, self.fusion = num_heads, fusion
        self.split = (qk_dim, qk_dim, dim)
        self.qkv = nn.Conv2d(dim, sum(self.split), 1)
        self.qkv_dw = nn.Conv2d(sum(self.split), sum(self.split), 3, padding=1, groups=sum(self.split))
        self.spatial = build_attention(attention, dim, num_heads, feature_map=feature_map, kernel_size=kernel_size)
        self.channel = ChannelAttention(dim, channel_reduction)
        self.project = nn.Conv2d(dim, dim, 1)

    # Inference on maps above this many pixels goes through in strips of rows (see ``forward_in_strips``).
    strip_pixels = 2**18

    def qkv_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, C, H, W) -> the q, k and v maps, (B, d_qk or C, H, W)."""
        return self.qkv_dw(self.qkv(x)).split(self.split, 1)

    def heads(self, t: Tensor) -> Tensor:
        return rearrange(t, "b (h d) y x -> b h (y x) d", h=self.num_heads)

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, C, H, W) -> q, k (B, heads, H*W, d_qk) and v (B, heads, H*W, C/heads)."""
        return tuple(self.heads(t) for t in self.qkv_maps(x))

    def join(self, s: Tensor, x: Tensor, channel_weights: Tensor | None) -> Tensor:
        if self.fusion == "gate":
            return s * channel_weights
        if self.fusion == "sum":
            return s + x * channel_weights
        return s * self.channel(s)

    def forward(self, x: Tensor) -> Tensor:
        spans = strip_spans(x, self.strip_pixels)
        if spans is not None and self.fusion != "sequence" and hasattr(self.spatial, "summarize"):
            return self.forward_in_strips(x, spans)
        q, k, v = self.qkv_heads(x)
        s = self.spatial(q, k, v, x.shape[-2:])
        # The attention's output comes back in its own layout: give it the block input's, so the 1x1 projection's
        # weight gradient is laid out as the weight (DDP otherwise copies it every step, see LayerNorm2d).
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        s = s.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        return self.project(self.join(s, x, None if self.fusion == "sequence" else self.channel(x)))

    def forward_in_strips(self, x: Tensor, spans: list[tuple[int, int]]) -> Tensor:
        """The same global result, with no full-size intermediate: the peak of a 4K pass is the block's input.

        Linear attention needs only two sums over all pixels, so a first pass over strips of rows accumulates them,
        and a second recomputes each strip's queries and values (with a halo of rows for the 3x3 and the
        attention's local convolutions) and reads its output. The q/k/v projection runs twice, the price of
        never holding the full-size q, k, v and attention output.
        """
        height, width = x.shape[-2:]
        kv_sum = k_sum = None
        for top, bottom in spans:
            _, k, v = self.strip_maps(x, top, bottom, 0)
            kv, ks = self.spatial.summarize(self.heads(k), self.heads(v))
            kv_sum, k_sum = (kv, ks) if kv_sum is None else (kv_sum + kv, k_sum + ks)
        weights = self.channel(x)  # gate and sum fusions pool the block's input, not the attention output
        out = torch.empty_like(x)
        halo = self.spatial.halo
        for top, bottom in spans:
            q, _, v = self.strip_maps(x, top, bottom, halo)  # v keeps `halo` extra rows (fewer at the borders)
            above = top - max(0, top - halo)
            s = heads_to_map(
                self.spatial.read(self.heads(q), kv_sum, k_sum, height * width, v.dtype), (bottom - top, width)
            )
            local = self.spatial.local(v)
            if local is not None:
                s = s + local[..., above : above + bottom - top, :]
            out[..., top:bottom, :] = self.project(self.join(s, x[..., top:bottom, :], weights))
        return out

    def strip_maps(self, x: Tensor, top: int, bottom: int, v_halo: int) -> tuple[Tensor, Tensor, Tensor]:
        """q and k of rows [top, bottom), v of rows [top - v_halo, bottom + v_halo) clipped to the image."""
        height = x.shape[-2]
        first, last = max(0, top - v_halo - 1), min(height, bottom + v_halo + 1)  # +1: the 3x3 depthwise conv
        q, k, v = self.qkv_maps(x[..., first:last, :])
        inner = slice(top - first, bottom - first)
        v_first, v_last = max(0, top - v_halo), min(height, bottom + v_halo)
        return q[..., inner, :], k[..., inner, :], v[..., v_first - first : v_last - first, :]


class ConvGatedFFN(nn.Module):
    """CGFN: 1x1 expand, 3x3 depthwise conv, split, ``GELU(a) * b``, 1x1 project. Local detail.

    Its hidden maps are the widest in the network (4x the block's width at full resolution: 6.4 GB each for
    ``base`` at 3840 x 2160). Being local, it can go through a large image in strips of rows, each with a one-row
    halo for the 3x3 convolution, with exactly the same result. Without autograd (inference, validation), maps
    above ``strip_pixels`` pixels take that path, so the hidden maps never exist at full size.
    """

    strip_pixels = 2**16

    def __init__(self, dim: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.expand = nn.Conv2d(dim, hidden * 2, 1)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2)
        self.project = nn.Conv2d(hidden, dim, 1)

    def ffn(self, x: Tensor) -> Tensor:
        a, b = self.dwconv(self.expand(x)).chunk(2, dim=1)
        return self.project(F.gelu(a) * b)

    def forward(self, x: Tensor) -> Tensor:
        spans = strip_spans(x, self.strip_pixels)
        if spans is None:
            return self.ffn(x)
        height = x.shape[-2]
        out = torch.empty_like(x)
        for top, bottom in spans:
            first, last = max(0, top - 1), min(height, bottom + 1)  # one-row halo for the 3x3 depthwise conv
            strip = self.ffn(x[..., first:last, :])
            out[..., top:bottom, :] = strip[..., top - first : top - first + bottom - top, :]
        return out


class LAformerBlock(nn.Module):
    """``x + GlobalPerception(Norm(x))`` then ``x + CGFN(Norm(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attention: str = "rela",
        feature_map: str = "elu",
        kernel_size: int = 5,
        fusion: str = "gate",
        ffn_expansion: float = 2.0,
        qk_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.perception = GlobalPerception(dim, num_heads, attention, feature_map, kernel_size, fusion, qk_ratio)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = ConvGatedFFN(dim, ffn_expansion)

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            x = x + self.perception(self.norm1(x))
            return x + self.ffn(self.norm2(x))
        # Inference: each branch's output is a fresh map of this call, so the residual is added into it in place.
        # The sum no longer needs a third full-size map beside the input and the branch (at 4K: 0.5 GB per map at
        # width 16, counted twice per block).
        branch = self.perception(self.norm1(x))
        x = branch.add_(x)
        branch = self.ffn(self.norm2(x))
        return branch.add_(x)
