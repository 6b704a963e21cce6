"""Pieces both entry points need: instantiating config collections, Hydra runtime facts, wandb cleanup."""

from __future__ import annotations

from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig


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


def finish_loggers(loggers: list[Logger]) -> None:
    """Close each wandb run, so the next multirun job starts its own instead of appending to this one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            if wandb.run is not None:
                wandb.finish()
