"""Rebuild the restoration network from a ``laformer-train`` checkpoint alone.

Every checkpoint written by ``laformer-train`` carries the network's config beside its weights (the
``StoreNetConfig`` callback), so restoring, exporting or evaluating needs only the checkpoint path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from torch import nn

from laformer.training.callbacks import StoreNetConfig

NET_PREFIX = "net."  # RestorationModule keeps the network as ``self.net``


class CheckpointError(ValueError):
    """A checkpoint that cannot rebuild the network; the message says why and what to do."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (pass the path of a run's checkpoints/last.ckpt)")
    return torch.load(path, map_location="cpu", weights_only=False)


def stored_net_config(checkpoint: dict[str, Any], source: str = "the checkpoint") -> dict[str, Any]:
    """The network config that ``StoreNetConfig`` wrote into the checkpoint."""
    config = checkpoint.get(StoreNetConfig.KEY)
    if not config:
        raise CheckpointError(
            f"{source} holds no network config (key {StoreNetConfig.KEY!r}): it was not written by laformer-train; "
            "retrain, or load the weights into a network you build yourself"
        )
    return dict(config)


def net_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's weights: the ``net.`` entries of a Lightning checkpoint's ``state_dict``."""
    state = checkpoint.get("state_dict", checkpoint)
    net_state = {k[len(NET_PREFIX) :]: v for k, v in state.items() if k.startswith(NET_PREFIX)}
    if not net_state:
        raise CheckpointError("the checkpoint's state_dict has no 'net.*' weights; is it a laformer-train checkpoint?")
    return net_state


def load_network(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode on the CPU, its config)`` from a checkpoint path."""
    checkpoint = load_checkpoint(path)
    config = stored_net_config(checkpoint, source=str(path))
    net: nn.Module = hydra.utils.instantiate(config)
    net.load_state_dict(net_state_dict(checkpoint))
    return net.eval(), config
