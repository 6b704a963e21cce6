"""Rebuild a restoration network from a file someone gives us, treating the file as data, never as code.

Every checkpoint written by ``laformer-train`` carries the network's config beside its weights (the
``StoreNetConfig`` callback), so restoring, exporting or evaluating needs only the checkpoint path. Such files
travel between people, so they are read with ``torch.load(weights_only=True)`` (tensors and plain containers,
no arbitrary unpickling) and the stored config is built through :func:`laformer.models.build_network`, which
knows only the registered model families. Resuming a run from its own folder keeps Lightning's loader.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from laformer.models.registry import NetworkConfigError, build_network
from laformer.training.callbacks import StoreNetConfig

NET_PREFIX = "net."  # RestorationModule keeps the network as ``self.net``


class CheckpointError(ValueError):
    """A checkpoint that cannot rebuild the network; the message names the file, says why and what to do."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, on the CPU, loaded weights-only; corrupt, truncated or code-carrying files raise
    :class:`CheckpointError` with one line naming the file."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; pass a checkpoint file (a run's checkpoints/last.ckpt)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (pass the path of a run's checkpoints/last.ckpt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(
                f"{path} holds pickled Python objects besides tensors and plain values, and loading them could run "
                "code, so it is refused. If you trust its author, ask for a file re-saved with "
                "torch.save({'state_dict': ..., 'laformer_net_config': ...}) or a laformer-export safetensors folder"
            ) from None
        reason = _first_line(exc)
        raise CheckpointError(f"{path} is corrupt ({reason}); copy it again or use another checkpoint") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        size = path.stat().st_size
        raise CheckpointError(
            f"{path} ({size:,} bytes) is truncated or not a PyTorch checkpoint ({_first_line(exc)}); copy it again "
            "in full (an interrupted download or sync leaves such files) or use another checkpoint"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


def stored_net_config(checkpoint: dict[str, Any], source: str = "the checkpoint") -> dict[str, Any]:
    """The network config that ``StoreNetConfig`` wrote into the checkpoint."""
    config = checkpoint.get(StoreNetConfig.KEY)
    if not config:
        raise CheckpointError(
            f"{source} holds no network config (key {StoreNetConfig.KEY!r}): it was not written by laformer-train; "
            "retrain, or load the weights into a network you build yourself"
        )
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: its network config is a {type(config).__name__}, not a mapping")
    return dict(config)


def net_state_dict(checkpoint: dict[str, Any], source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """The network's weights: the ``net.`` entries of a Lightning checkpoint's ``state_dict``."""
    state = checkpoint.get("state_dict", checkpoint)
    net_state = {k[len(NET_PREFIX) :]: v for k, v in state.items() if k.startswith(NET_PREFIX)}
    if not net_state:
        raise CheckpointError(f"{source}: its state_dict has no 'net.*' weights; is it a laformer-train checkpoint?")
    return net_state


def is_suite_checkpoint(checkpoint: dict[str, Any]) -> bool:
    """Whether a checkpoint dict was written by laformer-train: a stored network config, or ``net.*`` weights."""
    if checkpoint.get(StoreNetConfig.KEY):
        return True
    state = checkpoint.get("state_dict")
    return isinstance(state, dict) and any(str(k).startswith(NET_PREFIX) for k in state)


def published_network(state: dict[str, Any], source: str) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode, its config)`` from a weights file its authors publish (NAFNet's, SwinIR's,
    Restormer's ``{'params': ...}``, DRUNet's bare state dict, ...), recognised by spandrel from the tensors.
    ``state`` was loaded weights-only by :func:`load_checkpoint`; spandrel never opens the file itself."""
    from laformer.models.peers import PeerUnavailableError, PublishedWeightsError, load_published

    try:
        return load_published(state, source=source)
    except PeerUnavailableError as exc:
        raise CheckpointError(
            f"{source} is not a laformer-train checkpoint (no {StoreNetConfig.KEY!r}); published network files are "
            f"recognised through spandrel, but {exc}"
        ) from None
    except PublishedWeightsError as exc:
        raise CheckpointError(str(exc)) from None


def network_from_checkpoint(checkpoint: dict[str, Any], source: str) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode, its config)`` from a loaded checkpoint dict; only registered families.

    A laformer-train checkpoint is rebuilt from its stored config; any other dict is taken for a published
    network file and recognised through spandrel (:func:`published_network`)."""
    if not is_suite_checkpoint(checkpoint):
        return published_network(checkpoint, source)
    config = stored_net_config(checkpoint, source=source)
    try:
        net = build_network(config, source=source)
    except NetworkConfigError as exc:
        raise CheckpointError(str(exc)) from None
    except TypeError as exc:  # a registered family given arguments it does not take
        raise CheckpointError(f"{source}: its network config does not fit {config.get('_target_')}: {exc}") from None
    try:
        net.load_state_dict(net_state_dict(checkpoint, source))
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not fit the stored network config ({_first_line(exc)})") from None
    return net.eval(), config


def load_network(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode on the CPU, its config)`` from a checkpoint file or a model folder
    (``laformer-export --format safetensors``; its ``model.safetensors`` may be named instead)."""
    from laformer.inference.model_folder import WEIGHTS_FILE, ModelFolderError, is_model_folder, load_model_folder

    path = Path(path)
    if path.name == WEIGHTS_FILE and path.is_file():
        path = path.parent
    if path.is_dir():
        if not is_model_folder(path):
            raise CheckpointError(
                f"{path} is a folder without config.json or model.safetensors; pass a checkpoint file or a folder "
                "written by laformer-export --format safetensors"
            )
        try:
            return load_model_folder(path)
        except ModelFolderError as exc:
            raise CheckpointError(str(exc)) from None
    if path.suffix.lower() == ".safetensors" and path.is_file():  # a published network in safetensors
        return published_network(load_safetensors(path), source=str(path))
    return network_from_checkpoint(load_checkpoint(path), source=str(path))


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file (tensors only: nothing in it can run code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is truncated or not a safetensors file ({_first_line(exc)})") from None
