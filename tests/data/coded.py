"""Tiny images whose pixels say which pair they belong to and which side they are (input or target).

Red holds the pair's code (16 k + 8, so JPEG's small errors still decode), green says input (60) or target
(190), blue is flat. Batches decode back to codes, so a test sees at once if an input met the wrong target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from laformer.data.io import write_image

INPUT_LEVEL, TARGET_LEVEL = 60, 190
H, W = 24, 32


def coded(code: int, target: bool, size: tuple[int, int] = (H, W)) -> torch.Tensor:
    """A 3 x H x W image on the 8-bit grid carrying ``code`` (0..14) and its side."""
    h, w = size
    levels = (16 * code + 8, TARGET_LEVEL if target else INPUT_LEVEL, 128)
    return torch.stack([torch.full((h, w), float(v)) for v in levels]) / 255


def coded_array(code: int, target: bool, size: tuple[int, int] = (H, W)) -> np.ndarray:
    """The same as an H x W x 3 uint8 array (for .mat blocks)."""
    return (coded(code, target, size) * 255).round().byte().permute(1, 2, 0).numpy()


def write_coded(path: Path, code: int, target: bool, size: tuple[int, int] = (H, W), bit_depth: int = 8) -> None:
    write_image(path, coded(code, target, size), bit_depth=bit_depth)


def decode(image: torch.Tensor) -> tuple[int, bool]:
    """(code, is_target) of a C x H x W image in [0, 1] (its first three channels)."""
    red, green = image[0].mean().item() * 255, image[1].mean().item() * 255
    return round((red - 8) / 16), green > (INPUT_LEVEL + TARGET_LEVEL) / 2


def decode_batch(batch: dict) -> list[tuple[int, int]]:
    """(input code, target code) of each sample; asserts the sides are right."""
    codes = []
    for inp, tgt in zip(batch["input"], batch["target"]):
        (ci, side_i), (ct, side_t) = decode(inp), decode(tgt)
        assert not side_i and side_t, "input and target swapped"
        codes.append((ci, ct))
    return codes
