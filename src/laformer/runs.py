"""One run folder: where a run's files are, how its summary is written and read, and who may use it.

A run folder (``hydra.run.dir``, or one job of a multirun) holds

- ``summary.json`` (:data:`SUMMARY_FILE`): written once, atomically, when the run finished. Readers take a present,
  readable summary to mean "finished"; a missing or damaged one (a kill during a write by older code, a disk that
  filled up) means "not finished" (:func:`read_summary`), so the job is resumed or rerun rather than skipped;
- ``checkpoints/last.ckpt`` (:data:`LAST_CHECKPOINT`, :func:`last_checkpoint`): where a stopped run resumes from;
- ``<task>.log`` (``train.log``, :func:`log_path`): Hydra's log of the run;
- ``run.lock`` (:data:`LOCK_FILE`, :func:`lock_run_folder`): held by the training that uses the folder, so a
  second training started in the same folder is refused instead of overwriting the first one's summary and log.

The same module knows the folder names (the ``uid`` and ``sweep_name`` resolvers of the configs) and gathers a
sweep's summaries into one table. ``laformer.sweeps`` builds resumable jobs on top of this module, never the other
way round.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import socket
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, ListConfig, OmegaConf

from laformer.io_atomic import atomic_write_json, atomic_write_text

try:
    import fcntl
except ImportError:  # not on Windows: folders are not locked there
    fcntl = None  # type: ignore[assignment]

SUMMARY_FILE = "summary.json"
SWEEP_TABLE = "sweep_summary.csv"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
LOCK_FILE = "run.lock"
# Exit status of a training refused because its folder is in use: a usage error, nothing was run or written.
BUSY_EXIT_STATUS = 2
SLUG_CHARS = 80
# Set (and not 0) in the processes a distributed launcher starts besides the first: they share the first one's
# folder and must not lock it against it. torchrun sets RANK, Lightning's launcher LOCAL_RANK and NODE_RANK, SLURM
# SLURM_PROCID.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


# -- configs and folder names --------------------------------------------------------------------------------------
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
    """The resolvers the configs' folder names use.

    ``${uid:}``: a short random id, resolved once per config (its cache carries into multirun jobs), so output
    folders of jobs started in the same second never collide. ``${sweep_name:...}``: :func:`sweep_name`.
    """
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: uuid.uuid4().hex[:6], use_cache=True)
    register_sweep_resolver()


def sweep_folder_name(overrides: list[str], params: dict[str, Any] | None = None) -> str:
    """``<slug>-<hash>``: the sorted command-line overrides as a file-name-safe slug (cut to 80 characters),
    and 8 hex digits of a hash of the overrides and the sweep parameters. No overrides: ``sweep-<hash>``.

    Named by the sweep, not by the time, so that rerunning the same sweep command finds its folder (and
    ``laformer.sweeps`` skips or resumes its jobs), while another command or an edited sweep axis gets another.
    """
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
    """Register :func:`sweep_name` as the ``sweep_name`` resolver (once)."""
    if not OmegaConf.has_resolver("sweep_name"):
        OmegaConf.register_new_resolver("sweep_name", sweep_name, use_cache=True)


# -- the folder's files --------------------------------------------------------------------------------------------
def summary_path(run_dir: str | Path) -> Path:
    """``<run_dir>/summary.json``."""
    return Path(run_dir) / SUMMARY_FILE


def log_path(run_dir: str | Path, task: str = "train") -> Path:
    """Hydra's log of the run: ``<run_dir>/<task>.log`` (``hydra.job.name``, the entry point's task)."""
    return Path(run_dir) / f"{task}.log"


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """``<run_dir>/checkpoints/last.ckpt`` if it exists (a stopped run resumes from it), else None."""
    path = Path(run_dir) / LAST_CHECKPOINT
    return path if path.is_file() else None


def to_jsonable(value: Any) -> Any:
    """``value`` with tensors, numpy scalars and paths made JSON values (nested dicts and lists too)."""
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
    """Write ``summary.json`` atomically: a kill during the write leaves no summary, never half of one, since
    a summary's presence marks the run finished (a sweep skips the job). Returns its path."""
    path = atomic_write_json(summary_path(run_dir), to_jsonable(summary))
    print(f"Run summary written to {path}")
    return path


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's summary, or None while it is not finished: no ``summary.json``, or one that cannot be read as
    a JSON object (damaged). Treating a damaged summary as finished would skip a job forever with no result."""
    try:
        summary = json.loads(summary_path(run_dir).read_bytes())
    except (OSError, ValueError):  # missing, unreadable, not JSON (JSONDecodeError and UnicodeDecodeError)
        return None
    return summary if isinstance(summary, dict) else None


# -- one training per folder ---------------------------------------------------------------------------------------
class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock: a second training there would overwrite the first one's files."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.run_dir, self.holder = run_dir, holder
        pid = holder.get("pid")
        who = f"process {pid}" if pid else "another process"
        where = f" on {holder['host']}" if holder.get("host") and holder["host"] != socket.gethostname() else ""
        since = f", since {holder['started']}" if holder.get("started") else ""
        super().__init__(
            f"run folder {run_dir} is in use by {who}{where}{since} (its lock: {run_dir / LOCK_FILE}); two trainings "
            "in one folder would overwrite each other's summary, log and checkpoints. Give this one another folder "
            f"(hydra.run.dir=...), or wait until {who} has ended"
        )


_held: dict[Path, list[int]] = {}  # run folder -> [lock file descriptor, nesting depth], in this process


def _forget_locks_in_fork_child() -> None:
    # A forked child (a DataLoader worker) inherits the descriptors; closing its copies keeps the lock's life tied
    # to the training process alone (closing is not unlocking: the parent's descriptor still holds it).
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_in_fork_child)


def launching_process() -> bool:
    """False in the extra processes of a distributed run (a non-zero rank in the environment, see
    :data:`RANK_VARIABLES`): they use the folder their first process locked, and must not lock it against it."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def _holder(fd: int) -> dict[str, Any]:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def acquire_run_folder(run_dir: str | Path) -> bool:
    """Take ``<run_dir>/run.lock`` (an exclusive ``flock``) for this process; whether it locked anything.

    Raises :class:`RunFolderBusy` at once if another process holds it. Re-entrant: each call needs its
    :func:`release_run_folder`. A no-op (False) in the non-zero ranks of a distributed run
    (:func:`launching_process`) and where ``fcntl`` is missing. Prefer :func:`lock_run_folder`.
    """
    folder = Path(run_dir).resolve()
    if fcntl is None or not launching_process():
        return False
    if folder in _held:
        _held[folder][1] += 1
        return True
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunFolderBusy(Path(run_dir), holder) from None
    except BaseException:
        os.close(fd)
        raise
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv)[:2000],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    _held[folder] = [fd, 1]
    return True


def release_run_folder(run_dir: str | Path) -> None:
    """Undo one :func:`acquire_run_folder`; the last one unlocks the folder (nothing if it was not held)."""
    folder = Path(run_dir).resolve()
    entry = _held.get(folder)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _held[folder]
        os.close(entry[0])  # releases the flock


@contextlib.contextmanager
def lock_run_folder(run_dir: str | Path) -> Iterator[bool]:
    """Hold ``<run_dir>/run.lock`` (an exclusive ``flock``) for the ``with`` block; yields whether it locked.

    Raises :class:`RunFolderBusy` at once if another process holds it. The kernel drops the lock when the holder
    exits, however it ends (SIGKILL, a crash, a pulled node), so a stopped run never leaves a stale lock: resuming
    it just takes the lock again. Re-entrant within one process (a multirun's jobs, a test calling ``train``
    twice, :class:`LockRunFolder` around ``train``); a no-op in the non-zero ranks of a distributed run
    (:func:`launching_process`) and where ``fcntl`` is missing. The file stays after the run, holding the last
    holder's pid, host and start time.
    """
    locked = acquire_run_folder(run_dir)
    try:
        yield locked
    finally:
        if locked:
            release_run_folder(run_dir)


class LockRunFolder(HydraCallback):
    """Hydra callback: lock ``hydra.run.dir`` before Hydra writes anything there (single runs).

    ``laformer-train`` locks its folder when its task function starts, but Hydra has by then already written
    ``.hydra/`` (config, overrides) and opened the log in the folder: a refused second training would have
    replaced the first one's record of its config. Listed in ``hydra.callbacks``, this takes the lock first, so
    the refused process leaves the folder as it found it. Exits with status 2 and one line when the folder is in
    use. Multirun jobs are locked by the task function (each job has its own folder).
    """

    def __init__(self) -> None:
        self._locked: Path | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir))
        try:
            if acquire_run_folder(run_dir):
                self._locked = run_dir
        except RunFolderBusy as busy:
            # the command's name, as its own errors say: the primary config is train.yaml or eval.yaml
            program = f"laformer-{OmegaConf.select(config, 'hydra.job.config_name') or 'train'}"
            print(f"{program}: error: {busy}", file=sys.stderr, flush=True)
            raise SystemExit(BUSY_EXIT_STATUS) from None

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._locked is not None:
            release_run_folder(self._locked)
            self._locked = None


# -- a sweep's table -----------------------------------------------------------------------------------------------
def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested keys joined with dots, lists joined with spaces: one CSV cell per value."""
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


def job_order(name: str) -> tuple[int, int, str]:
    """Sort key of job folder names: numbered jobs by number (2 before 10), then any others by name."""
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def job_folders(sweep_dir: str | Path) -> list[Path]:
    """The sweep's finished jobs: each direct subfolder holding a ``summary.json``, in :func:`job_order`."""
    found = [path.parent for path in Path(sweep_dir).glob(f"*/{SUMMARY_FILE}")]
    return sorted(found, key=lambda folder: job_order(folder.name))


def collect_sweep(sweep_dir: str | Path) -> Path | None:
    """One CSV row per finished job under ``sweep_dir``, in job order; returns the table's path (None if no job).

    A job whose summary cannot be read did not finish (:func:`read_summary`) and gets no row.
    """
    sweep_dir = Path(sweep_dir)
    summaries = (read_summary(folder) for folder in job_folders(sweep_dir))
    rows = [flatten(summary) for summary in summaries if summary is not None]
    if not rows:
        return None
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    path = atomic_write_text(sweep_dir / SWEEP_TABLE, text.getvalue())
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
