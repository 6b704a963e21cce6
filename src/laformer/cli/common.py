"""Pieces both entry points need: instantiating config collections, Hydra runtime facts, wandb cleanup."""

from __future__ import annotations

import logging
import warnings
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


def join_run_log() -> None:
    """Send Lightning's messages and Python warnings to Hydra's log: the console and ``<run>/<task>.log``.

    Lightning gives its loggers a console handler of their own at import and stops them propagating, so the run
    folder's ``train.log`` stayed empty. Step-budgeted runs rebuild their loader every epoch, and Lightning then
    repeats its "smaller than the logging interval" warning each time: it is shown once. Lightning's advertising
    tips (cloud logging, a model registry) and a deprecation inside Lightning's own code say nothing about the run
    and pushed our own errors off the screen: they are left out.
    """
    if not HydraConfig.initialized() or not logging.getLogger().handlers:
        return
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            if type(handler) is logging.StreamHandler:
                library.removeHandler(handler)
        library.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_drop_tips)
    logging.captureWarnings(True)
    warnings.filterwarnings("once", message=r"The number of training batches .* is smaller than the logging interval")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def _drop_tips(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")
