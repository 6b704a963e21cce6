"""Image sizes as the studies' command lines write them.

Everywhere in the suite a size is **(height, width)**, the order of a tensor's last two dimensions. On the command
line a rectangle is written ``WIDTHxHEIGHT`` (``3840x2160``), as screens are named; :func:`parse_size` turns that
around once, and :func:`size_label` writes it back, so no caller has to remember which order a helper returns.
"""

from __future__ import annotations


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"3840x2160"`` (width x height) -> (2160, 3840): always (height, width)."""
    width, sep, height = str(text).strip().lower().partition("x")
    try:
        width_px = int(width)
        height_px = int(height) if sep else width_px
    except ValueError:
        raise ValueError(f"size {text!r}: write a side (512) or WIDTHxHEIGHT (3840x2160)") from None
    if width_px < 1 or height_px < 1:
        raise ValueError(f"size {text!r}: sides must be positive")
    return height_px, width_px


def size_label(height: int, width: int) -> str:
    """(height, width) as the command line writes it: ``512`` for a square, else ``WIDTHxHEIGHT``."""
    return str(width) if width == height else f"{width}x{height}"
