"""Where one split of a dataset lies on disk, in each layout people keep it in.

A source describes paths relative to a dataset folder; ``{scene}`` stands for every sub-folder (GoPro and
RealBlur keep one folder per scene). Folder names match without regard to case (``Low`` or ``low``). Each
source can say whether it is present (``present``), describe itself for error messages (``describe``) and
list its items (``collect``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from laformer.data.datasets import ImagePair, ImageRef, StackedRef
from laformer.data.io import is_image_file
from laformer.data.mat_readers import DndBox, dnd_crops, sidd_block_pairs
from laformer.data.pairing import PairingError, PairRule, SameStem, list_images, pair_folders

SCENE = "{scene}"


class LayoutError(ValueError):
    """Part of a layout is on disk but another part it needs is not; the message names both."""


def child(folder: Path, name: str) -> Path | None:
    """``folder/name``, matching ``name`` without regard to case when there is no exact match."""
    exact = folder / name
    if exact.exists():
        return exact
    if not folder.is_dir():
        return None
    matches = sorted(p for p in folder.iterdir() if p.name.lower() == name.lower())
    return matches[0] if matches else None


def resolve(base: Path, relative: str) -> Path | None:
    """A path under ``base`` whose components match ``relative`` without regard to case, or None."""
    path = base
    for part in Path(relative).parts:
        found = child(path, part)
        if found is None:
            return None
        path = found
    return path


def expand(base: Path, pattern: str) -> list[tuple[Path, str]]:
    """Folders matching ``pattern``, with the scene each ``{scene}`` component took ("" without one)."""
    found = [(base, "")]
    for part in Path(pattern).parts:
        step = []
        for path, scene in found:
            if part == SCENE:
                if path.is_dir():
                    step += [(p, p.name) for p in sorted(path.iterdir()) if p.is_dir()]
            elif (match := child(path, part)) is not None:
                step.append((match, scene))
        found = step
    return [(path, scene) for path, scene in found if path.is_dir()]


@dataclass
class SplitContent:
    """What a split holds: stored pairs, clean images to degrade, or (DND) noisy crops without targets."""

    pairs: list[ImagePair] = field(default_factory=list)
    clean: list[ImageRef] = field(default_factory=list)
    crops: list[tuple[DndBox, ImageRef]] = field(default_factory=list)
    location: Path | None = None

    def __len__(self) -> int:
        return len(self.pairs) or len(self.clean) or len(self.crops)


@dataclass(frozen=True)
class Folders:
    """Inputs in one folder, targets in another (or the same, when the rule tells them apart).

    ``views``: the dual-pixel left and right views (DPDD), same names as the input, stacked as a
    6-channel input when the data module asks for them.
    """

    input: str
    target: str
    rule: PairRule = field(default_factory=SameStem)
    views: tuple[str, str] | None = None

    def present(self, base: Path) -> bool:
        return bool(expand(base, self.input))

    def describe(self) -> str:
        stem_in, stem_tgt = self.rule.example()
        inp, tgt = self.input.replace(SCENE, "<scene>"), self.target.replace(SCENE, "<scene>")
        text = (
            f"{inp}/ holding {stem_in}.png and {stem_tgt}.png"
            if inp == tgt
            else f"{inp}/{stem_in}.png + {tgt}/{stem_tgt}.png"
        )
        return text + (f" (dual-pixel views {' + '.join(self.views)})" if self.views else "")

    def collect(self, base: Path, strict: bool = True, dual_pixel: bool = False) -> SplitContent:
        pairs = []
        for input_dir, scene in expand(base, self.input):
            target_rel = self.target.replace(SCENE, scene)
            target_dir = resolve(base, target_rel)
            if target_dir is None or not target_dir.is_dir():
                raise LayoutError(
                    f"found the input folder {input_dir} but not its target folder {base / target_rel}; "
                    f"this layout keeps pairs as {self.describe()}"
                )
            prefix = f"{scene}/" if scene else ""
            pairs += pair_folders(input_dir, target_dir, self.rule, prefix, strict)
        if dual_pixel:
            pairs = self._stack_views(base, pairs)
        return SplitContent(pairs=pairs, location=base / self.input)

    def _stack_views(self, base: Path, pairs: list[ImagePair]) -> list[ImagePair]:
        if self.views is None:
            raise LayoutError(f"this layout ({self.describe()}) has no dual-pixel views; set data.dual_pixel=false")
        folders = []
        for view in self.views:
            folder = resolve(base, view)
            if folder is None:
                raise LayoutError(f"dual-pixel view folder {base / view} is missing (data.dual_pixel=true needs it)")
            folders.append({p.stem: p for p in list_images(folder)})
        stacked = []
        for pair in pairs:
            stem = pair.input.path.stem
            missing = [str(base / v / f"{stem}.png") for v, index in zip(self.views, folders) if stem not in index]
            if missing:
                raise PairingError(f"input {pair.input} has no dual-pixel view {', '.join(missing)}")
            parts = tuple(ImageRef(pair.name, path=index[stem]) for index in folders)
            stacked.append(ImagePair(pair.name, StackedRef(pair.name, parts=parts), pair.target))
        return stacked


@dataclass(frozen=True)
class ListFile:
    """Pairs listed in a text file, one pair of paths a line (RealBlur's ``datalist``).

    ``input_marker`` / ``target_marker`` tell which path of a line is which, whatever their order.
    """

    files: tuple[str, ...]
    input_marker: str = "/blur/"
    target_marker: str = "/gt/"

    def _list(self, base: Path) -> Path | None:
        return next((p for f in self.files if (p := resolve(base, f)) is not None and p.is_file()), None)

    def present(self, base: Path) -> bool:
        return self._list(base) is not None

    def describe(self) -> str:
        return f"{' or '.join(self.files)} (lines '<.../gt/gt_K.png> <.../blur/blur_K.png>')"

    def collect(self, base: Path, strict: bool = True, dual_pixel: bool = False) -> SplitContent:
        list_file = self._list(base)
        lines = [line.split() for line in list_file.read_text().splitlines() if line.strip()]
        pairs, missing = [], []
        roots = [base, list_file.parent, list_file.parent.parent]
        for number, parts in enumerate(lines, 1):
            inp = next((p for p in parts if self.input_marker in "/" + p), None)
            tgt = next((p for p in parts if self.target_marker in "/" + p), None)
            if inp is None or tgt is None:
                raise LayoutError(
                    f"{list_file}:{number}: expected an input path containing {self.input_marker!r} and a target "
                    f"path containing {self.target_marker!r}, got {' '.join(parts)!r}"
                )
            root = next((r for r in roots if (r / inp).is_file()), base)
            inp_path, tgt_path = root / inp, root / tgt
            for path in (inp_path, tgt_path):
                if not path.is_file():
                    missing.append(path)
            if inp_path.is_file() and tgt_path.is_file():
                name = f"{inp_path.parent.parent.name}/{inp_path.stem}"
                pairs.append(ImagePair(name, ImageRef(name, path=inp_path), ImageRef(name, path=tgt_path)))
        if missing and strict:
            shown = ", ".join(str(p) for p in missing[:12])
            raise PairingError(
                f"{list_file} lists {len(missing)} file(s) that are not on disk: {shown}; restore them or set "
                "data.strict_pairs=false to skip those pairs"
            )
        if not pairs:
            raise PairingError(f"{list_file}: none of its pairs is on disk")
        return SplitContent(pairs=pairs, location=list_file)


@dataclass(frozen=True)
class MatBlocks:
    """Noisy and ground-truth blocks in two ``.mat`` files (SIDD validation)."""

    noisy: str
    gt: str

    def present(self, base: Path) -> bool:
        return resolve(base, self.noisy) is not None

    def describe(self) -> str:
        return f"{self.noisy} + {self.gt}"

    def collect(self, base: Path, strict: bool = True, dual_pixel: bool = False) -> SplitContent:
        noisy, gt = resolve(base, self.noisy), resolve(base, self.gt)
        if gt is None:
            raise LayoutError(f"found {noisy} but not its ground truth {base / self.gt}")
        return SplitContent(pairs=sidd_block_pairs(noisy, gt), location=noisy)


@dataclass(frozen=True)
class CleanFolders:
    """Ground-truth images only, in one or more flat folders (all required); inputs are synthesised."""

    folders: tuple[str, ...]

    def present(self, base: Path) -> bool:
        folder = resolve(base, self.folders[0])
        return folder is not None and folder.is_dir() and any(is_image_file(p) for p in folder.iterdir())

    def describe(self) -> str:
        return " + ".join(f"{f}/*.png|jpg|tif|bmp" for f in self.folders)

    def collect(self, base: Path, strict: bool = True, dual_pixel: bool = False) -> SplitContent:
        refs = []
        for folder in self.folders:
            path = resolve(base, folder)
            if path is None or not path.is_dir():
                raise LayoutError(f"image folder {base / folder} is missing; this layout needs {self.describe()}")
            images = list_images(path)
            if not images:
                raise LayoutError(f"{path} holds no images (.png, .jpg, .jpeg, .tif, .tiff, .bmp)")
            prefix = f"{Path(folder).name}-" if len(self.folders) > 1 else ""
            refs += [ImageRef(f"{prefix}{p.stem}", path=p) for p in images]
        return SplitContent(clean=refs, location=base / self.folders[0])


@dataclass(frozen=True)
class DndFolder:
    """DND's ``info.mat`` and ``images_srgb/NNNN.mat``: noisy images only."""

    folder: str = "."

    def present(self, base: Path) -> bool:
        folder = resolve(base, self.folder) if self.folder != "." else base
        return folder is not None and resolve(folder, "info.mat") is not None

    def describe(self) -> str:
        prefix = "" if self.folder == "." else f"{self.folder}/"
        return f"{prefix}info.mat + {prefix}images_srgb/0001.mat ..."

    def collect(self, base: Path, strict: bool = True, dual_pixel: bool = False) -> SplitContent:
        folder = resolve(base, self.folder) if self.folder != "." else base
        if resolve(folder, "images_srgb") is None:
            raise LayoutError(f"found {folder / 'info.mat'} but not the noisy images in {folder / 'images_srgb'}")
        return SplitContent(crops=dnd_crops(folder), location=folder)


Source = Folders | ListFile | MatBlocks | CleanFolders | DndFolder


@dataclass(frozen=True)
class Layout:
    """One way a dataset is kept on disk: a source per split (``train``, ``test``)."""

    name: str
    splits: dict[str, Source]

    def describe(self, split: str) -> str:
        return self.splits[split].describe()


def layouts_with(layouts: Sequence[Layout], split: str) -> list[Layout]:
    return [layout for layout in layouts if split in layout.splits]
