"""The network as it was before issue 25's eager optimisations: the reference they must reproduce.

A frozen copy of ``laformer.models.{attention,blocks,laformer}`` at commit 1937a8e (module names kept, Hub mixin and
loading code dropped), so ``test_eager_equivalence`` loads one state dict into both and compares outputs and
gradients. Edit only to follow a change of the state dict's keys (which must not happen).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def elu_plus_one(x: Tensor) -> Tensor:
    return F.elu(x) + 1.0


FEATURE_MAPS: dict[str, Callable[[Tensor], Tensor]] = {"elu": elu_plus_one, "relu": F.relu}

# Guards the normaliser when every phi(k) of a head is zero (possible with the ReLU feature map).
_NORMALISER_EPS = 1e-6


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()  # e.g. the meta device used for counting MACs


def heads_to_map(x: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, heads, H*W, d) -> (B, heads*d, H, W)."""
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

    def _dtype(self, *tensors: Tensor) -> torch.dtype:
        # At least float32: half precisions go up, float64 (the rank analysis, gradcheck) stays float64.
        return functools.reduce(torch.promote_types, (t.dtype for t in tensors), torch.float32)

    def summarize(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """The two sums over pixels: ``phi(K)^T V`` (B, heads, d, e) and ``phi(K)`` summed (B, heads, d).

        Sums of disjoint sets of pixels add up, so a large image can be summarised strip by strip.
        """
        dtype = self._dtype(k, v)
        with _autocast_off(k.device.type):
            k = self.phi(k.to(dtype))
            return torch.einsum("bhnd,bhne->bhde", k, v.to(dtype)), k.sum(dim=-2)

    def read(self, q: Tensor, kv_sum: Tensor, k_sum: Tensor, pixels: int, out_dtype: torch.dtype) -> Tensor:
        """``phi(Q) kv / (phi(Q) k)`` for the queries ``q`` (any subset of pixels), from sums over ``pixels``."""
        with _autocast_off(q.device.type):
            q = self.phi(q.to(self._dtype(q, kv_sum)))
            kv, k_mean = kv_sum / pixels, k_sum / pixels  # the 1/N cancels in the ratio; it keeps values small
            z = torch.einsum("bhnd,bhd->bhn", q, k_mean).unsqueeze(-1)  # normaliser, (B, heads, N, 1)
            out = torch.einsum("bhnd,bhde->bhne", q, kv) / (z + _NORMALISER_EPS)
        return out.to(out_dtype)

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


ATTENTIONS = {"rela": RankEnhancedLinearAttention, "linear": LinearAttention, "softmax": SoftmaxAttention}


def build_attention(name: str, dim: int, num_heads: int, feature_map: str = "elu", kernel_size: int = 5) -> nn.Module:
    try:
        cls = ATTENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown attention {name!r}; choose one of {sorted(ATTENTIONS)}") from None
    return cls(dim, num_heads, feature_map=feature_map, kernel_size=kernel_size)


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
        x = x + self.perception(self.norm1(x))
        return x + self.ffn(self.norm2(x))


LEVELS = 4
# Three 2x down-samplings: inputs are padded to this multiple, outputs cropped back.
SIZE_MULTIPLE = 2 ** (LEVELS - 1)
# Measured peak resident memory (process total) of a fp32 one-pass restoration, per pixel and per channel of the
# full-resolution width: tiny (width 16) at 3840 x 2160 peaked at 4.0 GiB, i.e. 32.5 bytes (see inference/cpu_heap).
PEAK_BYTES_PER_PIXEL_PER_WIDTH = 32


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad bottom/right to a multiple; reflect where the image is large enough, else replicate."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class Downsample(nn.Module):
    """Halve the resolution, double the width: 3x3 conv to C/2, then pixel-unshuffle (x4 channels)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution, halve the width: 3x3 conv to 2C, then pixel-shuffle (/4 channels)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class LAformer(nn.Module):
    """U-shaped restoration Transformer whose spatial attention is chosen by name.

    ``LAformer.from_pretrained(folder)`` loads a folder in the Hugging Face Hub layout (``config.json`` with the
    constructor arguments, ``model.safetensors``), as ``laformer-export --format safetensors`` writes it; the
    config only chooses constructor arguments, and safetensors holds tensors alone, so no code is loaded.

    Args:
        in_channels / out_channels: 1 (grayscale) or 3 (RGB). The global residual applies when they match.
        width: channels at full resolution; level i has ``width * 2**i``.
        blocks: LAformer blocks at the three encoder levels and the latent level; decoders mirror them.
        refinement: blocks at full resolution after the decoder.
        heads: attention heads per level.
        attention: ``rela`` (default), ``linear`` or ``softmax`` (see ``laformer.models.attention.ATTENTIONS``).
        feature_map: ``elu`` (ELU+1) or ``relu``, for the linear variants.
        kernel_size: depthwise kernel of RELA.
        fusion: how channel attention joins the spatial branch: ``gate``, ``sum`` or ``sequence``.
        ffn_expansion: hidden-width ratio of the convolutional gated FFN (Restormer uses 2.66).
        qk_ratio: query/key width over value width in the attention (1.0 is the classic setting).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int | None = None,
        width: int = 48,
        blocks: Sequence[int] = (4, 6, 6, 8),
        refinement: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        attention: str = "rela",
        feature_map: str = "elu",
        kernel_size: int = 5,
        fusion: str = "gate",
        ffn_expansion: float = 2.0,
        qk_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if len(blocks) != LEVELS or len(heads) != LEVELS:
            raise ValueError(f"blocks and heads need {LEVELS} entries each, got {list(blocks)} and {list(heads)}")
        self.in_channels, self.out_channels, self.attention = in_channels, out_channels, attention
        self.width = width
        self.preset: str | None = None
        widths = [width * 2**i for i in range(LEVELS)]

        def stage(level: int, depth: int) -> nn.Sequential:
            return nn.Sequential(
                *(
                    LAformerBlock(
                        widths[level],
                        heads[level],
                        attention,
                        feature_map,
                        kernel_size,
                        fusion,
                        ffn_expansion,
                        qk_ratio,
                    )
                    for _ in range(depth)
                )
            )

        self.embed = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders = nn.ModuleList(stage(i, blocks[i]) for i in range(LEVELS - 1))
        self.downs = nn.ModuleList(Downsample(widths[i]) for i in range(LEVELS - 1))
        self.latent = stage(LEVELS - 1, blocks[-1])
        # Decoder lists run from the deepest level up to full resolution.
        self.ups = nn.ModuleList(Upsample(widths[i + 1]) for i in reversed(range(LEVELS - 1)))
        self.reduces = nn.ModuleList(nn.Conv2d(widths[i] * 2, widths[i], 1) for i in reversed(range(LEVELS - 1)))
        self.decoders = nn.ModuleList(stage(i, blocks[i]) for i in reversed(range(LEVELS - 1)))
        self.refinement = stage(0, refinement)
        self.output = nn.Conv2d(width, out_channels, 3, padding=1)
        reset_local_terms(self)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> restored (B, C_out, H, W); any H and W."""
        h, w = x.shape[-2:]
        inp = pad_to_multiple(x, SIZE_MULTIPLE)
        feat = self.embed(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.latent(feat)
        for up, reduce, decoder, skip in zip(self.ups, self.reduces, self.decoders, reversed(skips)):
            feat = decoder(reduce(torch.cat([up(feat), skip], dim=1)))
        out = self.output(self.refinement(feat))
        if self.in_channels == self.out_channels:
            out = out + inp
        return out[..., :h, :w]
