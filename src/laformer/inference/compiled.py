"""Inference through ``torch.compile``, with PyTorch's on-disk compile caches kept in the project's cache folder.

Compiling the tiny LAformer on a 2-core CPU took about a minute (issue 25); every new process paid it again because
inductor's caches lived in a temporary folder. :func:`use_compile_cache` points them (inductor's FX graph cache, its
generated C++ and kernels, AOT autograd's cache) at ``<cache>/torch-compile/torch-<version>``, where ``<cache>`` is
``$LAFORMER_CACHE`` or ``~/.cache/laformer``: a second process re-traces the network in Python (seconds) and loads
the compiled graph from disk instead of generating and compiling C++ again.

Image sizes (``shapes``):

- ``static`` (default): one graph per size; exact, the fastest to compile, and the fastest kernels for a size met
  again and again (tiles, a folder of one camera's photos), a fresh compilation for every new size.
- ``dynamic``: one graph with symbolic height and width (``torch.compile(dynamic=True)``); exact, but measured
  (``experiments/efficiency/compile_shapes.py``, torch 2.13, 2026-12-07) it compiled again for every new photo size
  anyway, each time taking about twice as long as a static graph.
- ``buckets``: inputs padded (reflect) up to a multiple of ``bucket`` pixels before the graph, so one static graph
  serves every size of a bucket; not exact: LAformer's attention is global, so the padded pixels move every output
  pixel a little, and border pixels of every network see other neighbours.

``--compile auto`` resolves through :func:`resolve_compile`: off until the efficiency benchmark shows, on the
machine at hand, that compiling pays for itself (see docs/restoring.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from laformer.models.laformer import SIZE_MULTIPLE, pad_to_multiple

COMPILE_MODES = ("auto", "on", "off")
SHAPE_MODES = ("dynamic", "static", "buckets")
# static: exact, and on the 2-core EPYC (2026-12-07, experiments/efficiency/compile_shapes.py) the dynamic graph
# compiled again for every new photo size anyway, taking 2x static's time per compilation.
DEFAULT_SHAPES = "static"
DEFAULT_BUCKET = 128
CACHE_ENV = "LAFORMER_CACHE"
# Where each of PyTorch's on-disk compile caches is told to live (relative to the versioned compile folder).
_CACHE_VARIABLES = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}


def cache_root() -> Path:
    """The project's cache: ``$LAFORMER_CACHE``, else ``$XDG_CACHE_HOME/laformer``, else ``~/.cache/laformer``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "laformer"


def compile_cache_dir() -> Path:
    """The compile caches of this PyTorch version (a compiled graph is only valid for the version that built it)."""
    return cache_root() / "torch-compile" / f"torch-{torch.__version__}"


def use_compile_cache(folder: Path | None = None) -> Path:
    """Point PyTorch's on-disk compile caches at ``folder`` (default :func:`compile_cache_dir`) and switch them on.

    Call it before the first compilation of the process. A cache variable the user has set already is left alone,
    so ``TORCHINDUCTOR_CACHE_DIR=...`` still chooses.
    """
    folder = Path(folder) if folder is not None else compile_cache_dir()
    for variable, sub in _CACHE_VARIABLES.items():
        if not os.environ.get(variable):
            os.environ[variable] = str(folder / sub)
    Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def resolve_compile(mode: str, device: torch.device | str = "cpu") -> bool:
    """Whether ``--compile mode`` compiles on ``device``.

    ``auto`` is off everywhere for now: compiling pays only once its cost (cold: the compilation; warm: the cache
    load and tracing) is won back over the images of a run, and that has not been measured alone on a quiet machine
    yet (``experiments/efficiency/benchmark.py --modes eager compiled``). Turn ``auto`` on where it pays, here.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
    return mode == "on"


class CompiledNetwork(nn.Module):
    """``net`` run through ``torch.compile``; attributes it lacks (``info``, ...) are read from ``net``.

    Holding the plain network as ``net`` keeps ``network_info``, the parameters (device, dtype) and the state
    dict's keys (under ``net.``) as callers expect; the compiled callable is no submodule.
    """

    def __init__(self, net: nn.Module, shapes: str = DEFAULT_SHAPES, bucket: int = DEFAULT_BUCKET) -> None:
        super().__init__()
        if shapes not in SHAPE_MODES:
            raise ValueError(f"unknown shapes {shapes!r}; choose one of {', '.join(SHAPE_MODES)}")
        self.net, self.shapes, self.bucket = net, shapes, bucket
        self._compiled = torch.compile(net, dynamic=shapes == "dynamic")
        # Padding done here, before the graph, to ``_pad_multiple`` (the suite's one padding, ``pad_to_multiple``):
        # - buckets: the graph then sees bucket sizes only; padded inside it, a graph specialised on the photo's size
        #   and pad amounts would compile again for every new photo size, which buckets are there to avoid.
        # - dynamic LAformer: with symbolic sizes, inductor (torch 2.13) fails on LAformer's own padding arithmetic
        #   ((-h) % 8 in the graph: "TensorReferenceAnalysis has no attribute python_mod"); padded here, the
        #   network has nothing left to pad and the result is its own, cropped back.
        laformer = getattr(net, "info", None) is not None and net.info.family == "laformer"
        self._pad_multiple = 0  # static, and dynamic peers: the graph takes the photo as it is
        if shapes == "buckets":
            self._pad_multiple = bucket
        elif shapes == "dynamic" and laformer:
            self._pad_multiple = SIZE_MULTIPLE

    def forward(self, x: Tensor) -> Tensor:
        if not self._pad_multiple:
            return self._compiled(x)
        height, width = x.shape[-2:]
        return self._compiled(pad_to_multiple(x, self._pad_multiple))[..., :height, :width]

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("net"), name)


def compile_network(
    net: nn.Module, mode: str = "on", shapes: str = DEFAULT_SHAPES, bucket: int = DEFAULT_BUCKET, device: Any = "cpu"
) -> nn.Module:
    """``net`` compiled (a :class:`CompiledNetwork`) when ``mode`` resolves on, else ``net`` itself.

    The compile caches go to the project's cache folder (:func:`use_compile_cache`) first.
    """
    if not resolve_compile(mode, device):
        return net
    use_compile_cache()
    return CompiledNetwork(net, shapes=shapes, bucket=bucket)


def compile_counters() -> dict[str, int]:
    """Inductor's FX graph cache hits and misses in this process (what the second-process test reads)."""
    from torch._dynamo.utils import counters

    inductor = counters["inductor"]
    return {
        "fxgraph_cache_hit": int(inductor["fxgraph_cache_hit"]),
        "fxgraph_cache_miss": int(inductor["fxgraph_cache_miss"]),
    }
