"""The one seam every network goes through: a table of buildable families and a descriptor per network.

Training composes networks from the user's own Hydra configs. A network config read from a *file* (a
checkpoint someone shared, a Hub folder's ``config.json``) is different: it is data, and Hydra's
``instantiate`` would call any ``_target_`` it names. :func:`build_network` builds only the targets
registered here, with plain keyword values, so a shared file can choose a network and its size but never
which code runs.

Every network the suite builds carries a :class:`NetworkInfo` (``network_info(net)``): channels, the multiple
its input sides are padded to, and what it supports. Restore, export, evaluation, benchmarks and the app read
that descriptor instead of asking "is this a LAformer?".
"""

from __future__ import annotations

import contextlib
import importlib
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

# Tensor factories (torch.empty, zeros, randn, ...), the same list torch.device(...) as a context redirects.
_FACTORIES = frozenset(_device_constructors())

TARGET_KEY = "_target_"
# Hydra keys that change how a call is made (positional args, partials, recursion): never taken from a file.
_HYDRA_CALL_KEYS = frozenset({"_args_", "_partial_", "_recursive_", "_convert_"})


class NetworkConfigError(ValueError):
    """A network config that cannot be built; the message names the source and what to do."""


class UntrustedConfigError(NetworkConfigError):
    """A network config from a file names code the suite does not register, or carries call machinery."""


@dataclass(frozen=True)
class NetworkInfo:
    """What the rest of the suite needs to know about a network, as data.

    Args:
        family: registered family name (``laformer``, ``nafnet``, ``restormer``, ...).
        in_channels / out_channels: image channels in and out.
        size_multiple: input sides are padded to this multiple inside the network and cropped back; tiles
            and traced exports use it.
        preset: the size preset, where the family has presets.
        attention: the spatial attention (LAformer's ablation axis), where it applies.
        supports_fp16 / supports_bf16: half-precision inference is known to stay finite.
        peak_bytes_per_pixel: rough fp32 peak memory of one inference pass per input pixel (batch included), for
            deciding whether the CPU heap reuse fits (``laformer.inference.cpu_heap``); None where it was never
            measured (the reuse is then left off).
        export_blocker: why the network cannot be exported to ONNX with dynamic height and width; None where it can.
    """

    family: str
    in_channels: int
    out_channels: int
    size_multiple: int = 1
    preset: str | None = None
    attention: str | None = None
    supports_fp16: bool = True
    supports_bf16: bool = True
    peak_bytes_per_pixel: float | None = None
    export_blocker: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def network_info(net: nn.Module) -> NetworkInfo:
    """The descriptor of a suite network (its ``info`` attribute)."""
    info = getattr(net, "info", None)
    if not isinstance(info, NetworkInfo):
        raise TypeError(
            f"{type(net).__name__} carries no NetworkInfo: build networks through laformer.models.build_network "
            "or a registered model config"
        )
    return info


# target string -> "module:attribute.path". Only modules of this package are listed, and a module is
# imported only when a config asks for one of its targets (the peer networks need optional libraries).
_TARGETS: dict[str, str] = {
    "laformer.models.LAformer": "laformer.models.laformer:LAformer",
    "laformer.models.LAformer.from_preset": "laformer.models.laformer:LAformer.from_preset",
    "laformer.models.laformer.LAformer": "laformer.models.laformer:LAformer",
    "laformer.models.laformer.LAformer.from_preset": "laformer.models.laformer:LAformer.from_preset",
    # NAFNet, SwinIR, Restormer, DRUNet, DnCNN from spandrel's classes (needs the `peers` extra).
    "laformer.models.peers.build_peer": "laformer.models.peers:build_peer",
}


def register_network_target(target: str, location: str) -> None:
    """Allow configs from files to name ``target``, built by the callable at ``module:attribute``."""
    module = location.split(":", 1)[0]
    if not module.startswith("laformer."):
        raise ValueError(f"network builders must live in the laformer package, got {location!r}")
    _TARGETS[target] = location


def registered_targets() -> tuple[str, ...]:
    return tuple(sorted(_TARGETS))


def _resolve(location: str) -> Callable[..., nn.Module]:
    module_name, _, attribute = location.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def _plain(value: Any, where: str, source: str) -> Any:
    """JSON-like values only: a nested ``_target_`` would be a second, unchecked call."""
    if isinstance(value, Mapping):
        if TARGET_KEY in value or _HYDRA_CALL_KEYS & set(value):
            raise UntrustedConfigError(f"{source}: nested call in network config at {where!r}; refused")
        return {str(k): _plain(v, f"{where}.{k}", source) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise UntrustedConfigError(f"{source}: network config value at {where!r} is a {type(value).__name__}; refused")


class WeightsMismatchError(NetworkConfigError):
    """A network config that does not describe the weights stored beside it (found before any real allocation)."""


class _ParameterBudget:
    """Stops a network build as soon as it registers more parameters (count or elements) or modules than the
    stored weights can account for, so a config asking for a giant network never gets to allocate it.

    PyTorch's global registration hooks see every ``nn.Parameter`` and submodule as it is attached; only the
    building thread is counted, so a server restoring on other threads is not affected.
    """

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], source: str) -> None:
        self.source = source
        self.max_tensors = len(shapes)
        self.max_elements = sum(math.prod(shape) for shape in shapes.values())
        self.max_modules = 8 * len(shapes) + 64  # activations, norms without weights, containers
        self.tensors = self.elements = self.modules = 0
        self._thread = threading.get_ident()

    def _refuse(self, what: str) -> None:
        raise WeightsMismatchError(
            f"{self.source}: the network config asks for more {what} than the stored weights hold "
            f"({self.max_tensors} tensors, {self.max_elements:,} numbers); the config and the weights do not belong "
            "together: copy the file again, or ask its author for a matching pair"
        )

    def _parameter(self, module: nn.Module, name: str, param: Any) -> None:
        if param is None or threading.get_ident() != self._thread:
            return
        self.tensors += 1
        self.elements += param.numel()
        if self.tensors > self.max_tensors or self.elements > self.max_elements:
            self._refuse("parameters")

    def _module(self, module: nn.Module, name: str, submodule: Any) -> None:
        if threading.get_ident() == self._thread:
            self.modules += 1
            if self.modules > self.max_modules:
                self._refuse("layers")

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        from torch.nn.modules import module as module_hooks

        handles = [
            module_hooks.register_module_parameter_registration_hook(self._parameter),
            module_hooks.register_module_module_registration_hook(self._module),
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


class _LargeTensorsOnMeta(TorchFunctionMode):
    """Creates every tensor above a few thousand numbers on the meta device (no memory), the rest on the CPU.

    A network built entirely on the meta device would be free, but some builders read values back while building
    (SwinIR's stochastic-depth schedule calls ``.item()`` on a ``linspace``), which meta tensors cannot answer.
    Small tensors stay real so such reads work; the weights that could be large never exist.
    """

    SMALL = 4096

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func not in _FACTORIES or kwargs.get("device") is not None:
            return func(*args, **kwargs)
        planned = func(*args, **{**kwargs, "device": "meta"})
        if isinstance(planned, torch.Tensor) and planned.numel() > self.SMALL:
            return planned
        return func(*args, **kwargs)


def _shape_differences(net: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    built = {name: tuple(tensor.shape) for name, tensor in net.state_dict().items()}
    problems = [f"{name} is missing from the weights" for name in built if name not in shapes]
    problems += [f"{name} is in the weights but not in the network" for name in shapes if name not in built]
    problems += [
        f"{name}: the config makes {list(built[name])}, the weights hold {list(shapes[name])}"
        for name in built
        if name in shapes and built[name] != tuple(shapes[name])
    ]
    return problems


def check_config_fits_weights(
    builder: Callable[..., nn.Module], kwargs: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]], source: str
) -> None:
    """Build the network with its large tensors on the meta device (:class:`_LargeTensorsOnMeta`) under a parameter
    budget taken from the stored weights, and compare every tensor's name and shape; raise
    :class:`WeightsMismatchError` naming the first differences. Costs a fraction of a second for an honest file; a
    hostile one is refused before its weights are allocated."""
    budget = _ParameterBudget(shapes, source)
    with budget.watching(), _LargeTensorsOnMeta():
        net = builder(**kwargs)
    if problems := _shape_differences(net, shapes):
        listed = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise WeightsMismatchError(f"{source}: the network config does not fit the stored weights ({listed})")


def safetensors_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the tensors in a ``.safetensors`` file, from its header alone (nothing is loaded)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise NetworkConfigError(f"{path} is truncated or corrupt, not a readable safetensors file ({exc})") from None


def build_network(
    config: Mapping[str, Any],
    source: str = "the network config",
    weight_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> nn.Module:
    """Build a registered network from a config such as a checkpoint stores; anything else is refused.

    ``weight_shapes`` (name -> shape of the tensors stored beside the config) makes the config prove it describes
    those weights first (:func:`check_config_fits_weights`), so a file cannot make us allocate a network far
    larger than what it carries.
    """
    if not isinstance(config, Mapping):
        raise UntrustedConfigError(f"{source}: the network config is a {type(config).__name__}, not a mapping")
    target = config.get(TARGET_KEY)
    if target not in _TARGETS:
        raise UntrustedConfigError(
            f"{source}: network target {target!r} is not a model family this suite registers "
            f"({', '.join(registered_targets())}); it is refused so that a shared file cannot run code"
        )
    if extra := _HYDRA_CALL_KEYS & set(config):
        raise UntrustedConfigError(f"{source}: network config carries {sorted(extra)}; refused")
    kwargs = {k: _plain(v, k, source) for k, v in config.items() if k != TARGET_KEY}
    try:
        builder = _resolve(_TARGETS[target])
    except ImportError as exc:
        raise NetworkConfigError(f"{source}: {target} needs a library that is not installed ({exc})") from None
    try:
        if weight_shapes is not None:
            check_config_fits_weights(builder, kwargs, weight_shapes, source)
        return builder(**kwargs)
    except (NetworkConfigError, MemoryError, RecursionError):
        raise
    except Exception as exc:  # anything a builder raises on values from a file is a property of that file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        # chained, so LAFORMER_DEBUG=1 still shows where the builder failed
        raise NetworkConfigError(f"{source}: the network config does not fit {target} ({first})") from exc
