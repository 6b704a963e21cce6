"""Comparison grids: input | anchors... | restored | target, one row per image."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest
import torch

from laformer.visualize import Comparison, comparison_grid, save_comparison_figure


def _row(name: str, value: float, anchors: int, size: int = 20) -> Comparison:
    def image(v: float) -> torch.Tensor:
        return torch.full((3, size, size), v)

    extra = [(f"method {i}", image(0.1 * (i + 1)), 25.0 + i) for i in range(anchors)]
    return Comparison(name, image(value), image(0.9), image(1.0), 20.0, 28.0, anchors=extra)


def test_each_anchor_gets_a_column_between_input_and_restored() -> None:
    plain = comparison_grid([_row("a", 0.5, 0)], gap=4)
    with_two = comparison_grid([_row("a", 0.5, 2)], gap=4)
    assert plain.shape == (3, 20 + 2 * 4, 3 * 20 + 4 * 4)
    assert with_two.shape == (3, 20 + 2 * 4, 5 * 20 + 6 * 4)
    # Column order: input (0.5), anchor 0 (0.1), anchor 1 (0.2), restored (0.9), target (1.0).
    centres = [with_two[0, 14, 4 + 10 + k * 24].item() for k in range(5)]
    assert centres == pytest.approx([0.5, 0.1, 0.2, 0.9, 1.0])
    captions = [caption for _, caption in _row("cat", 0.5, 1).panels()]
    assert captions == ["cat: input (20.00 dB)", "method 0 (25.00 dB)", "restored (28.00 dB)", "target"]


def test_the_saved_figure_has_a_column_per_panel(tmp_path: Path) -> None:
    three = save_comparison_figure([_row("a", 0.5, 0)], tmp_path / "three.png")
    five = save_comparison_figure([_row("a", 0.5, 2), _row("b", 0.4, 0)], tmp_path / "five.png")
    width3 = matplotlib.image.imread(three).shape[1]
    width5 = matplotlib.image.imread(five).shape[1]
    assert width5 / width3 == 5 / 3
