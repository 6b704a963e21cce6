"""``laformer-eval ckpt_path=... data=...``: score a checkpoint on a dataset's test sets.

Writes ``metrics.csv`` (one row per image) and ``summary.json`` in the run folder; ``save_images=true``
also writes the restored images under ``images/<set>/``.
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig, OmegaConf

from laformer.cli.common import finish_loggers, hydra_choices, hydra_overrides, instantiate_all
from laformer.cli.errors import one_line_errors
from laformer.config_checks import check_run_config
from laformer.inference.checkpoint import load_network
from laformer.inference.compiled import DEFAULT_SHAPES, compile_network
from laformer.models.registry import network_info
from laformer.runs import config_dir, register_resolvers, write_summary
from laformer.sweeps import resume_sweep_job

register_resolvers()


def per_set_means(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[record["set"]].append(record)
    keys = ("psnr", "ssim", "input_psnr")
    return {
        s: {k: sum(r[k] for r in rows) / len(rows) for k in keys} | {"images": len(rows)} for s, rows in grouped.items()
    }


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["set", "name", "psnr", "ssim", "input_psnr"])
        writer.writeheader()
        writer.writerows(records)


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"\n{'benchmark':<24}{'images':>8}{'input PSNR':>12}{'PSNR':>10}{'SSIM':>10}")
    for name, r in results.items():
        print(f"{name:<24}{r['images']:>8}{r['input_psnr']:>12.2f}{r['psnr']:>10.2f}{r['ssim']:>10.4f}")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    if (finished := resume_sweep_job(cfg, resume=False)) is not None:  # scored in an earlier run of this multirun
        return finished
    start = time.perf_counter()
    run_dir = Path(cfg.paths.output_dir)
    # Any file the door takes; an old checkpoint without a stored network config is built from this run's `model`.
    net, net_config = load_network(cfg.ckpt_path, fallback_config=OmegaConf.to_container(cfg.model, resolve=True))
    info = network_info(net)
    # compile=on scores through torch.compile (dynamic shapes: test photos differ in size); the scores are the
    # network's own either way, and the plain network stays inside the compiled one for Lightning to move.
    mode = cfg.get("compile", "off")
    mode = {True: "on", False: "off"}.get(mode, mode) if isinstance(mode, bool) else str(mode)  # compile=true works too
    scored = compile_network(net, mode, shapes=str(cfg.get("compile_shapes", DEFAULT_SHAPES)))
    module = hydra.utils.instantiate(cfg.module, net=scored)
    if cfg.get("save_images"):
        module.image_dir = str(run_dir / "images")
    datamodule = hydra.utils.instantiate(cfg.data)
    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[RichProgressBar()], logger=loggers or False)
    predictions = None
    try:
        if getattr(datamodule, "prediction_only", False):  # no ground truth (DND): write the submission files
            outputs = trainer.predict(module, datamodule=datamodule)
            predictions = run_dir / "submission"
            if trainer.is_global_zero:
                written = datamodule.write_predictions(outputs, predictions)
                print(f"{len(written)} prediction files written to {predictions} (no ground truth to score here)")
        else:
            trainer.test(module, datamodule=datamodule)
    finally:
        finish_loggers(loggers)

    results = per_set_means(module.test_records)
    summary = {
        "task": "eval",
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "model": info.preset or net_config.get("name"),
        "family": info.family,
        "attention": info.attention,
        "data": hydra_choices().get("data", cfg.data.get("_target_")),
        "overrides": hydra_overrides(),
        "self_ensemble": bool(cfg.module.get("self_ensemble")),
        "benchmarks": results,
        "predictions": str(predictions) if predictions else None,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_records(run_dir / "metrics.csv", module.test_records)
        print_table(results)
        print(f"Per-image metrics written to {run_dir / 'metrics.csv'}")
        write_summary(run_dir, summary)
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> None:
    with one_line_errors("laformer-eval", disk_hint="free some space and score again"):
        check_run_config(cfg)
        evaluate(cfg)


if __name__ == "__main__":
    main()
