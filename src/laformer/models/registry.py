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

import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

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


def build_network(config: Mapping[str, Any], source: str = "the network config") -> nn.Module:
    """Build a registered network from a config such as a checkpoint stores; anything else is refused."""
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
    return builder(**kwargs)
