"""Matching degraded inputs to their targets by file name, through explicit rules.

A rule maps an input's stem to the target stems it may pair with, tried in order. Extensions never take
part (``x.PNG`` pairs with ``x.jpg``), so a dataset whose inputs are JPEG and targets PNG still pairs. Files
are never paired by sorted position: a file without a partner is an error that lists it.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from laformer.data.datasets import ImagePair, ImageRef
from laformer.data.io import is_image_file

MAX_LISTED = 12


class PairingError(ValueError):
    """Inputs and targets that do not pair one for one; the message lists the files."""


@dataclass(frozen=True)
class SameStem:
    """``input/x.png`` pairs with ``target/x.png`` (any image extension, any case)."""

    many_to_one: bool = False

    def candidates(self, stem: str) -> list[str]:
        return [stem]

    def is_input(self, stem: str) -> bool:
        return True

    def is_target(self, stem: str) -> bool:
        return True

    def example(self) -> tuple[str, str]:
        return "0001", "0001"


@dataclass(frozen=True)
class NameTemplate:
    """The input's stem is ``template`` filled with the target's stem: ``{}x4`` pairs ``0801x4`` with ``0801``."""

    template: str = "{}x4"
    many_to_one: bool = False

    def __post_init__(self) -> None:
        if self.template.count("{}") != 1:
            raise ValueError(f"a name template needs exactly one '{{}}', got {self.template!r}")

    def candidates(self, stem: str) -> list[str]:
        head, tail = self.template.split("{}")
        match = re.fullmatch(re.escape(head) + "(.+)" + re.escape(tail), stem)
        return [match.group(1)] if match else []

    def is_input(self, stem: str) -> bool:
        return True

    def is_target(self, stem: str) -> bool:
        return True

    def example(self) -> tuple[str, str]:
        return self.template.format("0801"), "0801"


@dataclass(frozen=True)
class PrefixBefore:
    """Many inputs share one target named by the part before the first ``sep``: ``1400_3`` -> ``1400``.

    The whole stem is tried first, so a copy of the dataset that repeats the target under each input's
    name pairs as well.
    """

    sep: str = "_"
    many_to_one: bool = True

    def candidates(self, stem: str) -> list[str]:
        return [stem, stem.split(self.sep, 1)[0]]

    def is_input(self, stem: str) -> bool:
        return True

    def is_target(self, stem: str) -> bool:
        return True

    def example(self) -> tuple[str, str]:
        return f"1400{self.sep}3", "1400"


@dataclass(frozen=True)
class Replace:
    """The target's stem is the input's, ``old`` replaced by ``new``: ``_NOISY_`` -> ``_GT_``, ``low`` -> ``normal``.

    A stem without ``old`` pairs with the same stem, so renamed copies of a dataset pair too. When inputs
    and targets share one folder, ``old`` and ``new`` also tell them apart.
    """

    old: str
    new: str
    many_to_one: bool = False

    def candidates(self, stem: str) -> list[str]:
        return [stem.replace(self.old, self.new, 1)] if self.old in stem else [stem]

    def is_input(self, stem: str) -> bool:
        return self.old in stem

    def is_target(self, stem: str) -> bool:
        return self.new in stem

    def example(self) -> tuple[str, str]:
        return f"0001{self.old}010", f"0001{self.new}010"


PairRule = SameStem | NameTemplate | PrefixBefore | Replace


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (extensions matched without regard to case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _by_stem(files: Sequence[Path], where: str) -> dict[str, Path]:
    index: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        index[path.stem].append(path)
    clashes = {stem: paths for stem, paths in index.items() if len(paths) > 1}
    if clashes:
        listed = "; ".join(" and ".join(p.name for p in paths) for paths in list(clashes.values())[:MAX_LISTED])
        raise PairingError(
            f"{where}: {len(clashes)} names appear with two extensions, so the pairing is ambiguous: {listed}. "
            "Keep one file per name."
        )
    return {stem: paths[0] for stem, paths in index.items()}


def _listing(paths: Sequence[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:MAX_LISTED])
    more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
    return shown + more


def pair_files(
    inputs: Sequence[Path],
    targets: Sequence[Path],
    rule: PairRule,
    where: str,
    name_prefix: str = "",
    strict: bool = True,
) -> list[ImagePair]:
    """Pair ``inputs`` with ``targets`` by ``rule``; unmatched files on either side raise (``strict``) or warn.

    ``where`` names the folders in messages; ``name_prefix`` (e.g. a scene folder) keeps names unique.
    """
    target_index = _by_stem(targets, where)
    input_index = _by_stem(inputs, where)
    pairs, orphans, used = [], [], defaultdict(list)
    for stem, path in sorted(input_index.items()):
        key = next((c for c in rule.candidates(stem) if c in target_index), None)
        if key is None:
            orphans.append(path)
            continue
        used[key].append(path)
        name = f"{name_prefix}{stem}"
        pairs.append(ImagePair(name, ImageRef(name, path=path), ImageRef(key, path=target_index[key])))
    shared = {key: paths for key, paths in used.items() if len(paths) > 1}
    if shared and not rule.many_to_one:
        key, paths = next(iter(shared.items()))
        raise PairingError(
            f"{where}: inputs {_listing(paths)} all pair with target {target_index[key]}; the rule "
            f"{rule} pairs one input with one target"
        )
    widows = [path for stem, path in sorted(target_index.items()) if stem not in used]
    if orphans or widows:
        example_in, example_target = rule.example()
        lines = [
            f"{where}: inputs and targets do not pair one for one (rule {rule}: '{example_in}' pairs with "
            f"'{example_target}')."
        ]
        if orphans:
            lines.append(f"{len(orphans)} input(s) without a target: {_listing(orphans)}")
        if widows:
            lines.append(f"{len(widows)} target(s) without an input: {_listing(widows)}")
        message = "\n  ".join(lines)
        if strict:
            raise PairingError(message + "\nAdd the missing files, or set data.strict_pairs=false to skip them.")
        warnings.warn(message + "\nThese files are skipped (data.strict_pairs=false).", stacklevel=2)
    if not pairs:
        raise PairingError(f"{where}: no input pairs with a target (rule {rule})")
    return pairs


def pair_folders(
    input_dir: Path, target_dir: Path, rule: PairRule, name_prefix: str = "", strict: bool = True
) -> list[ImagePair]:
    """Pair the images of two folders, or of one folder holding both (the rule tells them apart)."""
    if input_dir == target_dir:
        files = list_images(input_dir)
        inputs = [p for p in files if rule.is_input(p.stem)]
        targets = [p for p in files if rule.is_target(p.stem) and not rule.is_input(p.stem)]
        where = f"{input_dir}"
    else:
        inputs, targets = list_images(input_dir), list_images(target_dir)
        where = f"{input_dir} -> {target_dir}"
    if not inputs:
        raise PairingError(f"{where}: no input images (.png, .jpg, .jpeg, .tif, .tiff, .bmp) found")
    if not targets:
        raise PairingError(f"{where}: no target images found")
    return pair_files(inputs, targets, rule, where, name_prefix, strict)
