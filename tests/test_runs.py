"""Run summaries (summary.json) and the sweep table gathered from them."""

from __future__ import annotations

import ast
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import laformer.runs
from laformer.runs import SUMMARY_FILE, SWEEP_TABLE, collect_sweep, read_summary, write_summary


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_write_summary_converts_tensors_numpy_and_paths(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "job0"  # does not exist yet
    summary = {
        "task": "train",
        "steps": torch.tensor(120),
        "best_score": torch.tensor(31.25),
        "parameters": np.int64(12345),
        "wall_time_s": np.float32(2.5),
        "run_dir": run_dir,
        "best_checkpoint": None,
        "overrides": ["model.width=8", "data.patch_size=32"],
        "metrics": {"val/psnr": torch.tensor(30.5), "val/ssim": np.float64(0.875), "test/set5/psnr": 29.0},
    }
    path = write_summary(run_dir, summary)
    assert path == run_dir / SUMMARY_FILE
    text = path.read_text()
    assert text.endswith("\n")
    data = json.loads(text)
    assert data["task"] == "train"
    assert data["steps"] == 120 and isinstance(data["steps"], int)
    assert data["best_score"] == 31.25 and isinstance(data["best_score"], float)
    assert data["parameters"] == 12345
    assert data["wall_time_s"] == 2.5
    assert data["run_dir"] == str(run_dir)
    assert data["best_checkpoint"] is None
    assert data["overrides"] == ["model.width=8", "data.patch_size=32"]
    # nested values are converted too, not written as "tensor(30.5000)" strings
    assert data["metrics"] == {"val/psnr": 30.5, "val/ssim": 0.875, "test/set5/psnr": 29.0}


def test_write_summary_overwrites(tmp_path: Path) -> None:
    write_summary(tmp_path, {"a": 1})
    write_summary(tmp_path, {"b": 2})
    assert json.loads((tmp_path / SUMMARY_FILE).read_text()) == {"b": 2}


def test_collect_sweep_one_row_per_job_with_flattened_keys(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    jobs = {
        "0": {"model": "laformer", "metrics": {"val/psnr": 30.5, "val/ssim": 0.9}, "overrides": ["a=1", "b=2"]},
        "1": {"model": "laformer", "metrics": {"val/psnr": torch.tensor(31.0)}, "overrides": ["a=2"], "extra": 7},
        "2": {"model": "other", "metrics": {"val/psnr": 29.0, "test": {"set5": {"psnr": 32.0}}}, "overrides": []},
    }
    for name, summary in jobs.items():
        write_summary(sweep / name, summary)
    (sweep / "3").mkdir()  # a job that died before writing its summary
    (sweep / "3" / "log.txt").write_text("crashed")
    write_summary(sweep / "nested" / "deeper", {"model": "not-a-job"})  # not a direct job folder

    path = collect_sweep(sweep)
    assert path == sweep / SWEEP_TABLE
    columns, rows = _read_csv(path)
    assert len(rows) == 3
    assert {"model", "metrics.val/psnr", "metrics.val/ssim", "overrides", "extra", "metrics.test.set5.psnr"} == set(
        columns
    )
    assert not any(col == "metrics" for col in columns)
    by_psnr = {row["metrics.val/psnr"]: row for row in rows}
    assert set(by_psnr) == {"30.5", "31.0", "29.0"}
    assert by_psnr["30.5"]["metrics.val/ssim"] == "0.9"
    assert by_psnr["30.5"]["overrides"] == "a=1 b=2"
    assert by_psnr["31.0"]["extra"] == "7"
    assert by_psnr["31.0"]["metrics.val/ssim"] == ""  # missing in that job: an empty cell
    assert by_psnr["29.0"]["metrics.test.set5.psnr"] == "32.0"
    assert by_psnr["29.0"]["model"] == "other"
    assert "not-a-job" not in path.read_text()


def test_collect_sweep_column_order_follows_first_appearance(tmp_path: Path) -> None:
    write_summary(tmp_path / "0", {"task": "train", "metrics": {"val/psnr": 1.0}})
    write_summary(tmp_path / "1", {"task": "train", "metrics": {"val/psnr": 2.0}, "seed": 3})
    columns, _ = _read_csv(collect_sweep(tmp_path))
    assert columns == ["task", "metrics.val/psnr", "seed"]


@pytest.mark.parametrize("make", ["empty", "no_summaries", "missing"])
def test_collect_sweep_without_summaries_returns_none(tmp_path: Path, make: str) -> None:
    sweep = tmp_path / "sweep"
    if make != "missing":
        sweep.mkdir()
    if make == "no_summaries":
        (sweep / "0").mkdir()
        (sweep / "0" / "other.json").write_text("{}")
        (sweep / SUMMARY_FILE).write_text("{}")  # the sweep's own folder is not a job
    assert collect_sweep(sweep) is None
    assert not (sweep / SWEEP_TABLE).exists()


def test_collect_sweep_orders_jobs_by_number(tmp_path: Path) -> None:
    for job in (10, 2, 1, 0, 11, 3):  # as text, 10 and 11 would come before 2
        write_summary(tmp_path / str(job), {"job": job})
    write_summary(tmp_path / "extra", {"job": "extra"})  # a folder that is not numbered comes last
    _, rows = _read_csv(collect_sweep(tmp_path))
    assert [row["job"] for row in rows] == ["0", "1", "2", "3", "10", "11", "extra"]


@pytest.mark.parametrize("content", [b"", b'{"task": "tr', b"\xff\xfe", b"[1, 2]"])
def test_a_damaged_summary_means_unfinished(tmp_path: Path, content: bytes) -> None:
    write_summary(tmp_path / "0", {"job": 0})
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / SUMMARY_FILE).write_bytes(content)  # half written by older code, or not ours
    assert read_summary(tmp_path / "1") is None and read_summary(tmp_path / "2") is None
    assert read_summary(tmp_path / "0") == {"job": 0}
    _, rows = _read_csv(collect_sweep(tmp_path))
    assert [row["job"] for row in rows] == ["0"]


def test_a_failed_summary_write_keeps_the_earlier_summary(tmp_path: Path) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise OSError("No space left on device")  # json.dumps(default=str) fails midway

    write_summary(tmp_path, {"a": 1})
    with pytest.raises(OSError, match="No space"):
        write_summary(tmp_path, {"b": 2, "c": Unprintable()})
    assert json.loads((tmp_path / SUMMARY_FILE).read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [SUMMARY_FILE], "no temporary file is left"


def test_runs_does_not_import_sweeps() -> None:
    """The dependency goes one way: laformer.sweeps builds on laformer.runs."""
    code = "import sys, laformer.runs; print('laformer.sweeps' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    tree = ast.parse(Path(laformer.runs.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert "laformer.sweeps" not in imported  # not even inside a function
