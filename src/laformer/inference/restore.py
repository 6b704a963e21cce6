"""Restore one image with a trained network: whole (one pass) or tiled, at a chosen precision.

One pass is the default: global linear attention sees the whole image at a cost linear in its pixels.
Tiling (``tile``) bounds memory for images that do not fit, at the price of attention limited to a tile.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from torch import Tensor, nn

from laformer.data.io import array_to_tensor, join_alpha, split_alpha, tensor_to_array
from laformer.inference.cpu_heap import reuse_freed_memory
from laformer.inference.ensemble import self_ensemble as ensemble_x8
from laformer.inference.tiling import tiled_forward
from laformer.models.registry import network_info

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICES = ("auto", "cpu", "cuda", "mps")
# How allocators word running out of memory when they raise a plain RuntimeError instead of an OOM type.
CHANNEL_NAMES = {1: "grayscale (1 channel)", 3: "RGB (3 channels)"}
OOM_MARKERS = ("out of memory", "can't allocate", "cannot allocate", "failed to allocate", "bad_alloc")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception from a forward pass means memory ran out (so tiling, not a bug report, is the fix)."""
    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return True
    return any(marker in str(exc).lower() for marker in OOM_MARKERS)


def prepare_network(net: nn.Module, device: torch.device) -> nn.Module:
    """Evaluation mode on ``device``; on the CPU also channels-last weights.

    LAformer normalises over channels at every block: in channels-last memory that needs no transposed copy, and
    oneDNN's convolutions skip their layout conversions. A tiny model's 768 x 768 forward pass took 3.2 s instead
    of 4.9 s on the 2-core development CPU, with the same output (to 1e-6).
    """
    net = net.eval().to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return net


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA if present, else Apple MPS, else the CPU; a named device must be available."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ValueError(f"--device {name} was requested but no {name.upper()} device is available; use --device cpu")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run usefully, with the alternative to pick.

    fp16 is refused on the CPU: PyTorch's CPU kernels have no fast float16 path, so it would be slower than
    fp32 and no more accurate than bf16.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("--precision fp16 needs a CUDA or MPS device; on the CPU use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("--precision bf16 is not supported by this GPU; use fp16 or fp32")


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[precision])


def cpu_heap_reuse(
    net: nn.Module, x: Tensor, tile: int | None, tile_batch: int, enabled: bool = True
) -> contextlib.AbstractContextManager:
    """On the CPU, reuse freed memory for the pass where it fits (see ``laformer.inference.cpu_heap``).

    The fit is judged from the network's ``NetworkInfo.peak_bytes_per_pixel``; a network without that figure
    keeps glibc's default (running out of memory on the CPU ends the process without a Python error)."""
    bytes_per_pixel = network_info(net).peak_bytes_per_pixel
    if not enabled or x.device.type != "cpu" or bytes_per_pixel is None:
        return contextlib.nullcontext(False)
    pixels = tile * tile * tile_batch if tile is not None else x.shape[0] * x.shape[-2] * x.shape[-1]
    return reuse_freed_memory(int(bytes_per_pixel * pixels))


def restore_image(
    net: nn.Module,
    image: Tensor,
    tile: int | None = None,
    overlap: int = 32,
    precision: str = "fp32",
    self_ensemble: bool = False,
    tile_batch: int = 1,
    reuse_freed_memory: bool = True,
) -> Tensor:
    """Restore a (C, H, W) or (B, C, H, W) image in [0, 1] with ``net`` on the net's device.

    Args:
        tile: tile side in pixels (a multiple of the network's ``size_multiple``) to restore tile by tile; None
            restores in one pass.
        overlap: pixels shared by neighbouring tiles (they cross-fade over it).
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast; the attention's sums stay in float32).
        self_ensemble: average the restorations of the 8 flips/rotations (x8 time; with tiles, per tile).
        tile_batch: tiles restored together.
        reuse_freed_memory: on the CPU, keep freed memory for the pass where it fits (faster; ``cpu_heap``).

    Returns the restoration on the CPU, float32, clamped to [0, 1], shaped like ``image``.
    """
    device = next(net.parameters()).device
    check_precision(precision, device)
    single = image.ndim == 3
    x = (image.unsqueeze(0) if single else image).to(device=device, dtype=torch.float32)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)  # matches prepare_network
    restore = functools.partial(ensemble_x8, net) if self_ensemble else net
    info = network_info(net)
    if (precision == "fp16" and not info.supports_fp16) or (precision == "bf16" and not info.supports_bf16):
        raise ValueError(
            f"{info.family} is not known to stay finite in {precision} (its NetworkInfo says so); "
            f"use {'bf16 or ' if precision == 'fp16' and info.supports_bf16 else ''}fp32"
        )
    heap = cpu_heap_reuse(net, x, tile, tile_batch, reuse_freed_memory)
    with torch.no_grad(), autocast_context(precision, device), heap:
        if tile is None:
            y = restore(x)
        else:
            y = tiled_forward(restore, x, tile, overlap, info.size_multiple, tile_batch, info.out_channels)
    y = y.float().clamp_(0, 1).cpu()
    return y[0] if single else y


class ChannelMismatchError(ValueError):
    """An image whose channels the network cannot take (an RGB photo for a grayscale model)."""


def restore_array(net: nn.Module, array: np.ndarray, source: str = "the image", **options) -> np.ndarray:
    """Restore pixels as read from a file (H x W or H x W x C, uint8 or uint16) into the same shape and dtype.

    A grayscale image given to an RGB model is restored as grey RGB and written back as grey (BT.601 luma of
    the result, the same weights ``read_image`` uses), because that is what a user with a grey scan expects.
    An alpha channel (RGBA, grey + alpha) is not restored: it is set aside and joined back unchanged, so a cut-out
    keeps its exact transparency. ``options`` are those of :func:`restore_image`.
    """
    in_channels = network_info(net).in_channels
    array, alpha = split_alpha(array)
    image = array_to_tensor(array)
    channels = image.shape[0]
    if channels == 1 and in_channels == 3:
        image = image.expand(3, -1, -1)
    elif channels != in_channels:
        raise ChannelMismatchError(
            f"{source} is {CHANNEL_NAMES.get(channels, f'{channels} channels')} but the model restores "
            f"{CHANNEL_NAMES.get(in_channels, f'{in_channels} channels')}; convert the image or use a model "
            "trained for it"
        )
    restored = restore_image(net, image, **options)
    if channels == 1 and restored.shape[0] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        restored = (restored * weights).sum(0, keepdim=True)
    return join_alpha(tensor_to_array(restored, bit_depth=16 if array.dtype == np.uint16 else 8), alpha)
