"""``laformer-export --ckpt CHECKPOINT --format onnx|safetensors [-o OUT]``: a model to deploy or to share.

``safetensors`` writes a folder in the Hugging Face Hub layout (``model.safetensors``, ``config.json``, a model
card with the run's training summary), which ``laformer-restore --model FOLDER``, ``load_network`` and
``LAformer.from_pretrained`` read offline and ``huggingface_hub`` can upload as is.

The ONNX graph comes from the TorchScript-based exporter, traced on an input whose sides are not multiples
of 8: the network pads its input to a multiple of 8 with shape-dependent Python code, and tracing records
that padding as shape arithmetic, so the graph takes any height and width of at least 8 pixels. (The
torch.export-based exporter specialises that branch instead: its graph then fails on sizes the example
did not share.) ``--check`` runs the exported model in onnxruntime at two sizes against PyTorch.

Peer networks (NAFNet, SwinIR, Restormer, DRUNet, DnCNN through ``laformer.models.peers``) export the same way,
traced at sides that are not multiples of their own size multiple; a network whose ``NetworkInfo`` names an
``export_blocker`` is refused with that reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from laformer.cli.errors import exit_status
from laformer.inference.checkpoint import load_network
from laformer.inference.model_folder import run_summary_for, save_model_folder
from laformer.inference.onnx_export import (  # the exporter lives in inference: laformer-restore caches its graphs
    INPUT_NAME,
    OUTPUT_NAME,
    ExportError,
    check_onnx,
    export_onnx,
    min_side,
    trace_size,
)
from laformer.models.registry import network_info

FORMATS = ("onnx", "safetensors")
__all__ = ["INPUT_NAME", "OUTPUT_NAME", "ExportError", "check_onnx", "export_onnx", "main", "min_side", "trace_size"]


def max_difference(a: nn.Module, b: nn.Module, sizes: tuple[tuple[int, int], ...] = ((40, 56), (64, 48))) -> float:
    """Largest absolute difference between two networks' outputs on random inputs of ``sizes``."""
    channels = network_info(a).in_channels
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    with torch.inference_mode():
        for height, width in sizes:
            x = torch.rand(1, channels, height, width, generator=generator)
            worst = max(worst, float((a(x) - b(x)).abs().max()))
    return worst


def export_folder(net: nn.Module, config: dict, args: argparse.Namespace) -> int:
    """The Hub-layout folder; refuses to write into a non-empty folder that is not a model folder."""
    output = args.output or args.ckpt.with_name(f"{args.ckpt.stem}_model")
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / "config.json").exists())):
        print(f"laformer-export: error: {output} exists and is not a model folder; choose another -o", file=sys.stderr)
        return 2
    summary = run_summary_for(args.ckpt) if args.ckpt.is_file() else None
    save_model_folder(net, config, output, summary=summary)
    print(f"wrote {output}/ (model.safetensors, config.json, README.md; {config.get('_target_')})")
    if args.check:
        diff = max_difference(net, load_network(output)[0])
        print(f"reloaded folder vs checkpoint: max abs difference {diff:.2e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laformer-export", description="Export a laformer-train checkpoint's network (dynamic height and width)."
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="checkpoint written by laformer-train")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="default: the checkpoint's path with .onnx, or a folder <checkpoint name>_model for safetensors",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    parser.add_argument(
        "--check", action="store_true", help="compare the exported model with the checkpoint's network at two sizes"
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status("laformer-export", lambda: export(args), debug=args.debug)


def export(args: argparse.Namespace) -> int:
    net, config = load_network(args.ckpt)
    if args.format == "safetensors":
        return export_folder(net, config, args)
    output = args.output or args.ckpt.with_suffix(".onnx")
    info = network_info(net)
    export_onnx(net, output, opset=args.opset)
    print(
        f"wrote {output} ({info.family} {info.preset or ''}{', ' + info.attention if info.attention else ''}; "
        f"input '{INPUT_NAME}' N x {info.in_channels} x H x W in [0, 1], H and W >= {min_side(net)}, "
        f"opset {args.opset})"
    )
    if args.check:
        diff = check_onnx(net, output)
        print(f"onnxruntime vs PyTorch: max abs difference {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
