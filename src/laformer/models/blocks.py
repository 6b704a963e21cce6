"""Building blocks of LAformer: channel LayerNorm, global perception (spatial + channel attention), CGFN."""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from laformer.models.attention import build_attention

FUSION_MODES = ("gate", "sum", "sequence")


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


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

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, C, H, W) -> q, k (B, heads, H*W, d_qk) and v (B, heads, H*W, C/heads)."""
        qkv = self.qkv_dw(self.qkv(x))
        return tuple(rearrange(t, "b (h d) y x -> b h (y x) d", h=self.num_heads) for t in qkv.split(self.split, 1))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv_heads(x)
        s = self.spatial(q, k, v, x.shape[-2:])
        if self.fusion == "gate":
            y = s * self.channel(x)
        elif self.fusion == "sum":
            y = s + x * self.channel(x)
        else:
            y = s * self.channel(s)
        return self.project(y)


class ConvGatedFFN(nn.Module):
    """CGFN: 1x1 expand, 3x3 depthwise conv, split, ``GELU(a) * b``, 1x1 project. Local detail."""

    def __init__(self, dim: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.expand = nn.Conv2d(dim, hidden * 2, 1)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2)
        self.project = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.dwconv(self.expand(x)).chunk(2, dim=1)
        return self.project(F.gelu(a) * b)


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
        x = x + self.perception(self.norm1(x))
        return x + self.ffn(self.norm2(x))
