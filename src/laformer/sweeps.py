"""Sweeps that survive interruptions: rerunning the same sweep command finishes what the last run left.

Two pieces make a Hydra multirun resumable.

- **A sweep folder named by the sweep, not by the time.** ``hydra.sweep.dir`` is
  ``<outputs>/<task>/multiruns/<name>`` (the resolver ``sweep_name``): the command line's overrides (sorted) and
  the sweep parameters of the config (``hydra.sweeper.params``), as a readable slug plus a hash of both. The same
  command therefore lands in the same folder, with the same job numbers; a different command, or an edited sweep
  axis, in another. ``hydra.sweep.dir=<folder>`` still picks any folder.
- **Each job checks its folder before it starts** (:func:`resume_sweep_job`, called first thing by
  ``laformer-train``):

  - ``summary.json`` is there and was written by a job with the same overrides: the job finished in an earlier
    run, so it is skipped and its summary returned (the sweep's table and report still see it);
  - no summary, but ``checkpoints/last.ckpt`` of the same job: it resumes from that checkpoint
    (``ckpt_path``), to the same ``trainer.max_steps``;
  - an empty folder: it starts from scratch.

  Each job records who it is in ``sweep_job.json`` (its overrides, its resolved config and every attempt). A
  summary or checkpoint written by a different job, or by this job under changed config values (a config file
  edited between the runs), is refused with the keys that differ, never silently mixed: delete that job's folder
  to rerun it, or choose another ``hydra.sweep.dir``. Keys that only appeared or went away (a new option at its
  default, from newer code) are reported and let through. A job that failed before its first checkpoint has
  nothing to reuse and simply starts again, under whatever config it has now.

A job killed at any moment loses at most the steps since its last ``last.ckpt``
(``callbacks.model_checkpoint.last_every_n_steps``); checkpoints and these records are written atomically.
Only the code is not fingerprinted: after changing it, start a fresh sweep folder. Two copies of one sweep command
running at the same time would share the folder: give the second its own ``hydra.sweep.dir``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from laformer.runs import SUMMARY_FILE

JOB_FILE = "sweep_job.json"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
# Config keys that may differ between attempts of one job: the resume point itself.
VOLATILE_KEYS = ("ckpt_path",)
SLUG_CHARS = 80


class SweepJobMismatch(RuntimeError):
    """A sweep job's folder holds another job, or this job under a different config."""


# -- the sweep folder's name --------------------------------------------------------------------------------
def sweep_folder_name(overrides: list[str], params: dict[str, Any] | None = None) -> str:
    """``<slug>-<hash>``: the sorted command-line overrides as a file-name-safe slug (cut to 80 characters),
    and 8 hex digits of a hash of the overrides and the sweep parameters. No overrides: ``sweep-<hash>``."""
    overrides = sorted(str(item) for item in overrides)
    params = {str(k): str(v) for k, v in sorted((params or {}).items())}
    identity = json.dumps({"overrides": overrides, "params": params}, sort_keys=True)
    digest = hashlib.sha1(identity.encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", "_".join(overrides)).strip("-_")[:SLUG_CHARS].rstrip("-_")
    return f"{slug or 'sweep'}-{digest}"


def sweep_name(overrides: Any = None, params: Any = None) -> str:
    """OmegaConf resolver for ``hydra.sweep.dir``, called as
    ``${sweep_name:${hydra.overrides.task},${oc.select:hydra.sweeper.params,null}}``: the sweep's folder name.

    Cached (``use_cache``, keyed by the arguments as written): Hydra copies the sweep config's resolver cache
    into every job's config, so each job resolves the name its sweep had, not one made of its own overrides.
    """
    if isinstance(overrides, DictConfig | ListConfig):
        overrides = OmegaConf.to_container(overrides, resolve=True)
    if isinstance(params, DictConfig | ListConfig):
        params = OmegaConf.to_container(params, resolve=True)
    return sweep_folder_name(list(overrides or []), dict(params or {}))


def register_sweep_resolver() -> None:
    if not OmegaConf.has_resolver("sweep_name"):
        OmegaConf.register_new_resolver("sweep_name", sweep_name, use_cache=True)


# -- each job: skip, resume or start --------------------------------------------------------------------------
def resume_sweep_job(cfg: DictConfig, resume: bool = True) -> dict[str, Any] | None:
    """In a multirun job: the earlier ``summary.json`` if this job already finished (skip it), else None.

    With ``resume``, an unfinished earlier attempt's ``checkpoints/last.ckpt`` becomes ``cfg.ckpt_path``.
    Outside a multirun it does nothing and returns None.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hydra_cfg = HydraConfig.get()
    return prepare_job(cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task), resume)


def prepare_job(cfg: DictConfig, job_dir: Path, overrides: list[str], resume: bool = True) -> dict[str, Any] | None:
    """Skip, resume or start the job whose folder is ``job_dir`` (see the module docstring).

    Returns the finished job's summary to skip it, else None (and then ``cfg.ckpt_path`` names the checkpoint
    to resume from, if any). Raises :class:`SweepJobMismatch` when the folder belongs to another job or config.
    """
    job_dir = Path(job_dir)
    config = job_config(cfg)
    record, summary = read_json(job_dir / JOB_FILE), read_json(job_dir / SUMMARY_FILE)
    if summary is not None:
        check_same_job(job_dir, summary.get("overrides") or [], overrides, "finished")
        if record is not None:
            check_same_config(job_dir, record.get("config") or {}, config)
        print(f"Sweep job {job_dir} finished in an earlier run of this sweep ({SUMMARY_FILE}): skipped", flush=True)
        return summary
    last = job_dir / LAST_CHECKPOINT
    resuming = resume and last.is_file()
    if resuming and record is None:
        raise SweepJobMismatch(
            f"{job_dir} holds {LAST_CHECKPOINT} but no {JOB_FILE} saying which job wrote it (a sweep folder from "
            "before resumable sweeps, or another program's). Delete the folder to rerun the job, or choose "
            "another hydra.sweep.dir"
        )
    if resuming:  # only a checkpoint to continue from has to belong to this very job and config
        check_same_job(job_dir, record.get("overrides") or [], overrides, "unfinished")
        check_same_config(job_dir, record.get("config") or {}, config)
    elif record is not None and sorted(record.get("overrides") or []) != sorted(overrides):
        record = None  # nothing to reuse from another job that never saved a checkpoint: start this one afresh
    attempt: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if resuming:
        step = checkpoint_step(last)
        with open_dict(cfg):
            cfg.ckpt_path = str(last)
        attempt["resumed_from"] = {"checkpoint": str(last), "step": step}
        print(f"Sweep job {job_dir}: resuming from step {step} of an earlier run ({last})", flush=True)
    attempts = [*(record or {}).get("attempts", []), attempt]
    write_json(job_dir / JOB_FILE, {"overrides": list(overrides), "config": config, "attempts": attempts})
    return None


def job_config(cfg: DictConfig) -> dict[str, str]:
    """The job's resolved config, flattened to ``{"a.b.c": "value"}`` strings, without :data:`VOLATILE_KEYS`."""
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    flat = _flatten(container)
    return {k: v for k, v in flat.items() if k.split(".", 1)[0] not in VOLATILE_KEYS}


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out or {prefix[:-1]: "{}"}
    return {prefix[:-1]: json.dumps(value, sort_keys=True, default=str)}


def check_same_job(job_dir: Path, recorded: list[str], overrides: list[str], state: str) -> None:
    if sorted(map(str, recorded)) != sorted(map(str, overrides)):
        raise SweepJobMismatch(
            f"{job_dir} holds an {state} job with other overrides ({' '.join(recorded) or 'none'}) than this one "
            f"({' '.join(overrides) or 'none'}): the sweep's jobs changed since it ran. Delete that folder to "
            "rerun it, or choose another hydra.sweep.dir"
        )


def check_same_config(job_dir: Path, recorded: dict[str, str], config: dict[str, str], shown: int = 6) -> None:
    """Refuse a job whose config values changed since it ran; keys that only appeared or went away (a new
    option with its default, from newer code) are reported, not refused."""
    changed = sorted(key for key in recorded.keys() & config.keys() if recorded[key] != config[key])
    if changed:
        lines = [f"  {key}: {recorded[key]} -> {config[key]}" for key in changed[:shown]]
        more = f"\n  ... and {len(changed) - shown} more" if len(changed) > shown else ""
        raise SweepJobMismatch(
            f"{job_dir} holds this job under a different config ({len(changed)} values changed since it ran, e.g. a "
            "config file was edited):\n" + "\n".join(lines) + more + "\nDelete that folder to rerun the job with "
            "the new config, or choose another hydra.sweep.dir"
        )
    if new_or_gone := sorted(recorded.keys() ^ config.keys()):
        print(
            f"Sweep job {job_dir}: config keys added or removed since it ran (same values otherwise): "
            + ", ".join(new_or_gone[:shown])
            + (" ..." if len(new_or_gone) > shown else ""),
            flush=True,
        )


def checkpoint_step(path: Path) -> int | None:
    """The optimiser step a Lightning checkpoint was saved at (memory-mapped: the weights are not read)."""
    import torch

    try:
        return int(torch.load(path, map_location="cpu", mmap=True, weights_only=False)["global_step"])
    except Exception:
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` to ``<path>.tmp``, then rename it over ``path``: a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(tmp, path)
