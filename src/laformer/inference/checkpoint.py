"""The one door for loading a trained network from a file someone gives us, treating the file as data, never code.

Three kinds of file come in: a ``laformer-train`` checkpoint (its network config stored beside the weights under
:data:`NET_CONFIG_KEY`), a model folder in the Hugging Face Hub layout (``config.json`` + ``model.safetensors``,
written by ``laformer-export --format safetensors``), and a weights file as its authors publish it (NAFNet's,
SwinIR's, ... ``.pth`` or ``.safetensors``, recognised by spandrel from the tensors). :func:`load_network` takes all
three and is what restore, evaluation, export, the app, ``hubconf`` and the notebooks call.

Such files travel between people, so:

* checkpoints are read with ``torch.load(weights_only=True)`` (tensors and plain containers, no unpickling of
  code) and safetensors holds tensors only;
* a stored network config is built only through :func:`laformer.models.build_network`, which knows only the
  registered families, and only after it has proved on the meta device that it describes the stored tensors, so a
  config cannot make us allocate a network far larger than the weights beside it;
* every problem is one :class:`ModelLoadError` whose message names the file, says why and what to do.

This module owns the checkpoint keys; the training callback that writes them imports them from here, so loading a
model never imports training code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from laformer.models.registry import NetworkConfigError, build_network

NET_CONFIG_KEY = "laformer_net_config"  # the network's registry config, written into every training checkpoint
NET_PREFIX = "net."  # RestorationModule keeps the network as ``self.net``
# A model folder in the Hub layout: constructor arguments and the suite's own entry, tensors, a model card.
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
SUITE_KEY = "laformer"


class ModelLoadError(ValueError):
    """A file that cannot give a network; the message names the file, says why and what to do."""


CheckpointError = ModelLoadError  # the name callers and tests have used since checkpoints came first


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------- reading files


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, on the CPU, loaded weights-only; corrupt, truncated, foreign or code-carrying files raise
    :class:`ModelLoadError` with one line naming the file."""
    path = Path(path)
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; pass a checkpoint file (a run's checkpoints/last.ckpt)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (pass the path of a run's checkpoints/last.ckpt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # any failure to parse someone else's file is a property of the file
        text = str(exc)
        if "weights only" in text.lower() or "weights_only" in text:
            raise ModelLoadError(
                f"{path} holds pickled Python objects besides tensors and plain values, and loading them could run "
                "code, so it is refused. If you trust its author, ask for a file re-saved with "
                "torch.save({'state_dict': ..., 'laformer_net_config': ...}) or a laformer-export safetensors folder"
            ) from None
        size = path.stat().st_size
        with path.open("rb") as handle:
            start = handle.read(4)
        # torch.save writes a zip archive (PK..) or, in the legacy format, a pickle (protocol byte 0x80).
        looks = start.startswith(b"PK") or start.startswith(b"\x80")
        reason = _first_line(exc) if looks else "it is neither a zip archive nor a pickle, so no PyTorch file"
        raise ModelLoadError(
            f"{path} ({size:,} bytes) is truncated or not a PyTorch checkpoint ({reason}); copy it again "
            "in full (an interrupted download or sync leaves such files) or use another checkpoint"
        ) from None
    if not isinstance(checkpoint, dict):
        raise ModelLoadError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file on the CPU (tensors only: nothing in it can run code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; copy the whole model folder")
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = _first_line(exc)
        raise ModelLoadError(
            f"{path} is truncated or corrupt, not a readable safetensors file ({reason}); copy it again"
        ) from None


def read_folder_config(folder: Path) -> dict[str, Any]:
    """A model folder's ``config.json`` as a dict (plain JSON: nothing in it is called)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError(f"{folder} has no {CONFIG_FILE}; a model folder holds {CONFIG_FILE} + {WEIGHTS_FILE}")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); copy the folder again") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path} holds a {type(config).__name__}, not a JSON object")
    return config


def is_model_folder(path: str | Path) -> bool:
    return Path(path, CONFIG_FILE).is_file() or Path(path, WEIGHTS_FILE).is_file()


# --------------------------------------------------------------------------------------------------- what is inside


def stored_net_config(checkpoint: Mapping[str, Any], source: str = "the checkpoint") -> dict[str, Any]:
    """The network config that training wrote into the checkpoint (:data:`NET_CONFIG_KEY`)."""
    config = checkpoint.get(NET_CONFIG_KEY)
    if not config:
        raise ModelLoadError(
            f"{source} holds no network config (key {NET_CONFIG_KEY!r}): it was not written by laformer-train; "
            "retrain, or load the weights into a network you build yourself"
        )
    if not isinstance(config, dict):
        raise ModelLoadError(f"{source}: its network config is a {type(config).__name__}, not a mapping")
    return dict(config)


def net_state_dict(checkpoint: Mapping[str, Any], source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """The network's weights: the ``net.`` entries of a Lightning checkpoint's ``state_dict``."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise ModelLoadError(f"{source}: its state_dict is a {type(state).__name__}, not a mapping of tensors")
    net_state = {k[len(NET_PREFIX) :]: v for k, v in state.items() if str(k).startswith(NET_PREFIX)}
    if not net_state or not all(isinstance(v, torch.Tensor) for v in net_state.values()):
        raise ModelLoadError(f"{source}: its state_dict has no 'net.*' weights; is it a laformer-train checkpoint?")
    return net_state


def is_suite_checkpoint(checkpoint: Mapping[str, Any]) -> bool:
    """Whether a checkpoint dict was written by laformer-train: a stored network config, or ``net.*`` weights."""
    if checkpoint.get(NET_CONFIG_KEY):
        return True
    state = checkpoint.get("state_dict")
    return isinstance(state, dict) and any(str(k).startswith(NET_PREFIX) for k in state)


def folder_net_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A folder config's registry config: the suite's own entry, else a bare ``LAformer.save_pretrained`` config."""
    suite = config.get(SUITE_KEY)
    if isinstance(suite, dict) and isinstance(suite.get("net_config"), dict):
        return dict(suite["net_config"])
    import inspect

    from laformer.models.laformer import LAformer

    arguments = set(inspect.signature(LAformer.__init__).parameters) - {"self"}
    return {"_target_": "laformer.models.LAformer", **{k: v for k, v in config.items() if k in arguments}}


# --------------------------------------------------------------------------------------------------- building


def build_with_weights(config: Mapping[str, Any], state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """The registered network ``config`` describes, checked against ``state`` before any allocation, with ``state``
    loaded (strict) and in eval mode."""
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    try:
        net = build_network(config, source=source, weight_shapes=shapes)
        net.load_state_dict(state, strict=True)
    except NetworkConfigError as exc:
        raise ModelLoadError(str(exc)) from None
    except RuntimeError as exc:
        raise ModelLoadError(f"{source}: weights do not fit the network config ({_first_line(exc)})") from None
    return net.eval()


def published_network(state: Mapping[str, Any], source: str) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode, its config)`` from a weights file its authors publish (NAFNet's, SwinIR's,
    Restormer's ``{'params': ...}``, DRUNet's bare state dict, ...), recognised by spandrel from the tensors.
    ``state`` was read weights-only; spandrel never opens the file itself."""
    from laformer.models.peers import PeerUnavailableError, PublishedWeightsError, load_published

    try:
        return load_published(state, source=source)
    except PeerUnavailableError as exc:
        raise ModelLoadError(
            f"{source} is not a laformer-train checkpoint (no {NET_CONFIG_KEY!r}); published network files are "
            f"recognised through spandrel, but {exc}"
        ) from None
    except PublishedWeightsError as exc:
        raise ModelLoadError(str(exc)) from None


def network_from_checkpoint(
    checkpoint: Mapping[str, Any], source: str, fallback_config: Mapping[str, Any] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode, its config)`` from a loaded checkpoint dict; only registered families.

    A laformer-train checkpoint is rebuilt from its stored config (an old one without a config, from
    ``fallback_config`` where the caller has one); any other dict is taken for a published network file."""
    if not is_suite_checkpoint(checkpoint):
        return published_network(checkpoint, source)
    if checkpoint.get(NET_CONFIG_KEY) or fallback_config is None:
        config = stored_net_config(checkpoint, source=source)
    else:
        config = dict(fallback_config)
    return build_with_weights(config, net_state_dict(checkpoint, source), source), config


def load_model_folder(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode on the CPU, its registry config)`` from a model folder."""
    folder = Path(folder)
    config = read_folder_config(folder)
    net_config = folder_net_config(config)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelLoadError(f"{folder} has no {WEIGHTS_FILE}; copy the whole folder")
    net = build_with_weights(net_config, read_safetensors(weights), source=f"{folder / CONFIG_FILE} + {WEIGHTS_FILE}")
    preset = ((config.get(SUITE_KEY) or {}).get("info") or {}).get("preset")
    if preset and hasattr(net, "preset"):
        net.preset = preset
    return net, net_config


def load_network(
    path: str | Path, fallback_config: Mapping[str, Any] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode on the CPU, its config)`` from a checkpoint file, a model folder (or its
    ``model.safetensors``) or a published weights file. ``fallback_config`` builds an old checkpoint that stored
    no network config. Raises ``FileNotFoundError`` or :class:`ModelLoadError`, each naming the file."""
    path = Path(path)
    if path.name == WEIGHTS_FILE and path.is_file() and (path.parent / CONFIG_FILE).is_file():
        path = path.parent
    if path.is_dir():
        if not is_model_folder(path):
            raise ModelLoadError(
                f"{path} is a folder without {CONFIG_FILE} or {WEIGHTS_FILE}; pass a checkpoint file or a folder "
                "written by laformer-export --format safetensors"
            )
        return load_model_folder(path)
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint not found: {path} (pass a checkpoint file, a model folder or a weights file)"
        )
    if path.suffix.lower() == ".safetensors":  # a published network in safetensors
        return published_network(read_safetensors(path), source=str(path))
    return network_from_checkpoint(load_checkpoint(path), str(path), fallback_config)
