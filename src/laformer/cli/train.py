"""``laformer-train``: fit a restoration model from composed Hydra configs. No arguments runs the demo."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from laformer.cli.common import finish_loggers, hydra_choices, hydra_overrides, instantiate_all, join_run_log
from laformer.cli.errors import one_line_errors
from laformer.config_checks import check_patch_sizes, check_run_config
from laformer.dashboards import log_run_config, prepare_wandb, run_keys
from laformer.models.registry import network_info
from laformer.runs import (
    BUSY_EXIT_STATUS,
    RunFolderBusy,
    config_dir,
    lock_run_folder,
    register_resolvers,
    write_summary,
)
from laformer.sweeps import resume_sweep_job
from laformer.training.anchors import ClassicalAnchors
from laformer.training.callbacks import StoreNetConfig, TrainingThroughput

register_resolvers()

# Exit status after a SIGTERM (128 + 15, the shell's convention): "stopped, not finished; resume me".
SIGTERM_EXIT_STATUS = 143


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (and optionally test) as ``cfg`` says; write and return the run summary.

    The run folder is locked for the whole run (``laformer.runs.lock_run_folder``): a second training started
    in the same folder raises :class:`~laformer.runs.RunFolderBusy` before it reads or writes anything there.
    """
    run_dir = Path(cfg.paths.output_dir)
    with lock_run_folder(run_dir):
        return _train(cfg, run_dir)


def _train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    check_run_config(cfg)  # bad values of the common keys: one line, before any logger, worker or network
    if (finished := resume_sweep_job(cfg)) is not None:  # a multirun job done in an earlier run: laformer.sweeps
        return finished
    start = time.perf_counter()
    join_run_log()
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    module: L.LightningModule = hydra.utils.instantiate(cfg.module)
    info = network_info(module.net)
    check_patch_sizes(training_patch_sizes(cfg.data), info.size_multiple, info.family)
    keys = run_keys(cfg, module.net)  # flat keys for dashboards and the sweep table
    prepare_wandb(cfg, keys)
    net_config = OmegaConf.to_container(cfg.model, resolve=True)
    throughput = TrainingThroughput()
    callbacks = [*instantiate_all(cfg.get("callbacks")), StoreNetConfig(net_config), throughput]
    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log_run_config(loggers, cfg, keys)

    test_metrics: dict[str, float] = {}
    try:
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        except SIGTERMException:
            # The checkpoint callback has saved last.ckpt; no summary, as the run is not finished.
            raise SystemExit(SIGTERM_EXIT_STATUS) from None
        fit_metrics = _metrics(trainer)
        if cfg.get("test_after_fit"):
            trainer.test(module, datamodule=datamodule, ckpt_path="best" if _has_best(trainer) else None)
            test_metrics = {k: v for k, v in _metrics(trainer).items() if k.startswith("test/")}
    finally:
        finish_loggers(loggers)

    checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    anchors = next((c for c in trainer.callbacks if isinstance(c, ClassicalAnchors) and c.methods), None)
    summary = {
        **keys,
        "task": "train",
        "model": hydra_choices().get("model", net_config.get("name")),
        "attention": net_config.get("attention"),
        "net": net_config,
        "precision": str(trainer.precision),
        "data": hydra_choices().get("data", cfg.data.get("_target_")),
        "experiment": hydra_choices().get("experiment"),
        "overrides": hydra_overrides(),
        "steps": trainer.global_step,
        "metrics": {**fit_metrics, **test_metrics},
        "input_psnr": fit_metrics.get("val/input_psnr"),
        "best_checkpoint": checkpoint.best_model_path if checkpoint else None,
        "best_score": float(checkpoint.best_model_score) if checkpoint and checkpoint.best_model_score else None,
        "last_checkpoint": checkpoint.last_model_path if checkpoint else None,
        "parameters": sum(p.numel() for p in module.parameters()),
        "skipped_nonfinite": int(getattr(module, "skipped_nonfinite", 0)),
        "throughput": throughput.summary(trainer.world_size),
        # NL-means / BM3D beside the network (their scores are in metrics): methods, skipped ones and why
        "anchors": anchors.summary() if anchors is not None else None,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_summary(run_dir, summary)
    return summary


def _has_best(trainer: L.Trainer) -> bool:
    checkpoint = trainer.checkpoint_callback
    return bool(checkpoint is not None and getattr(checkpoint, "best_model_path", ""))


def training_patch_sizes(data: DictConfig) -> list[int]:
    """The crop sides a run trains on: ``data.patch_size`` and each progressive stage's."""
    stages = data.get("progressive") or []
    sizes = [data.get("patch_size"), *(stage.get("patch_size") for stage in stages)]
    return [int(size) for size in sizes if isinstance(size, int)]


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    resume = f"free some space, then resume with ckpt_path=last hydra.run.dir={cfg.paths.output_dir}"
    try:
        with one_line_errors("laformer-train", disk_hint=resume):
            summary = train(cfg)
    except RunFolderBusy as busy:
        # One line on stderr, not the log: the log file belongs to the training that holds the folder.
        print(f"laformer-train: error: {busy}", file=sys.stderr, flush=True)
        raise SystemExit(BUSY_EXIT_STATUS) from None
    return summary["metrics"].get("val/psnr")


if __name__ == "__main__":
    main()
