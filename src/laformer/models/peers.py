"""Peer networks (NAFNet, SwinIR, Restormer, DRUNet, DnCNN) built from spandrel's architecture classes.

The suite holds no copy of any peer's code: each network is the class that spandrel (MIT) or
spandrel-extra-arches (Restormer, under its authors' non-commercial licence) ships, with its authors' licence
beside it there. This module is the one place that knows them:

- :func:`build_peer` builds one from a size preset (the authors' published size, a CPU-study size, a test size)
  and keyword overrides of the class's own constructor arguments. It is the registered target of
  ``conf/model/{nafnet,swinir,restormer,drunet,dncnn}.yaml``: ``laformer-train model=nafnet model.preset=small``.
- :func:`load_published` recognises a checkpoint file the authors publish (``{'params': ...}``,
  ``{'params_ema': ...}``, a bare state dict) from the shapes of its tensors, through spandrel's detection.
- Both return a :class:`PaddedNetwork`: it pads inputs to the sides the network needs and crops back, feeds
  DRUNet its noise-level channel, and carries a :class:`~laformer.models.registry.NetworkInfo` as ``.info``, so
  training, evaluation, restore, export and the benchmarks treat every family alike.

spandrel imports torchvision at start-up for two architectures the suite does not use (LaMa, RestoreFormer). Where
torchvision is not installed, :func:`import_spandrel` lets that import through with a stand-in module that exists
only while spandrel is imported, and whose two functions raise if ever called (see ``_torchvision_stand_in``).
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import importlib.util
import math
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from laformer.models.laformer import pad_to_multiple
from laformer.models.registry import NetworkConfigError, NetworkInfo

PEERS_EXTRA = "pip install 'laformer[peers]'  (spandrel, MIT)"
RESTORMER_EXTRA = "pip install 'laformer[restormer]'  (spandrel-extra-arches; Restormer's licence is non-commercial)"
BUILD_TARGET = "laformer.models.peers.build_peer"


class PeerUnavailableError(NetworkConfigError):
    """A peer network whose library is not installed (or cannot be imported); the message says what to install."""


class PublishedWeightsError(ValueError):
    """A weights file that spandrel does not recognise as a network this suite wraps."""


# --- the families ------------------------------------------------------------------------------------------------


def _same_channels(key: str) -> Callable[[dict[str, Any], int, int], dict[str, Any]]:
    def set_channels(kwargs: dict[str, Any], in_channels: int, out_channels: int) -> dict[str, Any]:
        if out_channels != in_channels:
            raise NetworkConfigError(
                f"this network returns as many channels as it takes ({key}={in_channels}); "
                f"out_channels={out_channels} is not possible"
            )
        return {**kwargs, key: in_channels}

    return set_channels


def _drunet_channels(kwargs: dict[str, Any], in_channels: int, out_channels: int) -> dict[str, Any]:
    return {**kwargs, "in_nc": in_channels + 1, "out_nc": out_channels}  # + the noise-level map


def _dncnn_channels(kwargs: dict[str, Any], in_channels: int, out_channels: int) -> dict[str, Any]:
    extra = 1 if kwargs.get("mode") == "FDnCNN" else 0  # FDnCNN takes a noise-level map, DnCNN is blind
    return {**kwargs, "in_nc": in_channels + extra, "out_nc": out_channels}


@dataclass(frozen=True)
class PeerFamily:
    """One peer architecture: where its class lives, its size presets, and what the suite must know about it.

    Args:
        name: the family name used by ``model=`` and ``NetworkInfo.family``.
        spandrel_id: the architecture's id in spandrel's registry (what its detection reports).
        module / class_name: the spandrel module that holds the network class.
        package / install / licence: the pip package, how to install it, and the architecture's licence.
        presets: ``base`` is the authors' published size; ``small`` a size for CPU studies (a few G MACs at 256²);
            ``tiny`` a smoke-test size. Values are the class's own constructor arguments.
        set_channels / channels: constructor arguments for the image channels, and back.
        grid: the side multiple the network's own down-sampling or windows need (it may pad inside as well).
        minimum: the smallest side spandrel asks for (``SizeRequirements.minimum``).
        requirement_multiple: spandrel's ``SizeRequirements.multiple_of``.
        pad_mode: how inputs are padded to the multiple (``reflect``, or ``constant`` zeros as NAFNet's own code does,
            so published weights give their authors' output at any size).
        noise_map: whether the network takes a noise-level map as an extra input channel.
        supports_fp16 / supports_bf16: spandrel's descriptor flags.
        export_blocker: why an ONNX export with dynamic sides cannot work, where it cannot.
    """

    name: str
    spandrel_id: str
    module: str
    class_name: str
    package: str
    install: str
    licence: str
    source: str
    presets: Mapping[str, Mapping[str, Any]]
    set_channels: Callable[[dict[str, Any], int, int], dict[str, Any]]
    channels: Callable[[Mapping[str, Any]], tuple[int, int]]
    grid: Callable[[Mapping[str, Any]], int]
    minimum: int = 0
    requirement_multiple: int = 1
    pad_mode: str = "reflect"
    noise_map: Callable[[Mapping[str, Any]], bool] = field(default=lambda kwargs: False)
    supports_fp16: bool = False
    supports_bf16: bool = True
    export_blocker: str | None = None


# SwinIR's colour-denoising setting (its main_test_swinir.py, task color_dn): no up-sampler, window 8, range [0, 1].
_SWINIR_DENOISING = {
    "window_size": 8,
    "mlp_ratio": 2.0,
    "upscale": 1,
    "img_range": 1.0,
    "upsampler": "",
    "resi_connection": "1conv",
}
_RESTORMER = {"heads": [1, 2, 4, 8], "ffn_expansion_factor": 2.66, "bias": False, "LayerNorm_type": "WithBias"}

FAMILIES: dict[str, PeerFamily] = {
    "nafnet": PeerFamily(
        name="nafnet",
        spandrel_id="NAFNet",
        module="spandrel.architectures.NAFNet",
        class_name="NAFNet",
        package="spandrel",
        install=PEERS_EXTRA,
        licence="MIT (megvii-research/NAFNet)",
        source="Chen et al., Simple Baselines for Image Restoration, ECCV 2022; base = NAFNet-SIDD-width32",
        presets={
            "base": {"width": 32, "enc_blk_nums": [2, 2, 4, 8], "middle_blk_num": 12, "dec_blk_nums": [2, 2, 2, 2]},
            "small": {"width": 16, "enc_blk_nums": [1, 1, 2, 4], "middle_blk_num": 4, "dec_blk_nums": [1, 1, 1, 1]},
            "tiny": {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]},
        },
        set_channels=_same_channels("img_channel"),
        channels=lambda kw: (kw.get("img_channel", 3), kw.get("img_channel", 3)),
        grid=lambda kw: 2 ** len(kw.get("enc_blk_nums", [])),
        pad_mode="constant",
    ),
    "swinir": PeerFamily(
        name="swinir",
        spandrel_id="SwinIR",
        module="spandrel.architectures.SwinIR",
        class_name="SwinIR",
        package="spandrel",
        install=PEERS_EXTRA,
        licence="Apache-2.0 (JingyunLiang/SwinIR)",
        source="Liang et al., SwinIR: Image Restoration Using Swin Transformer, ICCVW 2021; base = colour denoising",
        presets={
            "base": {**_SWINIR_DENOISING, "img_size": 128, "depths": [6] * 6, "embed_dim": 180, "num_heads": [6] * 6},
            "small": {**_SWINIR_DENOISING, "img_size": 64, "depths": [2] * 4, "embed_dim": 32, "num_heads": [4] * 4},
            "tiny": {**_SWINIR_DENOISING, "img_size": 32, "depths": [1, 1], "embed_dim": 16, "num_heads": [2, 2]},
        },
        set_channels=_same_channels("in_chans"),
        channels=lambda kw: (kw.get("in_chans", 3), kw.get("in_chans", 3)),
        grid=lambda kw: kw.get("window_size", 7),
        minimum=16,
    ),
    "restormer": PeerFamily(
        name="restormer",
        spandrel_id="Restormer",
        module="spandrel_extra_arches.architectures.Restormer",
        class_name="Restormer",
        package="spandrel-extra-arches",
        install=RESTORMER_EXTRA,
        licence="Restormer's Academic Public License: non-commercial use only (swz30/Restormer)",
        source="Zamir et al., Restormer, CVPR 2022; base = the class defaults (deraining / motion deblurring)",
        presets={
            "base": {**_RESTORMER, "dim": 48, "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4},
            # The shape of LAformer's `tiny` preset (width, blocks, refinement, heads): the matched pair.
            "small": {**_RESTORMER, "dim": 16, "num_blocks": [1, 2, 2, 2], "num_refinement_blocks": 1},
            "tiny": {
                **_RESTORMER,
                "dim": 8,
                "num_blocks": [1, 1, 1, 1],
                "num_refinement_blocks": 1,
                "heads": [1, 1, 2, 2],
            },
        },
        set_channels=lambda kw, c_in, c_out: {**kw, "inp_channels": c_in, "out_channels": c_out},
        channels=lambda kw: (kw.get("inp_channels", 3), kw.get("out_channels", 3)),
        grid=lambda kw: 8,
        requirement_multiple=8,
    ),
    "drunet": PeerFamily(
        name="drunet",
        spandrel_id="DRUNet",
        module="spandrel.architectures.DRUNet",
        class_name="DRUNet",
        package="spandrel",
        install=PEERS_EXTRA,
        licence="MIT (cszn/DPIR, cszn/KAIR)",
        source="Zhang et al., Plug-and-Play Image Restoration with Deep Denoiser Prior (TPAMI 2021): drunet_color",
        presets={
            "base": {"nc": [64, 128, 256, 512], "nb": 4, "act_mode": "R"},
            "small": {"nc": [16, 32, 64, 128], "nb": 2, "act_mode": "R"},  # nb >= 2: spandrel reads m_body.N
            "tiny": {"nc": [8, 16, 32, 64], "nb": 2, "act_mode": "R"},
        },
        set_channels=_drunet_channels,
        channels=lambda kw: (kw.get("in_nc", 1) - 1, kw.get("out_nc", 1)),
        grid=lambda kw: 8,
        requirement_multiple=8,
        noise_map=lambda kw: True,
    ),
    "dncnn": PeerFamily(
        name="dncnn",
        spandrel_id="DnCNN",
        module="spandrel.architectures.DnCNN",
        class_name="DnCNN",
        package="spandrel",
        install=PEERS_EXTRA,
        licence="MIT (cszn/KAIR)",
        source="Zhang et al., Beyond a Gaussian Denoiser (DnCNN), TIP 2017; base = CDnCNN-B (20 layers, batch norm)",
        presets={
            "base": {"nc": 64, "nb": 20, "act_mode": "BR", "mode": "DnCNN"},
            "small": {"nc": 32, "nb": 10, "act_mode": "BR", "mode": "DnCNN"},
            "tiny": {"nc": 8, "nb": 5, "act_mode": "BR", "mode": "DnCNN"},  # nb >= 5: spandrel detects it
        },
        set_channels=_dncnn_channels,
        channels=lambda kw: (kw.get("in_nc", 1) - (kw.get("mode") == "FDnCNN"), kw.get("out_nc", 1)),
        grid=lambda kw: 1,
        noise_map=lambda kw: kw.get("mode") == "FDnCNN",
    ),
}
PRESET_NAMES = ("base", "small", "tiny")
# Noise level fed to a published DRUNet / FDnCNN whose sigma nobody chose: the default of the authors' test
# scripts (and of spandrel's call).
DEFAULT_NOISE_LEVEL = 15.0


def family(name: str) -> PeerFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise NetworkConfigError(f"unknown peer network {name!r}; choose one of {', '.join(FAMILIES)}") from None


# --- importing spandrel ------------------------------------------------------------------------------------------


def _missing_torchvision(*args: Any, **kwargs: Any) -> Any:
    raise ModuleNotFoundError(
        "torchvision is not installed: this spandrel architecture needs it (install torchvision from the same "
        "index as torch)"
    )


@contextlib.contextmanager
def _torchvision_stand_in() -> Iterator[None]:
    """``torchvision.transforms.functional`` with the three names spandrel's LaMa and RestoreFormer import at
    start-up, for the duration of spandrel's import only. The suite uses neither architecture; their functions
    raise if called. Nothing else can see the stand-in: it is removed from ``sys.modules`` afterwards."""
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
    modules = {
        name: types.ModuleType(name, "stand-in while spandrel is imported (laformer.models.peers)") for name in names
    }
    modules["torchvision"].transforms = modules["torchvision.transforms"]
    modules["torchvision.transforms"].functional = modules["torchvision.transforms.functional"]
    functional = modules["torchvision.transforms.functional"]
    functional.InterpolationMode = enum.Enum("InterpolationMode", {"NEAREST": "nearest", "BILINEAR": "bilinear"})
    functional.rotate = functional.normalize = _missing_torchvision
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name in names:
            if sys.modules.get(name) is modules[name]:
                del sys.modules[name]


def import_spandrel() -> types.ModuleType:
    """The ``spandrel`` module, or :class:`PeerUnavailableError` saying what to install."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    if importlib.util.find_spec("spandrel") is None:
        raise PeerUnavailableError(f"the peer networks need spandrel, which is not installed: {PEERS_EXTRA}")
    stand_in = importlib.util.find_spec("torchvision") is None
    try:
        with _torchvision_stand_in() if stand_in else contextlib.nullcontext():
            return importlib.import_module("spandrel")
    except (ImportError, RuntimeError, OSError) as exc:
        raise PeerUnavailableError(
            f"spandrel could not be imported ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); if torchvision "
            "is installed, it must be the build made for this torch (install both from the same index)"
        ) from None


def network_class(fam: PeerFamily) -> type[nn.Module]:
    import_spandrel()
    if importlib.util.find_spec(fam.package.replace("-", "_")) is None:
        raise PeerUnavailableError(f"{fam.name} needs {fam.package}, which is not installed: {fam.install}")
    return getattr(importlib.import_module(fam.module), fam.class_name)


def _registry() -> Any:
    """spandrel's registry plus the extra architectures where installed (a copy: spandrel's global is left alone)."""
    spandrel = import_spandrel()
    registry = spandrel.MAIN_REGISTRY.copy()
    if importlib.util.find_spec("spandrel_extra_arches") is not None:
        from spandrel_extra_arches import EXTRA_REGISTRY

        registry.add(*EXTRA_REGISTRY, ignore_duplicates=True)
    return registry


# --- the wrapper -------------------------------------------------------------------------------------------------


# The name peers' callers import; the one padding function is LAformer's, with NAFNet's zeros as a mode of it.
pad_to_size = pad_to_multiple


class PaddedNetwork(nn.Module):
    """A peer network behind the suite's interface: any input size in, the same size out.

    The input is padded (bottom/right) to the sides the network needs, DRUNet-style networks get their
    noise-level map as one more channel, and the output is cropped back. The wrapped network is ``.model``.

    Args:
        model: the network (a spandrel architecture class).
        info: its descriptor; ``info.size_multiple`` is the padding multiple.
        minimum: the smallest side the network takes (smaller inputs are padded up to it).
        pad_mode: ``reflect`` or ``constant`` (zeros), as the network's authors pad.
        noise_level: sigma on the 0-255 scale fed as the noise-level map, for networks that take one; None for
            those that do not.
    """

    def __init__(
        self,
        model: nn.Module,
        info: NetworkInfo,
        minimum: int = 0,
        pad_mode: str = "reflect",
        noise_level: float | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self._info = info
        self.minimum, self.pad_mode, self.noise_level = minimum, pad_mode, noise_level

    @property
    def info(self) -> NetworkInfo:
        return self._info

    def extra_repr(self) -> str:
        return f"family={self._info.family}, multiple={self._info.size_multiple}, noise_level={self.noise_level}"

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> restored (B, C_out, H, W); any H and W."""
        h, w = x.shape[-2:]
        inp = pad_to_multiple(x, self._info.size_multiple, self.minimum, self.pad_mode)
        if self.noise_level is not None:
            # ones_like keeps the map's size dynamic in a traced (ONNX) graph
            level = torch.ones_like(inp[:, :1]) * (self.noise_level / 255.0)
            inp = torch.cat([inp, level], dim=1)
        return self.model(inp)[..., :h, :w]


def _info(fam: PeerFamily, kwargs: Mapping[str, Any], preset: str | None, multiple: int, **flags: Any) -> NetworkInfo:
    in_channels, out_channels = fam.channels(kwargs)
    return NetworkInfo(
        family=fam.name,
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        size_multiple=multiple,
        preset=preset,
        supports_fp16=flags.get("supports_fp16", fam.supports_fp16),
        supports_bf16=flags.get("supports_bf16", fam.supports_bf16),
        export_blocker=fam.export_blocker,
    )


def _plain(value: Any) -> Any:
    """Hydra containers (ListConfig) and tuples as plain lists, so the classes and the stored config see lists."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def build_peer(
    arch: str,
    preset: str | None = "base",
    in_channels: int | None = 3,
    out_channels: int | None = None,
    noise_level: float | None = None,
    **overrides: Any,
) -> PaddedNetwork:
    """A peer network from a size preset and keyword overrides of its class's constructor arguments.

    Args:
        arch: ``nafnet``, ``swinir``, ``restormer``, ``drunet`` or ``dncnn``.
        preset: ``base`` (the authors' published size), ``small`` (for CPU studies), ``tiny`` (smoke tests), or
            None to start from the class's own defaults (as configs of published files do).
        in_channels / out_channels: image channels (out defaults to in); None leaves them to ``overrides``.
        noise_level: for networks with a noise-level input (DRUNet, FDnCNN): the sigma (0-255) fed as that map;
            default 15, the authors' test default.
        overrides: the class's own arguments (``width=16``, ``embed_dim=60``, ...); None values keep the preset's.

    ``build_peer("nafnet", "small")``, or from Hydra ``model=nafnet model.preset=small model.width=24``.
    """
    fam = family(arch)
    if preset is not None and preset not in fam.presets:
        raise NetworkConfigError(f"unknown {arch} preset {preset!r}; choose one of {', '.join(fam.presets)}")
    kwargs = dict(fam.presets[preset]) if preset is not None else {}
    kwargs.update({k: _plain(v) for k, v in overrides.items() if v is not None})
    if in_channels is not None:
        kwargs = fam.set_channels(kwargs, int(in_channels), int(out_channels or in_channels))
    cls = network_class(fam)
    model = cls(**kwargs)
    multiple = math.lcm(fam.grid(kwargs), fam.requirement_multiple)
    if fam.noise_map(kwargs):
        noise_level = DEFAULT_NOISE_LEVEL if noise_level is None else float(noise_level)
    else:
        noise_level = None
    info = _info(fam, kwargs, preset, multiple)
    return PaddedNetwork(model, info, minimum=fam.minimum, pad_mode=fam.pad_mode, noise_level=noise_level)


# --- published weights -------------------------------------------------------------------------------------------


def _config_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        items = [_config_value(v) for v in value]
        return items if all(v is not _SKIP for v in items) else _SKIP
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return _SKIP  # classes such as SwinIR's norm_layer (its default): left to the constructor


_SKIP = object()


def load_published(state_dict: Mapping[str, Any], source: str = "the weights file") -> tuple[PaddedNetwork, dict]:
    """``(network in eval mode, its registry config)`` from the weights of a published checkpoint file.

    ``state_dict`` is what the authors saved (``{'params': ...}``, ``{'params_ema': ...}``, a bare state dict, ...),
    already loaded weights-only by the caller; spandrel unwraps it and recognises the architecture and its
    hyperparameters from the tensors' names and shapes. The config rebuilds the same network through
    :func:`build_peer` (so the network can be re-exported or fine-tuned like one the suite trained).
    """
    spandrel = import_spandrel()
    state = spandrel.canonicalize_state_dict(dict(state_dict))
    if not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise PublishedWeightsError(f"{source} holds no state dict of tensors that spandrel could read")
    state = dict(state)
    try:
        descriptor = _registry().load(state)
    except spandrel.UnsupportedModelError:
        raise PublishedWeightsError(
            f"{source} is neither a laformer-train checkpoint nor a network spandrel recognises from its tensors "
            f"(families wrapped here: {', '.join(f.spandrel_id for f in FAMILIES.values())}"
            + ("" if importlib.util.find_spec("spandrel_extra_arches") else f"; Restormer needs {RESTORMER_EXTRA}")
            + ")"
        ) from None
    except (KeyError, ValueError, RuntimeError, AssertionError) as exc:
        raise PublishedWeightsError(
            f"{source}: spandrel took it for {_detected(state)} but could not load it "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
        ) from None
    arch_id = descriptor.architecture.id
    fam = next((f for f in FAMILIES.values() if f.spandrel_id == arch_id), None)
    if fam is None or descriptor.purpose != "Restoration" or descriptor.scale != 1:
        raise PublishedWeightsError(
            f"{source} holds a {descriptor.architecture.name} network ({descriptor.purpose}, "
            f"scale {descriptor.scale}); "
            f"this suite wraps the restoration networks {', '.join(f.spandrel_id for f in FAMILIES.values())} only"
        )
    model = descriptor.model
    hyper = {k: _config_value(v) for k, v in getattr(model, "hyperparameters", {}).items()}
    hyper = {k: v for k, v in hyper.items() if v is not _SKIP}
    requirements = descriptor.size_requirements
    multiple = math.lcm(fam.grid(hyper), requirements.multiple_of)
    info = _info(
        fam,
        hyper,
        None,
        multiple,
        supports_fp16=bool(descriptor.supports_half),
        supports_bf16=bool(descriptor.supports_bfloat16),
    )
    noise_level = DEFAULT_NOISE_LEVEL if fam.noise_map(hyper) else None
    minimum = max(fam.minimum, requirements.minimum)
    net = PaddedNetwork(model, info, minimum=minimum, pad_mode=fam.pad_mode, noise_level=noise_level)
    config = {"_target_": BUILD_TARGET, "arch": fam.name, "preset": None, "in_channels": None, **hyper}
    if noise_level is not None:
        config["noise_level"] = noise_level
    return net.eval(), config


def _detected(state: Mapping[str, Any]) -> str:
    """Which architecture spandrel's detection picks for ``state`` (for messages)."""
    for support in _registry().architectures("detection"):
        with contextlib.suppress(Exception):
            if support.detect(state):
                return support.architecture.name
    return "an architecture it knows"
