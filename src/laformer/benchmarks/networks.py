"""Every network a study measures, built one way: composed ``model=`` configs, built through the registry.

A study names a network by the ``laformer-train`` overrides that train it (``["model=nafnet",
"model.preset=small"]``), so what is timed is what is trained. The composed model config is built by
``laformer.models.build_network``, the same seam that loads checkpoints. :func:`model_overrides` turns the short
names of the command lines (a LAformer preset and an attention, or ``FAMILY:PRESET`` for a peer) into overrides.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

PEER_ATTENTION = "-"  # the attention column of peer networks, which have none


def model_overrides(name: str, attention: str | None = None) -> list[str]:
    """``("tiny", "rela")`` -> ``[model=tiny, model.attention=rela]``; ``"nafnet:small"`` -> ``[model=nafnet,
    model.preset=small]`` (a peer family and its preset; ``attention`` is ignored)."""
    if ":" in name:
        family, preset = name.split(":", 1)
        return [f"model={family}", f"model.preset={preset or 'base'}"]
    overrides = [f"model={name}"]
    if attention and attention != PEER_ATTENTION:
        overrides.append(f"model.attention={attention}")
    return overrides


def compose_train_config(overrides: Sequence[str], run_dir: str | Path | None = None, job_id: str = "benchmark") -> Any:
    """The ``train`` config of ``laformer-train <overrides>``, composed as Hydra composes it.

    With ``run_dir``: as ``hydra.main`` hands it to ``laformer.cli.train.train(cfg)`` for an in-process run, the
    Hydra runtime set (output folder ``run_dir``, job number and id, readable through ``HydraConfig``) and the
    ``hydra`` node removed. Without: the plain config, and Hydra's global state cleared again.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from laformer.runs import config_dir, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=run_dir is not None)
    finally:
        if run_dir is None:
            GlobalHydra.instance().clear()
    if run_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.num = 0
            cfg.hydra.job.id = job_id
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def has_model_config(name: str) -> bool:
    """Whether ``model=<name>`` names a config of the checkout (``conf/model/<name>.yaml``)."""
    from laformer.runs import config_dir

    return (Path(config_dir()) / "model" / f"{name}.yaml").is_file()


@functools.lru_cache(maxsize=256)
def _composed(overrides: tuple[str, ...]) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_train_config(overrides).model, resolve=True)


def network_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The model config ``laformer-train <overrides>`` builds (composed as Hydra composes it; cached)."""
    return dict(_composed(tuple(str(o) for o in overrides)))


def build(overrides: Sequence[str], seed: int | None = 0, source: str | None = None) -> nn.Module:
    """The network of ``overrides``, built through the registry; ``seed`` fixes its initial weights."""
    import torch

    from laformer.models import build_network

    config = network_config(overrides)
    if seed is not None:
        torch.manual_seed(seed)
    return build_network(config, source=source or " ".join(overrides))


def cost(overrides: Sequence[str], height: int = 256, width: int = 256) -> tuple[float, float]:
    """(parameters in millions, MACs in billions at height x width), counted on the meta device."""
    return cost_of_config(network_config(overrides), height, width)


@functools.lru_cache(maxsize=256)
def _cost(config_repr: str, height: int, width: int) -> tuple[float, float]:
    import ast

    from laformer.models import build_network
    from laformer.models.complexity import count_macs, count_parameters

    net = build_network(ast.literal_eval(config_repr), source="a network config")
    return count_parameters(net) / 1e6, count_macs(net, height, width) / 1e9


def cost_of_config(config: dict[str, Any], height: int = 256, width: int = 256) -> tuple[float, float]:
    """:func:`cost` of a model config (a job summary's ``net``); cached per config and size."""
    return _cost(repr(dict(sorted(config.items()))), height, width)
