"""``laformer-restore --backend onnxruntime``: the exported ONNX graph run by ONNX Runtime on the CPU.

Users who restore photos on a CPU often deploy this way. The graph is exported once per checkpoint and kept in the
project's cache folder (``<cache>/onnx``, ``$LAFORMER_CACHE`` or ``~/.cache/laformer``), named by the checkpoint's
content hash, the opset and the PyTorch version that traced it: a changed checkpoint (same path, new weights), another
opset or another exporter gets a new graph, and an unchanged one is never traced again.

:class:`OnnxRuntimeNetwork` is an ``nn.Module`` that answers like the network it was exported from (``info``, its
device through one empty parameter), so ``restore_image`` and ``restore_array`` (tiles, alpha, grey photos, the
memory checks) run it unchanged.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from laformer.inference.compiled import cache_root
from laformer.inference.onnx_export import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, export_onnx
from laformer.models.registry import NetworkInfo, network_info

BACKENDS = ("torch", "onnxruntime")
_CHUNK = 1 << 20


def content_hash(path: str | Path) -> str:
    """SHA-256 of a checkpoint file, or of every file of a model folder (names and bytes, in name order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def onnx_cache_path(checkpoint: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Where the graph of ``checkpoint`` lives in the cache: content hash + opset + torch version."""
    key = f"{content_hash(checkpoint)[:32]}-opset{opset}-torch{torch.__version__.replace('+', '_')}"
    return cache_root() / "onnx" / f"{key}.onnx"


def cached_export(net: nn.Module, checkpoint: str | Path, opset: int = DEFAULT_OPSET) -> tuple[Path, bool]:
    """The cached ONNX graph of ``net`` (loaded from ``checkpoint``), exported first if missing; (path, exported).

    Written to a temporary name in the cache folder and renamed, so two processes never read half a graph.
    """
    target = onnx_cache_path(checkpoint, opset)
    if target.is_file():
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.partial")
    os.close(handle)
    try:
        export_onnx(net, temporary, opset=opset)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target, True


class OnnxRuntimeNetwork(nn.Module):
    """An ONNX Runtime session behind the network's interface: ``(B, C, H, W)`` float32 in, the same out."""

    def __init__(self, path: str | Path, info: NetworkInfo, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path, self._info = Path(path), info
        self.anchor = nn.Parameter(torch.empty(0), requires_grad=False)  # tells callers the device: the CPU

    @property
    def info(self) -> NetworkInfo:
        return self._info

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != torch.float32:
            raise ValueError("the onnxruntime backend runs in fp32 only; use --precision fp32")
        array = np.ascontiguousarray(x.detach().cpu().numpy())
        (out,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return torch.from_numpy(out)


def onnxruntime_network(
    net: nn.Module, checkpoint: str | Path, opset: int = DEFAULT_OPSET, **options: Any
) -> nn.Module:
    """``net`` as an :class:`OnnxRuntimeNetwork`, from the cached graph of ``checkpoint`` (exported once)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            f"--backend onnxruntime needs the optional export extra ({exc}); install it: pip install -e '.[export]'"
        ) from None
    path, _ = cached_export(net.eval().cpu(), checkpoint, opset)
    return OnnxRuntimeNetwork(path, network_info(net), **options)
