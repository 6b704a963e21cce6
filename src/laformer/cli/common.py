"""Pieces both entry points need: instantiating config collections, Hydra runtime facts, wandb cleanup."""

from __future__ import annotations

from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, open_dict


def instantiate_all(collection: DictConfig | None) -> list[Any]:
    """Instantiate each ``_target_`` entry of a mapping (callbacks, loggers); null entries are skipped."""
    if not collection:
        return []
    return [hydra.utils.instantiate(node) for node in collection.values() if node and "_target_" in node]


def hydra_choices() -> dict[str, str]:
    """The config-group choices of this run (``model``, ``data``, ...), when running under Hydra."""
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}


def hydra_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def group_wandb_by_sweep(cfg: DictConfig) -> None:
    """In a multirun, every job's wandb run joins a group named after the sweep folder."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if wandb_cfg is not None:
        from pathlib import Path

        with open_dict(wandb_cfg):
            wandb_cfg.group = wandb_cfg.get("group") or Path(HydraConfig.get().sweep.dir).name
            wandb_cfg.name = ",".join(hydra_overrides()) or wandb_cfg.get("name")


def finish_loggers(loggers: list[Logger]) -> None:
    """Close each wandb run, so the next multirun job starts its own instead of appending to this one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            if wandb.run is not None:
                wandb.finish()
