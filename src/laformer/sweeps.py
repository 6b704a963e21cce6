"""Resumable jobs: rerunning the same sweep command (or study) finishes what the last run left.

Two pieces make a Hydra multirun resumable; the second also serves studies that start their own ``laformer-train``
jobs (``experiments/frontier``) through :func:`start_job`.

- **A sweep folder named by the sweep, not by the time.** ``hydra.sweep.dir`` is
  ``<outputs>/<task>/multiruns/<name>`` (the resolver ``sweep_name``): the command line's overrides (sorted) and
  the sweep parameters of the config (``hydra.sweeper.params``), as a readable slug plus a hash of both. The same
  command therefore lands in the same folder, with the same job numbers; a different command, or an edited sweep
  axis, in another. ``hydra.sweep.dir=<folder>`` still picks any folder. (The name is made in ``laformer.runs``,
  which owns folder names and registers the resolver; this module uses it, never the other way round.)
- **Each job checks its folder before it starts** (:func:`resume_sweep_job`, called first thing by
  ``laformer-train`` once it holds the folder's lock, through :func:`prepare_job` and :func:`start_job`):

  - ``summary.json`` is there, readable, and was written by a job with the same overrides: the job finished in an
    earlier run, so it is skipped and its summary returned (the sweep's table and report still see it). A damaged
    summary counts as missing (``laformer.runs.read_summary``);
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
running at the same time share the folder: the second is refused at the first job the other one holds
(``laformer.runs.lock_run_folder``); give it its own ``hydra.sweep.dir``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from laformer.io_atomic import atomic_write_json
from laformer.runs import (  # noqa: F401 - the folder names, re-exported where they were first defined
    LAST_CHECKPOINT,
    SLUG_CHARS,
    SUMMARY_FILE,
    last_checkpoint,
    read_summary,
    register_sweep_resolver,
    sweep_folder_name,
    sweep_name,
)

JOB_FILE = "sweep_job.json"
# Config keys (and overrides) that may differ between attempts of one job: the resume point itself.
VOLATILE_KEYS = ("ckpt_path",)
SWEEP_FIX = "choose another hydra.sweep.dir"


# -- each job: skip, resume or start --------------------------------------------------------------------------
class SweepJobMismatch(RuntimeError):
    """A job's folder holds another job, or this job under a different config."""


@dataclass(frozen=True)
class JobStart:
    """What a job's folder says before the job runs: skip it, resume it, or start it afresh."""

    finished: dict[str, Any] | None = None  # the earlier run's summary: the job is done, skip it
    resume_from: Path | None = None  # else the checkpoint to go on from (None: start from scratch)
    step: int | None = None  # the step that checkpoint was saved at


def _say(line: str) -> None:
    print(line, flush=True)


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
    """Skip, resume or start the job whose folder is ``job_dir`` and whose config is ``cfg`` (:func:`start_job`).

    Returns the finished job's summary to skip it, else None (and then ``cfg.ckpt_path`` names the checkpoint
    to resume from, if any). Raises :class:`SweepJobMismatch` when the folder belongs to another job or config.
    """
    start = start_job(job_dir, overrides, job_config(cfg), resume=resume)
    if start.resume_from is not None:
        with open_dict(cfg):
            cfg.ckpt_path = str(start.resume_from)
    return start.finished


def start_job(
    job_dir: str | Path,
    overrides: list[str],
    config: dict[str, str] | None = None,
    *,
    resume: bool = True,
    label: str = "Sweep job",
    fix: str = SWEEP_FIX,
    log: Callable[[str], Any] | None = _say,
) -> JobStart:
    """Decide how the job ``overrides`` runs in ``job_dir`` (see the module docstring), and record the attempt.

    The one implementation of "skip finished, refuse changed, resume from the last checkpoint", for Hydra
    multiruns (:func:`prepare_job`) and for studies that launch ``laformer-train`` themselves. ``config`` is the
    job's flattened resolved config (:func:`job_config`); a caller that cannot resolve it passes None, and then
    the overrides alone identify the job. ``label`` starts the printed lines; ``fix`` ends each refusal (the
    other place to run in, e.g. ``pass another --out``); ``log`` prints what was decided (None: the caller says it).
    Call it while holding the folder (the job's own process
    holds ``laformer.runs.lock_run_folder``), as it writes :data:`JOB_FILE`.

    Raises :class:`SweepJobMismatch` when the folder's summary or checkpoint belongs to another job or config.
    """
    job_dir = Path(job_dir)
    record, summary = read_json(job_dir / JOB_FILE), read_summary(job_dir)
    if summary is not None:
        check_same_job(job_dir, summary.get("overrides") or [], overrides, "finished", fix)
        if record is not None and config is not None:
            check_same_config(job_dir, record.get("config") or {}, config, fix=fix)
        if log is not None:
            log(f"{label} {job_dir} finished in an earlier run of this sweep ({SUMMARY_FILE}): skipped")
        return JobStart(finished=summary)
    last = last_checkpoint(job_dir)  # the run folder's resume point (laformer.runs)
    resuming = resume and last is not None
    if resuming and record is None:
        raise SweepJobMismatch(
            f"{job_dir} holds {LAST_CHECKPOINT} but no {JOB_FILE} saying which job wrote it (a sweep folder from "
            f"before resumable sweeps, or another program's). Delete the folder to rerun the job, or {fix}"
        )
    if resuming:  # only a checkpoint to continue from has to belong to this very job and config
        check_same_job(job_dir, record.get("overrides") or [], overrides, "unfinished", fix)
        if config is not None:
            check_same_config(job_dir, record.get("config") or {}, config, fix=fix)
    elif record is not None and _identity(record.get("overrides") or []) != _identity(overrides):
        record = None  # nothing to reuse from another job that never saved a checkpoint: start this one afresh
    attempt: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    step = None
    if resuming:
        step = checkpoint_step(last)
        attempt["resumed_from"] = {"checkpoint": str(last), "step": step}
        if log is not None:
            log(f"{label} {job_dir}: resuming from step {step} of an earlier run ({last})")
    attempts = [*(record or {}).get("attempts", []), attempt]
    written: dict[str, Any] = {"overrides": list(overrides), "config": config or {}, "attempts": attempts}
    write_json(job_dir / JOB_FILE, written)
    return JobStart(resume_from=last if resuming else None, step=step)


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


def _identity(overrides: list[Any]) -> list[str]:
    """The overrides that say which job this is: sorted, without the resume point (a resumed job that launches
    ``laformer-train`` itself passes ``ckpt_path=...``, and its summary records it)."""
    kept = (str(item) for item in overrides)
    return sorted(item for item in kept if item.split("=", 1)[0].lstrip("+~") not in VOLATILE_KEYS)


def check_same_job(job_dir: Path, recorded: list[str], overrides: list[str], state: str, fix: str = SWEEP_FIX) -> None:
    """Refuse a folder holding a job with other overrides (:func:`_identity`) than this one."""
    if _identity(recorded) != _identity(overrides):
        raise SweepJobMismatch(
            f"{job_dir} holds an {state} job with other overrides ({' '.join(recorded) or 'none'}) than this one "
            f"({' '.join(overrides) or 'none'}): the sweep's jobs changed since it ran. Delete that folder to "
            f"rerun it, or {fix}"
        )


def check_same_config(
    job_dir: Path, recorded: dict[str, str], config: dict[str, str], shown: int = 6, fix: str = SWEEP_FIX
) -> None:
    """Refuse a job whose config values changed since it ran; keys that only appeared or went away (a new
    option with its default, from newer code) are reported, not refused."""
    changed = sorted(key for key in recorded.keys() & config.keys() if recorded[key] != config[key])
    if changed:
        lines = [f"  {key}: {recorded[key]} -> {config[key]}" for key in changed[:shown]]
        more = f"\n  ... and {len(changed) - shown} more" if len(changed) > shown else ""
        raise SweepJobMismatch(
            f"{job_dir} holds this job under a different config ({len(changed)} values changed since it ran, e.g. a "
            "config file was edited):\n" + "\n".join(lines) + more + "\nDelete that folder to rerun the job with "
            f"the new config, or {fix}"
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
    """A JSON object from ``path``; None if the file is missing or damaged (then nothing of it is reused)."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` atomically (laformer.io_atomic): a kill never leaves half a file."""
    atomic_write_json(path, record)
