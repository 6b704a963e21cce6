"""``laformer-export --ckpt CHECKPOINT --format onnx [-o model.onnx]``: a deployable model with dynamic H and W.

The ONNX graph comes from the TorchScript-based exporter, traced on an input whose sides are not multiples
of 8: the network pads its input to a multiple of 8 with shape-dependent Python code, and tracing records
that padding as shape arithmetic, so the graph takes any height and width of at least 8 pixels. (The
torch.export-based exporter specialises that branch instead: its graph then fails on sizes the example
did not share.) ``--check`` runs the exported model in onnxruntime at two sizes against PyTorch.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from laformer.inference.checkpoint import load_network
from laformer.models.laformer import SIZE_MULTIPLE

FORMATS = ("onnx",)
# Example sides for tracing: not multiples of SIZE_MULTIPLE (see the module docstring), small to trace fast.
TRACE_SIZE = (4 * SIZE_MULTIPLE + 3, 5 * SIZE_MULTIPLE + 5)
MIN_SIDE = SIZE_MULTIPLE  # the traced reflect padding needs each side longer than the pad (at most 7)
INPUT_NAME, OUTPUT_NAME = "input", "output"


def export_onnx(net: nn.Module, path: str | Path, opset: int = 17) -> Path:
    """Write ``net`` as ONNX with dynamic batch, height and width; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = getattr(net, "in_channels", 3)
    example = torch.rand(1, channels, *TRACE_SIZE, generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The tracer warns that shape comparisons become constants: the pad branch and mode are meant to.
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            net.eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            opset_version=opset,
        )
    return path


def check_onnx(net: nn.Module, path: str | Path, sizes: tuple[tuple[int, int], ...] = ((40, 56), (64, 48))) -> float:
    """Largest absolute difference between onnxruntime and PyTorch over random inputs of ``sizes``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    channels = getattr(net, "in_channels", 3)
    worst = 0.0
    generator = torch.Generator().manual_seed(1)
    for height, width in sizes:
        x = torch.rand(1, channels, height, width, generator=generator)
        with torch.inference_mode():
            expected = net(x)
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        worst = max(worst, float((torch.from_numpy(got) - expected).abs().max()))
    return worst


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laformer-export", description="Export a laformer-train checkpoint's network (dynamic height and width)."
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="checkpoint written by laformer-train")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("-o", "--output", type=Path, default=None, help="default: the checkpoint's path with .onnx")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    parser.add_argument("--check", action="store_true", help="compare onnxruntime with PyTorch at two sizes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        net, config = load_network(args.ckpt)
    except (FileNotFoundError, ValueError) as exc:
        print(f"laformer-export: error: {exc}", file=sys.stderr)
        return 2
    output = args.output or args.ckpt.with_suffix(".onnx")
    export_onnx(net, output, opset=args.opset)
    print(
        f"wrote {output} ({config.get('name')}, {config.get('attention')}; input '{INPUT_NAME}' "
        f"N x {net.in_channels} x H x W in [0, 1], H and W >= {MIN_SIDE}, opset {args.opset})"
    )
    if args.check:
        diff = check_onnx(net, output)
        print(f"onnxruntime vs PyTorch: max abs difference {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
