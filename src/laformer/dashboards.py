"""What each run tells wandb so that dashboards can filter, group and compare runs of a sweep.

The resolved config is nested (``model.attention``, ``data.degradation.sigma``), and its keys differ between
model families and datasets. Every run therefore also logs a few flat, top-level keys with the same names
everywhere (``family``, ``preset``, ``attention``, ``task``, ``dataset``, ``degradation``, ``sigma``,
``precision``, ``seed``, ``sweep_id``), defines the summary of each validation metric as its best value (a
runs table should show a run's best PSNR, not its last), tags the run with its experiment, and a sweep's
collected table goes to wandb as a Table.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from laformer.models.registry import network_info

# metric -> how its summary is computed ("max" for scores, "min" for losses)
SUMMARIES = {"val/psnr": "max", "val/ssim": "max", "val/input_psnr": "last", "train/loss": "min"}
SWEEP_TABLE_KEY = "sweep/summary"


def sweep_id() -> str | None:
    """The multirun's folder name, shared by its jobs; None outside a multirun."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def _choice(group: str) -> str | None:
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get(group)


def degradation_keys(data: DictConfig | dict) -> dict[str, Any]:
    """``degradation`` (class name, or ``real`` for datasets of real pairs) and its strength ``sigma``."""
    degradation = data.get("degradation") if data is not None else None
    if not degradation:
        return {"degradation": "real", "sigma": None}
    name = str(degradation.get("_target_", "custom")).rsplit(".", 1)[-1]
    sigma = degradation.get("sigma", degradation.get("noise_sigma"))
    if sigma is None and "low" in degradation and "high" in degradation:
        sigma = f"{degradation['low']}-{degradation['high']}"
    return {"degradation": name, "sigma": sigma}


def run_keys(cfg: DictConfig, net: nn.Module | None = None) -> dict[str, Any]:
    """The flat keys of one run, from its config and (when given) its network's descriptor."""
    try:
        info = network_info(net).as_dict() if net is not None else {}
    except TypeError:
        info = {}
    model = cfg.get("model") or {}
    data = cfg.get("data") or {}
    return {
        "family": info.get("family") or model.get("family") or "laformer",
        "preset": info.get("preset") or model.get("preset") or model.get("name"),
        "attention": info.get("attention") or model.get("attention"),
        "task": cfg.get("task_name"),
        "experiment": _choice("experiment"),
        "dataset": _choice("data") or data.get("name"),
        **degradation_keys(data),
        "precision": str((cfg.get("trainer") or {}).get("precision", "32-true")),
        "seed": cfg.get("seed"),
        "patch_size": data.get("patch_size"),
        "batch_size": data.get("batch_size"),
        "max_steps": (cfg.get("trainer") or {}).get("max_steps"),
        "sweep_id": sweep_id(),
    }


def prepare_wandb(cfg: DictConfig, keys: dict[str, Any]) -> None:
    """Before the logger is built: tags (experiment, task, family, dataset), and in a multirun the sweep's group
    and a run name made of the job's overrides."""
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if wandb_cfg is None:
        return
    tags = [str(t) for t in (wandb_cfg.get("tags") or [])]
    tags += [str(keys[k]) for k in ("experiment", "task", "family", "dataset") if keys.get(k)]
    with open_dict(wandb_cfg):
        wandb_cfg.tags = list(dict.fromkeys(tags))[:64]  # wandb allows 64 tags
        if keys.get("sweep_id"):
            wandb_cfg.group = wandb_cfg.get("group") or keys["sweep_id"]
            overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
            wandb_cfg.name = ",".join(overrides) or wandb_cfg.get("name")


def log_run_config(loggers: list[Logger], cfg: DictConfig, keys: dict[str, Any]) -> None:
    """The flat keys and the whole resolved config to every logger; on wandb also the summary definitions."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams({**keys, **config})
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            for metric, summary in SUMMARIES.items():
                run.define_metric(metric, summary=summary, step_metric="trainer/global_step")


def _typed(value: str) -> Any:
    """CSV cells back to numbers where they are numbers, so wandb can sort and plot the columns."""
    try:
        number = float(value)
    except ValueError:
        return value if value != "" else None
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def log_sweep_table(sweep_dir: str | Path, table: str | Path, wandb_cfg: DictConfig | dict | None) -> None:
    """A sweep's ``sweep_summary.csv`` as a wandb Table, in a run of its own in the sweep's group."""
    if not wandb_cfg:
        return
    import wandb

    with Path(table).open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        return
    columns, data = rows[0], [[_typed(value) for value in row] for row in rows[1:]]
    sweep_dir = Path(sweep_dir)
    run = wandb.init(
        project=wandb_cfg.get("project"),
        entity=wandb_cfg.get("entity"),
        dir=str(sweep_dir),
        mode="offline" if wandb_cfg.get("offline", True) else "online",
        group=wandb_cfg.get("group") or sweep_dir.name,
        job_type="sweep_summary",
        name=f"{sweep_dir.name}-summary",
        tags=[str(t) for t in (wandb_cfg.get("tags") or [])] + ["sweep-summary"],
        config={"sweep_id": sweep_dir.name, "jobs": len(data)},
        reinit="finish_previous",
    )
    run.log({SWEEP_TABLE_KEY: wandb.Table(columns=columns, data=data)})
    run.finish()
