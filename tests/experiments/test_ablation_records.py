"""Saving a sweep's finished jobs into the repository and restoring them in a fresh checkout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laformer.reports import read_job_summaries
from laformer.runs import write_summary
from tests.experiments.scripts import load_script

records = load_script("experiments/ablation_attention/records.py", "ablation_attention_records")


def _sweep(root: Path) -> Path:
    """A sweep folder as laformer-train -m leaves it: two finished jobs (with checkpoints) and one unfinished."""
    sweep = root / "experiment=ablation_attention-abcd1234"
    for job, attention in enumerate(("linear", "rela", "softmax")):
        folder = sweep / str(job)
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")
        (folder / "sweep_job.json").write_text(json.dumps({"overrides": [f"model.attention={attention}"]}))
        if attention != "softmax":
            write_summary(folder, {"attention": attention, "overrides": [f"model.attention={attention}"]})
            (folder / "test_scores.csv").write_text("image,psnr\nchelsea,25.0\n")
    return sweep


def test_save_keeps_the_finished_jobs_records_without_checkpoints(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path / "outputs")
    kept = tmp_path / "jobs"
    saved = records.save(sweep, kept)
    assert [p.name for p in saved] == ["0", "1"]  # the unfinished job is not a record
    assert sorted(p.name for p in (kept / sweep.name / "0").iterdir()) == sorted(records.KEPT)
    assert not list(kept.rglob("*.ckpt"))
    assert [s["attention"] for s in read_job_summaries(kept / sweep.name)] == ["linear", "rela"]  # report.py reads it
    with pytest.raises(FileNotFoundError, match="no finished job"):
        records.save(sweep / "2", kept)


def test_restore_puts_them_back_and_leaves_newer_runs_alone(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path / "outputs")
    kept = tmp_path / "jobs"
    records.save(sweep, kept)
    fresh = tmp_path / "fresh"
    restored = records.restore(kept, fresh)
    assert [p.relative_to(fresh).as_posix() for p in restored] == [f"{sweep.name}/0", f"{sweep.name}/1"]
    for job in ("0", "1"):
        for name in records.KEPT:
            assert (fresh / sweep.name / job / name).read_bytes() == (sweep / job / name).read_bytes()

    assert records.restore(kept, tmp_path / "outputs") == []  # the original folders already hold those jobs
    with pytest.raises(FileNotFoundError, match="no saved jobs"):
        records.restore(tmp_path / "empty", fresh)
