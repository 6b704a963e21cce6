"""Tiled restoration for images that do not fit in memory in one pass.

The image is cut into overlapping tiles; each tile's restoration is weighted by a smooth window and the
weighted sum is divided by the summed weights. The window ramps up from a small positive value over the
overlap, so neighbouring tiles cross-fade (no seam) and pixels seen by a single tile (the image's own
edges) keep their tile's output exactly. Tile starts sit on the network's size multiple, so a tile
sees the same pixel grid as the whole image would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from laformer.models.registry import NetworkInfo

DEFAULT_OVERLAP = 32  # pixels neighbouring tiles share, where the tile is large enough (at most a quarter of it)


def default_overlap(tile: int) -> int:
    """The overlap used when none is given: :data:`DEFAULT_OVERLAP`, at most a quarter of the tile."""
    return min(DEFAULT_OVERLAP, tile // 4)


def check_tiles(info: NetworkInfo, tile: int | None, overlap: int) -> None:
    """Refuse a tile side the network cannot take, naming its multiple: tiles start on the network's size
    multiple (``NetworkInfo.size_multiple``), so the side must be one, and leave room beyond the overlap.
    ``tile`` None (one pass) is always fine. Every tiled path (restore, the app, tiled scoring) asks here."""
    if tile is None:
        return
    multiple = info.size_multiple
    if tile <= 0 or tile % multiple:
        raise ValueError(f"--tile must be a positive multiple of {multiple} for this {info.family} network, got {tile}")
    if not 0 <= overlap <= tile - multiple:
        raise ValueError(f"--tile-overlap must be between 0 and {tile - multiple} for --tile {tile}, got {overlap}")


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets along one axis: the first at 0, the last ending at ``length``, the rest spread evenly.

    Starts are multiples of ``multiple``; consecutive tiles overlap by at least ``overlap``. The last tile
    ends at ``length`` and so is up to ``multiple - 1`` pixels longer than ``tile``.
    """
    if tile <= 0 or tile % multiple:
        raise ValueError(f"tile size {tile} must be a positive multiple of {multiple}")
    if not 0 <= overlap <= tile - multiple:
        raise ValueError(
            f"tile overlap {overlap} must be >= 0 and at most the tile size minus {multiple} ({tile - multiple})"
        )
    if length <= tile:
        return [0]
    stride = (tile - overlap) // multiple * multiple
    count = math.ceil((length - tile) / stride) + 1
    span = length - tile
    starts = [round(i * span / (count - 1)) // multiple * multiple for i in range(count)]
    return sorted(set(starts))


def tile_ends(starts: list[int], length: int, tile: int) -> list[int]:
    return [min(s + tile, length) for s in starts[:-1]] + [length]


def ramp_window(size: int, ramp: int, left: bool, right: bool) -> Tensor:
    """1-D weights: 1 in the middle, a raised-cosine ramp over ``ramp`` pixels on each side that has a
    neighbouring tile. The ramp starts above 0, so every pixel keeps some weight."""
    weight = torch.ones(size)
    ramp = min(ramp, size // 2)
    if ramp > 0:
        rise = torch.sin(0.5 * math.pi * torch.arange(1, ramp + 1) / (ramp + 1)) ** 2
        if left:
            weight[:ramp] = rise
        if right:
            weight[size - ramp :] = rise.flip(0)
    return weight


def iter_tiles(
    height: int, width: int, tile: int, overlap: int, multiple: int
) -> Iterator[tuple[slice, slice, Tensor]]:
    """``(rows, cols, window)`` for every tile, the window shaped (h, w)."""
    ys = tile_starts(height, tile, overlap, multiple)
    xs = tile_starts(width, tile, overlap, multiple)
    y_ends, x_ends = tile_ends(ys, height, tile), tile_ends(xs, width, tile)
    for i, (y0, y1) in enumerate(zip(ys, y_ends)):
        wy = ramp_window(y1 - y0, overlap, left=i > 0, right=i < len(ys) - 1)
        for j, (x0, x1) in enumerate(zip(xs, x_ends)):
            wx = ramp_window(x1 - x0, overlap, left=j > 0, right=j < len(xs) - 1)
            yield slice(y0, y1), slice(x0, x1), wy[:, None] * wx[None, :]


def tile_count(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> int:
    return len(tile_starts(height, tile, overlap, multiple)) * len(tile_starts(width, tile, overlap, multiple))


def tiled_forward(
    restore: Callable[[Tensor], Tensor],
    x: Tensor,
    tile: int,
    overlap: int = 32,
    multiple: int = 8,
    tile_batch: int = 1,
    out_channels: int | None = None,
) -> Tensor:
    """``restore`` applied tile by tile to ``x`` (B, C, H, W), blended into one (B, C_out, H, W) image.

    Args:
        restore: the network (or a wrapper such as the self-ensemble); called on (B * n, C, h, w) tiles.
        tile: tile side in pixels, a multiple of ``multiple``; an image no larger than one tile goes through whole.
        overlap: pixels shared by neighbouring tiles, over which they cross-fade.
        multiple: the network's size multiple; tile starts are aligned to it.
        tile_batch: tiles of equal shape restored together (faster on a GPU, more memory).
        out_channels: channels of ``restore``'s output; default the input's.

    The accumulators are (at least) float32 on ``x``'s device; only one batch of tiles is in flight at a time.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if h <= tile and w <= tile:
        return restore(x)
    out_channels = out_channels or c
    dtype = torch.promote_types(x.dtype, torch.float32)  # float64 stays float64; half precisions go up
    out = torch.zeros(b, out_channels, h, w, dtype=dtype, device=x.device)
    norm = torch.zeros(1, 1, h, w, dtype=dtype, device=x.device)

    pending: list[tuple[slice, slice, Tensor]] = []

    def flush() -> None:
        crops = torch.cat([x[..., rows, cols] for rows, cols, _ in pending])
        restored = restore(crops).to(dtype)
        for k, (rows, cols, window) in enumerate(pending):
            window = window.to(device=x.device, dtype=dtype)
            out[..., rows, cols] += restored[k * b : (k + 1) * b] * window
            norm[..., rows, cols] += window
        pending.clear()

    for rows, cols, window in iter_tiles(h, w, tile, overlap, multiple):
        same_shape = not pending or window.shape == pending[0][2].shape
        if len(pending) >= tile_batch or not same_shape:
            flush()
        pending.append((rows, cols, window))
    flush()
    return (out / norm).to(x.dtype)
