"""A dataset's report for ``laformer-data verify``: what was found where, or exactly what is missing."""

from __future__ import annotations

from laformer.data.benchmark import BenchmarkDataModule
from laformer.data.checks import DataCheckError, SplitStats, check_images, check_pairs
from laformer.data.io import ImageReadError
from laformer.data.layouts import LayoutError
from laformer.data.locate import DatasetNotFoundError
from laformer.data.mat_readers import MatFileError
from laformer.data.pairing import PairingError
from laformer.data.registry import REGISTRY, DatasetSpec, get_spec
from laformer.data.store import StoreError, human_bytes
from laformer.metrics.protocol import EvalProtocol

DATA_ERRORS = (DatasetNotFoundError, LayoutError, PairingError, DataCheckError, MatFileError, ImageReadError)
INDENT = " " * 18


def describe_protocol(p: EvalProtocol) -> str:
    size = "network pads" if p.size_policy == "pad" else f"{p.size_policy} to x{p.size_multiple}"
    parts = [
        "Y (BT.601)" if p.color == "y" else "RGB",
        f"border {p.crop_border}",
        f"SSIM {p.ssim}",
        "8-bit" if p.quantize else "float",
        size,
    ]
    if p.align != "none":
        parts.append(f"align {p.align}")
    return ", ".join(parts)


def describe_val(spec: DatasetSpec) -> str:
    val = spec.val
    source = get_spec(val.benchmark).title if val.benchmark else spec.title
    text = f"{source} {val.split} split"
    return f"centre {val.center_crop}x{val.center_crop} of each image of the {text}" if val.center_crop else text


def _sample_depths(module: BenchmarkDataModule, benchmark: str, split: str) -> SplitStats:
    """Bit depth and channels from decoding the first image only (``--quick``)."""
    _, content = module.content(benchmark, split)
    if content.pairs:
        return check_pairs(content.pairs[:1], "first pair", "full")
    refs = content.clean or [ref for _, ref in content.crops]
    return check_images(refs[:1], "first image", "full")


def split_line(module: BenchmarkDataModule, benchmark: str, split: str, label: str, full: bool) -> tuple[bool, str]:
    """One split's line of the report; False when it is missing or broken."""
    try:
        found, content = module.content(benchmark, split)
        stats = module.check_split(benchmark, split, "full" if full else "header")
        if not full:
            sample = _sample_depths(module, benchmark, split)
            stats.depths, stats.channels = sample.depths, sample.channels
    except DATA_ERRORS as error:
        message = str(error).replace("\n", "\n" + INDENT)
        return False, f"  {label:<15} MISSING or INVALID: {message}"
    kind = "pairs" if content.pairs else ("clean images" if content.clean else "noisy crops (no ground truth)")
    return True, (
        f"  {label:<15} {len(content)} {kind}, {stats.summary()}\n"
        f"{INDENT}layout '{found.layout.name}': {found.source.describe()}, in {found.base}"
    )


def store_line(module: BenchmarkDataModule, full: bool) -> tuple[bool, str]:
    """The packed store's line (``data.store`` set): counts, sizes and, with ``full``, every chunk's checksum."""
    label = "train (packed)"
    try:
        manifest = module.checked_store(checksums=full)
    except StoreError as error:
        return False, f"  {label:<15} INVALID: {error}"
    if manifest is None:
        return True, f"  {label:<15} {module.store_path}: streamed by LitData (a URL: not checked from here)"
    checked = "chunk sizes and SHA-256 checksums match" if full else "chunk sizes match (--quick: no checksums)"
    return True, (
        f"  {label:<15} {manifest['pairs']} pairs in {len(manifest['chunks'])} chunks, {manifest['dtype']}, "
        f"smallest {manifest['min_height']}x{manifest['min_width']}, {human_bytes(manifest['store_bytes'])}; "
        f"{checked}\n{INDENT}packed from {manifest['source']} ({manifest['layout']} layout), in {module.store_path}"
    )


def verify(module: BenchmarkDataModule, full: bool = True) -> tuple[bool, str]:
    """(everything found and valid, the report). ``full`` decodes every image; else headers only."""
    spec = module.spec
    lines = [
        f"{spec.title}: {spec.task} (data={spec.name})",
        f"  root            {module.root}",
        f"  published       {spec.url}",
        f"  reference       {spec.reference}",
    ]
    ok = True
    for split in spec.splits():
        if split == "train" and module.store != "files":
            good, line = store_line(module, full)  # training reads the store, not the files
        else:
            good, line = split_line(module, spec.name, split, split, full)
        ok &= good
        lines.append(line)
    if spec.kind != "predict" and spec.has_split("train"):
        lines.append(f"  {'validation':<15} {describe_val(spec)}")
    for benchmark in module.test_sets:
        if benchmark == spec.name:
            continue
        good, line = split_line(module, benchmark, "test", f"test {get_spec(benchmark).title}", full)
        ok &= good
        lines.append(line)
    if spec.kind == "clean" or any(get_spec(b).kind == "clean" for b in module.test_sets):
        sigmas = ", ".join(f"{s:g}" for s in module.test_sigmas)
        lines.append(f"  {'synthetic':<15} Gaussian noise sigma {sigmas} (test), seeded per image from {module.seed}")
    for set_name, protocol in module.protocols.items():
        lines.append(f"  {'scored':<15} {set_name}: {describe_protocol(protocol)}")
    if spec.notes:
        lines.append(f"  {'notes':<15} {spec.notes}")
    if ok:
        lines.append("OK: every split found and readable.")
    else:
        lines.append(
            "PROBLEMS: see the lines marked MISSING or INVALID. Test sets you do not have can be left out with "
            f"data.test_sets=[{spec.name}]; one kept elsewhere is found with data.test_roots.NAME=/path."
        )
    return ok, "\n".join(lines)


def registry_table() -> str:
    """One line per registered dataset: name, task, splits, layouts, scoring."""
    rows = [f"{'data=':<17}{'task':<28}{'splits':<16}scored; layouts"]
    for spec in REGISTRY.values():
        layouts = ", ".join(dict.fromkeys(layout.name for layout in spec.layouts))
        splits = "/".join(spec.splits())
        rows.append(f"{spec.name:<17}{spec.task:<28}{splits:<16}{describe_protocol(spec.protocol)}; {layouts}")
    return "\n".join(rows)
