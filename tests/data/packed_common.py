"""Tiny real datasets on disk and their packed stores, shared by the packed-store tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from laformer.data.io import write_array


def write_gopro(root: Path, scenes: int = 2, frames: int = 3, size: tuple[int, int] = (40, 56), seed: int = 0) -> Path:
    """GoPro's official layout (``GOPRO_Large/{train,test}/<scene>/{blur,sharp}``) of random 8-bit PNG pairs."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for s in range(scenes):
            for f in range(frames):
                sharp = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                blur = np.clip(sharp.astype(int) + rng.integers(-20, 21, sharp.shape), 0, 255).astype(np.uint8)
                folder = root / "GOPRO_Large" / split / f"GOPR{s:04d}_00"
                write_array(folder / "blur" / f"{f:06d}.png", blur)
                write_array(folder / "sharp" / f"{f:06d}.png", sharp)
    return root


def gopro_overrides(root: Path, *extra: str) -> list[str]:
    return ["data=gopro", f"data.root={root}", "data.test_sets=[gopro]", "data.patch_size=16", *extra]
