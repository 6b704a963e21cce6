"""The ONNX exporter of ``laformer-export`` and of ``laformer-restore --backend onnxruntime`` (which caches its graphs).

The graph comes from the TorchScript-based exporter, traced on an input whose sides are not multiples of 8: the
network pads its input to a multiple of 8 with shape-dependent Python code, and tracing records that padding as
shape arithmetic, so the graph takes any height and width of at least 8 pixels. (The torch.export-based exporter
specialises that branch instead: its graph then fails on sizes the example did not share.)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from laformer.models.laformer import SIZE_MULTIPLE
from laformer.models.registry import network_info

INPUT_NAME, OUTPUT_NAME = "input", "output"
DEFAULT_OPSET = 17


class ExportError(ValueError):
    """A network that cannot be exported in the asked format; the message names the network and why."""


def trace_size(net: nn.Module) -> tuple[int, int]:
    """Example sides that are not multiples of the network's size multiple (so its padding is traced), small to
    trace fast; at least LAformer's multiple, so a network without one still traces a few dozen pixels."""
    multiple = max(network_info(net).size_multiple, SIZE_MULTIPLE)
    return 4 * multiple + 3, 5 * multiple + 5


def min_side(net: nn.Module) -> int:
    """The smallest side the traced graph takes: the reflect padding needs each side longer than the pad."""
    return max(network_info(net).size_multiple, 1)


def export_onnx(net: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``net`` as ONNX with dynamic batch, height and width; returns the path."""
    info = network_info(net)
    if info.export_blocker:
        raise ExportError(
            f"{info.family} cannot be exported to ONNX with dynamic height and width: {info.export_blocker}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = info.in_channels
    example = torch.rand(1, channels, *trace_size(net), generator=torch.Generator().manual_seed(0))
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
    channels = network_info(net).in_channels
    worst = 0.0
    generator = torch.Generator().manual_seed(1)
    for height, width in sizes:
        x = torch.rand(1, channels, height, width, generator=generator)
        with torch.inference_mode():
            expected = net(x)
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        worst = max(worst, float((torch.from_numpy(got) - expected).abs().max()))
    return worst
