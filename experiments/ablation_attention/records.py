"""Keep a sweep's finished jobs in the repository, and put them back, so a study outlives its machine.

The sweep folder (``outputs/...``) is not tracked: a fresh checkout starts the study over. ``save`` copies each
finished job's records (``summary.json``, ``sweep_job.json``, ``test_scores.csv``; a few kB, no checkpoints) to
``experiments/ablation_attention/jobs/<sweep>/<job>/``, where they are committed and where ``report.py`` can read
them. ``restore`` copies them back into the sweep folder, so rerunning the sweep command skips those jobs
(``laformer.sweeps``: a job with its summary and the same overrides and config is finished) and runs the rest.
The rank analysis of a restored job reuses the rows computed from its checkpoint before it went away
(``experiments/rank_analysis/analyze.py``, ``--earlier``).

    python experiments/ablation_attention/records.py save outputs/ablation_attention/multiruns/<sweep>
    python experiments/ablation_attention/records.py restore        # every saved sweep, into outputs/...
    bash experiments/ablation_attention/run.sh                      # then runs only the jobs not saved
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from laformer.runs import SUMMARY_FILE, job_folders
from laformer.sweeps import JOB_FILE

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RECORDS = HERE / "jobs"
KEPT = (SUMMARY_FILE, JOB_FILE, "test_scores.csv")


def multirun_root() -> Path:
    """Where ``laformer-train -m experiment=ablation_attention`` puts its sweeps (``conf/paths``, ``task_name``)."""
    return Path(os.environ.get("LAFORMER_OUTPUTS", ROOT / "outputs")) / "ablation_attention" / "multiruns"


def save(sweep_dir: Path, records: Path = RECORDS) -> list[Path]:
    """Copy the records of every finished job of ``sweep_dir`` to ``records/<sweep name>/<job>/``."""
    sweep_dir = Path(sweep_dir)
    jobs = job_folders(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"no finished job (*/{SUMMARY_FILE}) under {sweep_dir}: nothing to save")
    saved = []
    for job in jobs:
        saved.append(_copy_kept(job, Path(records) / sweep_dir.name / job.name))
    print(f"Saved {len(saved)} finished jobs of {sweep_dir} to {Path(records) / sweep_dir.name}")
    return saved


def restore(records: Path = RECORDS, root: Path | None = None) -> list[Path]:
    """Copy every saved job back to ``root/<sweep name>/<job>/``; a job folder that already has a summary or a
    checkpoint there is left as it is (it is newer than the record)."""
    root = multirun_root() if root is None else Path(root)
    saved = sorted(p.parent for p in Path(records).glob(f"*/*/{SUMMARY_FILE}"))
    if not saved:
        raise FileNotFoundError(f"no saved jobs (<sweep>/<job>/{SUMMARY_FILE}) under {records}")
    restored = []
    for record in saved:
        job = root / record.parent.name / record.name
        if (job / SUMMARY_FILE).exists() or (job / "checkpoints").exists():
            print(f"{job} already holds a run of this job: kept, not restored")
            continue
        restored.append(_copy_kept(record, job))
    print(f"Restored {len(restored)} finished jobs under {root}")
    return restored


def _copy_kept(source: Path, target: Path) -> Path:
    """Copy the ``KEPT`` files that ``source`` has into ``target`` (created); returns ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save", help="copy a sweep's finished jobs into the repository")
    saving.add_argument("sweep_dir", type=Path, help="the multirun folder holding the jobs 0/, 1/, ...")
    saving.add_argument("--records", type=Path, default=RECORDS, help="where the records are kept")
    restoring = commands.add_parser("restore", help="copy the saved jobs back into their sweep folders")
    restoring.add_argument("--records", type=Path, default=RECORDS, help="where the records are kept")
    restoring.add_argument("--root", type=Path, default=None, help="the multirun root (default: outputs/...)")
    args = parser.parse_args(argv)
    if args.command == "save":
        save(args.sweep_dir, args.records)
    else:
        restore(args.records, args.root)


if __name__ == "__main__":
    main()
