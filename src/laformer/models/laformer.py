"""LAformer: a 4-level U-shaped encoder-decoder of LAformer blocks with a global residual."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from laformer.models.attention import reset_local_terms
from laformer.models.blocks import LAformerBlock
from laformer.models.registry import NetworkInfo, check_config_fits_weights, safetensors_shapes

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 16, "blocks": (1, 2, 2, 2), "refinement": 1, "heads": (1, 2, 4, 8)},
    "small": {"width": 32, "blocks": (2, 3, 3, 4), "refinement": 2, "heads": (1, 2, 4, 8)},
    "base": {"width": 48, "blocks": (4, 6, 6, 8), "refinement": 4, "heads": (1, 2, 4, 8)},
}

LEVELS = 4
# Three 2x down-samplings: inputs are padded to this multiple, outputs cropped back.
SIZE_MULTIPLE = 2 ** (LEVELS - 1)
# Measured peak resident memory (process total) of a fp32 one-pass restoration, per pixel and per channel of the
# full-resolution width: tiny (width 16) at 3840 x 2160 peaked at 4.0 GiB, i.e. 32.5 bytes (see inference/cpu_heap).
PEAK_BYTES_PER_PIXEL_PER_WIDTH = 32


def pad_to_multiple(x: Tensor, multiple: int, minimum: int = 0, mode: str = "reflect") -> Tensor:
    """Pad bottom/right so both sides are multiples of ``multiple`` and at least ``minimum``.

    ``reflect``: reflect where the image is large enough, else replicate; ``constant``: zeros (as NAFNet's own code
    pads). The one padding of the suite: LAformer and every peer network (``laformer.models.peers``) pad here.
    """
    h, w = x.shape[-2:]
    if minimum:
        h_target, w_target = max(h, minimum), max(w, minimum)
        ph, pw = h_target - h + (-h_target) % multiple, w_target - w + (-w_target) % multiple
    else:  # shape arithmetic only, which a traced (ONNX) graph keeps dynamic
        ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and not (ph < h and pw < w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def join_skip(reduce: nn.Conv2d, up: Tensor, skip: Tensor) -> Tensor:
    """``reduce(cat([up, skip]))``, the decoder's 1x1 reduction of the up-sampled map and the encoder's skip.

    Without autograd, the concatenated map (twice the level's width, 1 GB at 4K for ``tiny``'s full resolution) is
    never built: the 1x1 convolution is split along its input channels, ``W_up @ up + W_skip @ skip + b``, the same
    sum in another order. Training keeps the concatenation (one convolution, one weight gradient).
    """
    if torch.is_grad_enabled():
        return reduce(torch.cat([up, skip], dim=1))
    split = up.shape[1]
    out = F.conv2d(up, reduce.weight[:, :split], reduce.bias)
    return out.add_(F.conv2d(skip, reduce.weight[:, split:]))


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


class LAformer(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="laformer",
    tags=["image-restoration", "laformer", "linear-attention"],
    paper_url="https://arxiv.org/abs/2505.16157",
):
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

    @classmethod
    def from_preset(cls, name: str, attention: str = "rela", **overrides: Any) -> LAformer:
        """``LAformer.from_preset("base", attention="linear", width=32)``; ``None`` overrides keep the preset."""
        try:
            preset = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
        overrides = {k: v for k, v in overrides.items() if v is not None}
        net = cls(**{**preset, "attention": attention, **overrides})
        net.preset = name
        return net

    @classmethod
    def _from_pretrained(cls, *, strict: bool = True, config: dict | None = None, **kwargs: Any) -> LAformer:
        # The mixin's default (strict=False) would leave missing weights at their random initial values.
        weights = Path(str(kwargs.get("model_id", "")), "model.safetensors")
        if weights.is_file():  # the folder's config must describe its tensors before the network is allocated
            arguments = set(inspect.signature(cls.__init__).parameters) - {"self"}
            constructor = {k: v for k, v in kwargs.items() if k in arguments}
            check_config_fits_weights(cls, constructor, safetensors_shapes(weights), str(weights.parent))
        net = super()._from_pretrained(strict=strict, **kwargs)
        net.preset = ((config or {}).get("laformer") or {}).get("info", {}).get("preset")
        return net

    @property
    def info(self) -> NetworkInfo:
        return NetworkInfo(
            family="laformer",
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            size_multiple=SIZE_MULTIPLE,
            preset=self.preset,
            attention=self.attention,
            peak_bytes_per_pixel=PEAK_BYTES_PER_PIXEL_PER_WIDTH * self.width,
        )

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
        for up, reduce, decoder in zip(self.ups, self.reduces, self.decoders):
            # pop: without autograd a skip is freed once joined, not held through the full-resolution blocks
            feat = decoder(join_skip(reduce, up(feat), skips.pop()))
        out = self.output(self.refinement(feat))
        if self.in_channels == self.out_channels:
            out = out + inp if torch.is_grad_enabled() else out.add_(inp)
        return out[..., :h, :w]
