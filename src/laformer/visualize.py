"""Pictures people look at: before / restored / target comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Comparison:
    """One image's degraded input, restoration and target (C x H x W in [0, 1]) and their PSNRs."""

    name: str
    input: Tensor
    restored: Tensor
    target: Tensor
    input_psnr: float
    restored_psnr: float


def _fit(image: Tensor, max_side: int) -> Tensor:
    image = image.detach().float().cpu().clamp(0, 1)
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    scale = max_side / max(image.shape[-2:])
    if scale < 1:
        size = (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
        image = F.interpolate(image.unsqueeze(0), size=size, mode="area").squeeze(0)
    return image


def comparison_grid(rows: Sequence[Comparison], max_side: int = 384, gap: int = 4) -> Tensor:
    """A 3 x H x W grid, one row per image: input | restored | target, on a white background."""
    tiles = [[_fit(t, max_side) for t in (r.input, r.restored, r.target)] for r in rows]
    height = sum(row[0].shape[-2] for row in tiles) + gap * (len(tiles) + 1)
    width = max(sum(t.shape[-1] for t in row) for row in tiles) + gap * 4
    grid = torch.ones(3, height, width)
    y = gap
    for row in tiles:
        x = gap
        for tile in row:
            h, w = tile.shape[-2:]
            grid[:, y : y + h, x : x + w] = tile
            x += w + gap
        y += row[0].shape[-2] + gap
    return grid


def save_comparison_figure(rows: Sequence[Comparison], path: str | Path, title: str = "", max_side: int = 512) -> Path:
    """A captioned PNG (matplotlib) of the comparisons, with each image's PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 4 * len(rows)), squeeze=False)
    for ax_row, r in zip(axes, rows):
        captions = (
            f"{r.name}: input ({r.input_psnr:.2f} dB)",
            f"restored ({r.restored_psnr:.2f} dB)",
            "target",
        )
        for ax, image, caption in zip(ax_row, (r.input, r.restored, r.target), captions):
            ax.imshow(_fit(image, max_side).permute(1, 2, 0).numpy())
            ax.set_title(caption, fontsize=11)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
