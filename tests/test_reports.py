"""Study reports: job summaries of a sweep, CSV and markdown tables, and the end-of-sweep report hook."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from laformer.reports import RunScriptAfterSweep, markdown_table, project_root, read_job_summaries, write_csv
from laformer.runs import write_summary


def test_job_summaries_come_in_numeric_job_order(tmp_path: Path) -> None:
    for job in ("10", "2", "0", "named"):
        write_summary(tmp_path / job, {"job": job})
    (tmp_path / "3").mkdir()  # a job that wrote nothing
    assert [s["job"] for s in read_job_summaries(tmp_path)] == ["0", "2", "10", "named"]


def test_write_csv_takes_the_union_of_columns(tmp_path: Path) -> None:
    path = write_csv([{"a": 1, "b": 2.5}, {"a": 3, "c": "x"}], tmp_path / "deep" / "t.csv")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["a", "b", "c"]
        assert list(reader) == [{"a": "1", "b": "2.5", "c": ""}, {"a": "3", "b": "", "c": "x"}]


def test_markdown_table_formats_aligns_and_dashes_missing_values() -> None:
    rows = [{"name": "rela", "psnr": 25.123, "steps": 10}, {"name": "linear", "psnr": None, "steps": 10}]
    text = markdown_table(rows, {"name": "attention", "psnr": "PSNR (dB)", "steps": "steps"}, {"psnr": ".2f"})
    assert text.splitlines() == [
        "| attention | PSNR (dB) | steps |",
        "|---|---:|---:|",
        "| rela | 25.12 | 10 |",
        "| linear | — | 10 |",
    ]


def _config(sweep_dir: Path):
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}})


def test_report_hook_runs_the_script_from_the_project_root_on_the_sweep(tmp_path: Path) -> None:
    script = tmp_path / "report.py"
    script.write_text(
        "import os, sys, pathlib\n"
        "out = pathlib.Path(sys.argv[3])\n"
        "out.write_text(sys.argv[1] + '\\n' + sys.argv[2] + '\\n' + os.getcwd())\n"
    )
    out = tmp_path / "out.txt"
    RunScriptAfterSweep(str(script), ["--out", str(out)]).on_multirun_end(_config(tmp_path / "sweep"))
    sweep_dir, flag, cwd = out.read_text().splitlines()
    assert sweep_dir == str((tmp_path / "sweep").resolve()) and flag == "--out"
    assert Path(cwd) == project_root()


def test_report_hook_resolves_relative_scripts_against_the_project_root(tmp_path: Path) -> None:
    hook = RunScriptAfterSweep("experiments/no_such_study/report.py")
    with pytest.raises(FileNotFoundError, match=r"experiments/no_such_study/report\.py"):
        hook.on_multirun_end(_config(tmp_path))


def test_report_hook_failure_says_how_to_rerun(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text("raise SystemExit(3)\n")
    with pytest.raises(RuntimeError, match=rf"exit 3.*{sys.executable}"):
        RunScriptAfterSweep(str(script)).on_multirun_end(_config(tmp_path))
