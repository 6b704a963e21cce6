"""Which engine runs the network for restoration: PyTorch (eager or ``torch.compile``) or ONNX Runtime.

``laformer-restore``, ``laformer-eval`` and the app choose here, so the three take the same options
(``--backend``, ``--compile``, ``--compile-shapes``) and refuse the same combinations in one line.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from laformer.inference.compiled import COMPILE_MODES, DEFAULT_SHAPES, SHAPE_MODES, compile_network, resolve_compile
from laformer.inference.onnx_runtime import BACKENDS, onnxruntime_network

__all__ = ["BACKENDS", "COMPILE_MODES", "DEFAULT_SHAPES", "SHAPE_MODES", "check_backend", "inference_network"]


def check_backend(backend: str, device: torch.device, precision: str = "fp32", compile: str = "off") -> None:
    """Refuse what a backend cannot do, naming the alternative (before any network is loaded)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    resolve_compile(compile, device)  # refuses an unknown mode
    if backend == "onnxruntime":
        if device.type != "cpu":
            raise ValueError("--backend onnxruntime runs on the CPU; use --device cpu or --backend torch")
        if precision != "fp32":
            raise ValueError("--backend onnxruntime runs in fp32 only; use --precision fp32 or --backend torch")
        if compile == "on":
            raise ValueError("--compile on compiles PyTorch's network; with --backend onnxruntime use --compile off")


def inference_network(
    net: nn.Module,
    device: torch.device,
    backend: str = "torch",
    compile: str = "off",
    shapes: str = DEFAULT_SHAPES,
    checkpoint: str | Path | None = None,
) -> nn.Module:
    """``net`` (prepared for ``device``) behind the chosen backend; the result answers like ``net`` does.

    ``onnxruntime`` needs ``checkpoint``, the file the network came from: its graph is cached by content hash.
    """
    check_backend(backend, device, compile=compile)
    if backend == "onnxruntime":
        if checkpoint is None:
            raise ValueError("--backend onnxruntime needs the checkpoint's path to cache its exported graph")
        return onnxruntime_network(net, checkpoint)
    return compile_network(net, compile, shapes=shapes, device=device)
