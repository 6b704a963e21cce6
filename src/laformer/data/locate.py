"""Finding a dataset split on disk: which folder, which layout, or exactly what is missing and where to get it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from laformer.data.layouts import Layout, Source, resolve
from laformer.data.registry import DatasetSpec


class DatasetNotFoundError(FileNotFoundError):
    """No layout of the dataset is on disk under the roots given; the message lists the layouts and the source."""


@dataclass(frozen=True)
class Found:
    """Where a split was found: the dataset folder, the layout that matched, and its source for the split."""

    base: Path
    layout: Layout
    source: Source


def candidate_bases(spec: DatasetSpec, roots: Sequence[Path]) -> list[Path]:
    """Each root, then each root's sub-folder named like the dataset (``GoPro``, ``GOPRO_Large``...)."""
    bases: list[Path] = []
    for root in roots:
        for base in [root, *(resolve(root, alias) for alias in spec.aliases)]:
            if base is not None and base.is_dir() and base not in bases:
                bases.append(base)
    return bases


def expected_layouts(spec: DatasetSpec, split: str) -> str:
    lines = [f"    {layout.name}: {layout.describe(split)}" for layout in spec.layouts if split in layout.splits]
    return "\n".join(lines)


def _where_published(spec: DatasetSpec) -> str:
    return f"{spec.title} ({spec.reference}) is published at {spec.url}"


def locate(spec: DatasetSpec, split: str, roots: Sequence[str | Path]) -> Found:
    """The first layout holding ``split`` under the first root (or aliased sub-folder) that has one."""
    roots = [Path(r).expanduser() for r in roots if r]
    if not spec.has_split(split):
        hint = "it is a test-only benchmark, trained on another dataset" if split == "train" else "choose another data="
        raise DatasetNotFoundError(f"{spec.title} has no {split} split (it has: {', '.join(spec.splits())}); {hint}")
    existing = [r for r in roots if r.is_dir()]
    aliases = ", ".join(spec.aliases)
    if not existing:
        raise DatasetNotFoundError(
            f"data root {' or '.join(str(r) for r in roots)} does not exist. Expected {spec.title}'s {split} split "
            f"in one of these layouts, relative to the root or to a sub-folder named {aliases}:\n"
            f"{expected_layouts(spec, split)}\n{_where_published(spec)}. Set data.root=/path/to/it "
            "(or LAFORMER_DATA to the folder holding your datasets)."
        )
    bases = candidate_bases(spec, existing)
    for base in bases:
        for layout in spec.layouts:
            source = layout.splits.get(split)
            if source is not None and source.present(base):
                return Found(base, layout, source)
    seen = "; ".join(f"{b}: {', '.join(sorted(p.name for p in b.iterdir())[:10]) or 'empty'}" for b in bases)
    raise DatasetNotFoundError(
        f"no {spec.title} {split} split found in {', '.join(str(b) for b in bases)}. Expected one of these layouts, "
        f"relative to the root or to a sub-folder named {aliases}:\n{expected_layouts(spec, split)}\n"
        f"Found instead: {seen}.\n{_where_published(spec)}."
    )
