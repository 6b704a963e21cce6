"""Run bookkeeping shared by the entry points: config location, run summaries, sweep tables."""

from __future__ import annotations

import csv
import json
import os
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

SUMMARY_FILE = "summary.json"
SWEEP_TABLE = "sweep_summary.csv"


def config_dir() -> str:
    """The project's ``conf/`` folder: ``$LAFORMER_CONFIG_DIR``, else the checkout this package lives in."""
    candidates = [os.environ.get("LAFORMER_CONFIG_DIR"), Path(__file__).resolve().parents[2] / "conf"]
    for candidate in candidates:
        if candidate and Path(candidate, "train.yaml").is_file():
            return str(Path(candidate).resolve())
    raise FileNotFoundError(
        "cannot find the Hydra configs (conf/train.yaml): install the project with `pip install -e .` from its "
        "checkout, or set LAFORMER_CONFIG_DIR to the folder holding train.yaml"
    )


def register_resolvers() -> None:
    """``${uid:}``: a short random id, resolved once per config (its cache carries into multirun jobs), so
    output folders of jobs started in the same second never collide. ``sweep_name``: see laformer.sweeps."""
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: uuid.uuid4().hex[:6], use_cache=True)
    from laformer.sweeps import register_sweep_resolver  # a multirun's folder, named by the sweep

    register_sweep_resolver()


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_summary(run_dir: str | Path, summary: dict[str, Any]) -> Path:
    path = Path(run_dir) / SUMMARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(summary), indent=2, default=str) + "\n")
    print(f"Run summary written to {path}")
    return path


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = " ".join(map(str, value))
        else:
            flat[name] = value
    return flat


def collect_sweep(sweep_dir: str | Path) -> Path | None:
    """One CSV row per job summary found under ``sweep_dir``; returns the table's path (None if no job)."""
    sweep_dir = Path(sweep_dir)
    rows = [flatten(json.loads(p.read_text())) for p in sorted(sweep_dir.glob(f"*/{SUMMARY_FILE}"))]
    if not rows:
        return None
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path = sweep_dir / SWEEP_TABLE
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"Sweep table of {len(rows)} jobs written to {path}")
    return path


class CollectSweepSummaries(HydraCallback):
    """Hydra callback: at the end of a multirun, gather every job's summary.json into one CSV."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        table = collect_sweep(config.hydra.sweep.dir)
        wandb_cfg = (config.get("logger") or {}).get("wandb")
        if table is not None and wandb_cfg is not None:
            from laformer.dashboards import log_sweep_table

            log_sweep_table(config.hydra.sweep.dir, table, wandb_cfg)
