"""``laformer-restore INPUT [INPUT ...] -o OUTPUT_DIR --ckpt CHECKPOINT``: restore photos with a trained model.

Inputs are image files or folders of them (PNG, JPEG, TIFF, BMP; 8 or 16 bit; grayscale or RGB as the
model was trained). Each output has the input's name, size, channels and bit depth. Whole images go through
in one pass unless ``--tile`` asks for overlapping tiles. An image that fails is reported by name and the
others still finish; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from laformer.cli.errors import exit_status
from laformer.data.io import DEFAULT_MAX_PIXELS, ImageReadError, is_image_file, megapixels, read_array, write_array
from laformer.inference.backends import (
    BACKENDS,
    COMPILE_MODES,
    DEFAULT_SHAPES,
    SHAPE_MODES,
    check_backend,
    inference_network,
)
from laformer.inference.checkpoint import load_network
from laformer.inference.restore import (
    DEVICES,
    PRECISIONS,
    check_precision,
    is_out_of_memory,
    pick_device,
    prepare_network,
    restore_array,
)
from laformer.inference.tiling import DEFAULT_OVERLAP, check_tiles, default_overlap
from laformer.models.registry import network_info


@dataclass
class Outcome:
    restored: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def collect_inputs(inputs: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files from the arguments (folders: their images, not recursive) and the arguments that are none."""
    files, problems = [], []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
            if not found:
                problems.append((path, "folder holds no PNG, JPEG, TIFF or BMP image"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append((path, "no such file or folder"))
    return files, problems


def output_paths(files: list[Path], output_dir: Path) -> dict[Path, Path]:
    """Each input's output (same file name in ``output_dir``); two inputs of one name would collide."""
    outputs: dict[Path, Path] = {}
    by_name: dict[str, Path] = {}
    for path in files:
        if path.name in by_name and by_name[path.name].resolve() != path.resolve():
            raise ValueError(
                f"two inputs share the name {path.name!r} ({by_name[path.name]} and {path}); their outputs would "
                "collide in one folder: restore them in separate runs with different -o folders"
            )
        by_name[path.name] = path
        outputs[path] = output_dir / path.name
    return outputs


def restore_file(source: Path, target: Path, net: torch.nn.Module, args: argparse.Namespace) -> None:
    """Read, restore and write one image; raises with a message naming the problem."""
    if not is_image_file(source):
        raise ImageReadError(f"{source}: not a PNG, JPEG, TIFF or BMP file")
    restored = restore_array(
        net,
        read_array(source, max_pixels=args.max_pixels, keep_alpha=True),
        source=str(source),
        tile=args.tile,
        overlap=args.tile_overlap,
        precision=args.precision,
        self_ensemble=args.self_ensemble,
        tile_batch=args.tile_batch,
    )
    write_array(target, restored)  # atomic: an interrupted run leaves no half-written output


def run(args: argparse.Namespace, console: Console) -> Outcome:
    outcome = Outcome()
    if args.output.exists() and not args.output.is_dir():
        raise ValueError(f"-o {args.output} is a file; name a folder for the results (it is created if missing)")
    files, problems = collect_inputs(args.inputs)
    outcome.failed.extend(problems)
    for path, reason in problems:
        console.print(f"[red]failed[/red] {escape(f'{path}: {reason}')}")
    targets = output_paths(files, args.output)

    device = pick_device(args.device)
    check_precision(args.precision, device)
    check_backend(args.backend, device, args.precision, args.compile)
    net, _ = load_network(args.ckpt)
    info = network_info(net)
    check_tiles(info, args.tile, args.tile_overlap)
    net = prepare_network(net, device)
    net = inference_network(net, device, args.backend, args.compile, args.compile_shapes, checkpoint=args.ckpt)
    mode = "one pass" if args.tile is None else f"tiles {args.tile} px, overlap {args.tile_overlap} px"
    model = " ".join(str(part) for part in (info.family, info.preset, info.attention) if part)
    console.print(
        escape(
            f"model {model} from {args.ckpt}; device {device}, {args.precision}, {mode}"
            f"{', self-ensemble x8' if args.self_ensemble else ''}{engine_note(net, args)}"
        )
    )
    args.output.mkdir(parents=True, exist_ok=True)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("restoring", total=len(targets))
        for source, target in targets.items():
            progress.update(task, description=f"restoring {source.name}")
            if target.exists() and target.resolve() == source.resolve():
                outcome.failed.append((source, "the output would replace the input; choose another -o folder"))
                progress.console.print(f"[red]failed[/red] {escape(f'{source}: {outcome.failed[-1][1]}')}")
            elif target.exists() and not args.overwrite:
                outcome.skipped.append(source)
                progress.console.print(escape(f"skipped {source}: {target} exists (--overwrite replaces it)"))
            else:
                try:
                    restore_file(source, target, net, args)
                    outcome.restored.append(source)
                except Exception as exc:  # one image failing must not stop the others
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    if is_out_of_memory(exc):
                        reason = f"out of memory ({reason[:120]}); retry with --tile 512"
                    outcome.failed.append((source, reason))
                    progress.console.print(f"[red]failed[/red] {escape(f'{source}: {reason}')}")
            progress.advance(task)
        progress.update(task, description="done")
    return outcome


def engine_note(net: torch.nn.Module, args: argparse.Namespace) -> str:
    """How the network runs, for the start line: nothing for plain PyTorch."""
    if args.backend == "onnxruntime":
        return f"; onnxruntime ({net.path.name})"
    return f"; torch.compile ({args.compile_shapes} shapes)" if hasattr(net, "_compiled") else ""


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--compile`` and ``--compile-shapes``, shared with the app."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="torch (default) or onnxruntime: the exported ONNX graph on the CPU, exported once per checkpoint and "
        "cached in $LAFORMER_CACHE or ~/.cache/laformer (needs the export extra; fp32)",
    )
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="auto",
        help="run the network through torch.compile (compiled graphs are cached on disk for the next run); "
        "auto: where it was measured to pay (off for now)",
    )
    parser.add_argument(
        "--compile-shapes",
        choices=SHAPE_MODES,
        default=DEFAULT_SHAPES,
        help="static: one graph per size (exact; default); dynamic: symbolic sizes (exact, but torch 2.13 compiled "
        "again per size here); buckets: sizes padded to 128 px, one graph per bucket (not exact)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laformer-restore",
        description="Restore images with a checkpoint from laformer-train (whole images in one pass by default).",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files and/or folders of images")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTPUT_DIR", help="folder for results")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--ckpt",
        type=Path,
        help="checkpoint written by laformer-train, a model folder, or a published NAFNet / SwinIR / Restormer / "
        "DRUNet / DnCNN weights file (.pth, .safetensors) as its authors release it",
    )
    source.add_argument(
        "--model",
        dest="ckpt",
        type=Path,
        metavar="FOLDER",
        help="model folder from laformer-export --format safetensors",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA, else MPS, else CPU")
    parser.add_argument(
        "--precision", choices=tuple(PRECISIONS), default="fp32", help="fp16 needs a GPU; bf16 also runs on the CPU"
    )
    parser.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations (8x slower)")
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="SIZE",
        help="restore in SIZE x SIZE tiles (a multiple of the network's size multiple: 8 for LAformer)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        metavar="PIXELS",
        help=f"pixels shared by neighbouring tiles, which cross-fade over them (default {DEFAULT_OVERLAP}, at most a "
        "quarter of the tile)",
    )
    parser.add_argument("--tile-batch", type=int, default=1, metavar="N", help="tiles restored together")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"largest image accepted, read from its header before decoding (default {DEFAULT_MAX_PIXELS:,}: "
        f"{megapixels(DEFAULT_MAX_PIXELS)}); larger ones fail by name",
    )
    add_engine_options(parser)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tile is not None:
        if args.tile_overlap is None:
            args.tile_overlap = default_overlap(args.tile)
        if args.tile <= 0:
            parser.error(f"--tile must be a positive multiple of the network's size multiple, got {args.tile}")
        if args.tile_overlap < 0:
            parser.error(f"--tile-overlap must be >= 0, got {args.tile_overlap}")
    if args.tile_batch < 1:
        parser.error("--tile-batch must be >= 1")
    if args.max_pixels < 1:
        parser.error("--max-pixels must be >= 1")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    start = time.perf_counter()
    kept = f"finished outputs are in {args.output}, no partial file is left; run again to restore the rest"

    def restore_all() -> int:
        outcome = run(args, console)
        summary = (
            f"{len(outcome.restored)} restored, {len(outcome.skipped)} skipped (output exists), "
            f"{len(outcome.failed)} failed in {time.perf_counter() - start:.1f} s -> {args.output}"
        )
        console.print(escape(summary))
        for path, reason in outcome.failed:
            console.print(escape(f"  failed: {path}: {reason}"))
        return 1 if outcome.failed else 0

    return exit_status("laformer-restore", restore_all, debug=args.debug, interrupted=kept)


if __name__ == "__main__":
    sys.exit(main())
