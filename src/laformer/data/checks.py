"""Checks run on a split before training or testing starts, so bad files fail in seconds, not hours in.

``header`` mode reads only image headers (sizes; unreadable files); ``full`` decodes every image (also finds
truncated files) and records bit depth and channels for the verify report; ``none`` skips the checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from laformer.data.datasets import ImagePair, ImageRef, StackedRef, too_small_message
from laformer.data.io import ImageReadError, image_size, read_array

CHECK_MODES = ("header", "full", "none")
MAX_LISTED = 12


class DataCheckError(ValueError):
    """Images that cannot be used as they are; the message lists each file and what was expected."""


@dataclass
class SplitStats:
    """What a check saw: image sizes (h, w), bit depths and channel counts."""

    sizes: list[tuple[int, int]] = field(default_factory=list)
    depths: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        if not self.sizes:
            return "no images"
        hs, ws = [s[0] for s in self.sizes], [s[1] for s in self.sizes]
        size = (
            f"{min(hs)}x{min(ws)}"
            if (min(hs), min(ws)) == (max(hs), max(ws))
            else (f"{min(hs)}..{max(hs)} x {min(ws)}..{max(ws)}")
        )
        text = f"sizes {size} (h x w)"
        if self.depths:
            text += ", " + "/".join(f"{d}-bit" for d in sorted(self.depths))
        if self.channels:
            names = {1: "grey", 3: "RGB", 4: "RGBA", 6: "dual-pixel"}
            text += ", " + "/".join(names.get(c, f"{c}-channel") for c in sorted(self.channels))
        return text


def _inspect(ref: ImageRef, mode: str, stats: SplitStats) -> tuple[int, int]:
    """(h, w) of one image, recording depth and channels when decoded."""
    if isinstance(ref, StackedRef):
        sizes = [_inspect(part, mode, stats) for part in ref.parts]
        if len(set(sizes)) > 1:
            raise DataCheckError(f"the views of {ref} differ in size: {sizes}")
        return sizes[0]
    if ref.path is None:
        array = ref.array
    elif mode == "full":
        array = read_array(ref.path)
    else:
        return image_size(ref.path)
    stats.depths[16 if array.dtype.itemsize == 2 else (32 if array.dtype.itemsize == 4 else 8)] += 1
    stats.channels[1 if array.ndim == 2 else array.shape[2]] += 1
    return int(array.shape[0]), int(array.shape[1])


def _raise(problems: list[str], what: str) -> None:
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise DataCheckError(f"{len(problems)} problem(s) in {what}:\n  {listed}{more}")


def check_pairs(
    pairs: Sequence[ImagePair],
    what: str,
    mode: str = "header",
    min_side: int | None = None,
    size_mismatch: str = "error",
) -> SplitStats:
    """Every pair readable, input and target the same size (or the target larger, when it is centre-cropped),
    and both sides at least ``min_side`` (the training patch)."""
    if mode not in CHECK_MODES:
        raise ValueError(f"check must be one of {CHECK_MODES}, got {mode!r}")
    stats = SplitStats()
    if mode == "none":
        return stats
    problems = []
    for pair in pairs:
        try:
            in_size, tgt_size = _inspect(pair.input, mode, stats), _inspect(pair.target, mode, stats)
        except (ImageReadError, FileNotFoundError, DataCheckError) as error:
            problems.append(str(error))
            continue
        stats.sizes.append(in_size)
        larger = tgt_size[0] >= in_size[0] and tgt_size[1] >= in_size[1]
        if in_size != tgt_size and not (size_mismatch == "center_crop_target" and larger):
            problems.append(
                f"input {pair.input} is {in_size[0]}x{in_size[1]} but its target {pair.target} is "
                f"{tgt_size[0]}x{tgt_size[1]} (h x w); a pair must have the same size"
            )
        elif min_side and min(in_size) < min_side:
            problems.append(too_small_message(pair.input, *in_size, min_side))
    _raise(problems, what)
    return stats


def check_images(refs: Sequence[ImageRef], what: str, mode: str = "header", min_side: int | None = None) -> SplitStats:
    """Ground-truth-only images: readable and, for training, at least ``min_side`` on each side."""
    if mode not in CHECK_MODES:
        raise ValueError(f"check must be one of {CHECK_MODES}, got {mode!r}")
    stats = SplitStats()
    if mode == "none":
        return stats
    problems = []
    for ref in refs:
        try:
            size = _inspect(ref, mode, stats)
        except (ImageReadError, FileNotFoundError) as error:
            problems.append(str(error))
            continue
        stats.sizes.append(size)
        if min_side and min(size) < min_side:
            problems.append(too_small_message(ref, *size, min_side))
    _raise(problems, what)
    return stats
