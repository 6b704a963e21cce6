"""Pictures people look at: before / restored / target comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Comparison:
    """One image's degraded input, restoration and target (C x H x W in [0, 1]) and their PSNRs.

    ``anchors``: other restorations shown between input and restored, as (label, image, PSNR): the classical
    baselines (NL-means, BM3D) on the same input.
    """

    name: str
    input: Tensor
    restored: Tensor
    target: Tensor
    input_psnr: float
    restored_psnr: float
    anchors: list[tuple[str, Tensor, float]] = field(default_factory=list)

    def panels(self) -> list[tuple[Tensor, str]]:
        """(image, caption) of each column: input | anchors... | restored | target."""
        return [
            (self.input, f"{self.name}: input ({self.input_psnr:.2f} dB)"),
            *((image, f"{label} ({psnr:.2f} dB)") for label, image, psnr in self.anchors),
            (self.restored, f"restored ({self.restored_psnr:.2f} dB)"),
            (self.target, "target"),
        ]


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
    """A 3 x H x W grid, one row per image: input | anchors... | restored | target, on a white background."""
    tiles = [[_fit(image, max_side) for image, _ in r.panels()] for r in rows]
    height = sum(row[0].shape[-2] for row in tiles) + gap * (len(tiles) + 1)
    width = max(sum(t.shape[-1] for t in row) + gap * (len(row) + 1) for row in tiles)
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
    """A captioned PNG (matplotlib) of the comparisons, one column per panel, with each image's PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = max(len(r.panels()) for r in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(4 * columns, 4 * len(rows)), squeeze=False)
    for ax_row, r in zip(axes, rows):
        for ax in ax_row:
            ax.axis("off")
        for ax, (image, caption) in zip(ax_row, r.panels()):
            ax.imshow(_fit(image, max_side).permute(1, 2, 0).numpy())
            ax.set_title(caption, fontsize=11)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
