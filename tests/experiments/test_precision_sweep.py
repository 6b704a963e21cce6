"""The precision sweep: its report from job summaries, its config, and (slow) the real sweep end to end."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import matplotlib.image
import pytest
from hydra.core.hydra_config import HydraConfig

from laformer.runs import write_summary
from tests.conftest import FAST_DEMO
from tests.experiments.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


report = load_script("experiments/precision/report.py", "precision_report")


def _summary(precision: str, psnr: float, images_per_s: float) -> dict:
    return {
        "task": "train",
        "attention": "rela",
        "precision": precision,
        "steps": 400,
        "metrics": {"val/psnr": psnr, "val/ssim": 0.8, "val/input_psnr": 20.35},
        "input_psnr": 20.35,
        "throughput": {
            "batches": 400,
            "train_time_s": 400 * 8 / images_per_s,
            "batches_per_s": images_per_s / 8,
            "images_per_s": images_per_s,
        },
        "wall_time_s": 600.0,
        "run_dir": f"/runs/{precision}",
    }


def test_rows_put_full_precision_first_and_give_speed_relative_to_it(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for i, job in enumerate(
        [_summary("16-mixed", 27.1, 30.0), _summary("bf16-mixed", 27.0, 6.0), _summary("32-true", 27.2, 12.0)]
    ):
        write_summary(sweep / str(i), job)
    rows = report.precision_rows(report.read_job_summaries(sweep))
    assert [r["precision"] for r in rows] == ["32-true", "bf16-mixed", "16-mixed"]
    assert [r["speedup"] for r in rows] == pytest.approx([1.0, 0.5, 2.5])
    assert rows[0]["train_time_min"] == pytest.approx(400 * 8 / 12.0 / 60)


def test_report_writes_table_markdown_and_plot(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_summary(sweep / "0", _summary("32-true", 27.2, 12.0))
    write_summary(sweep / "1", _summary("bf16-mixed", 27.0, 6.0))
    out = tmp_path / "out"
    report.main([str(sweep), "--out", str(out)])
    with (out / "results.csv").open(newline="") as handle:
        assert [row["precision"] for row in csv.DictReader(handle)] == ["32-true", "bf16-mixed"]
    markdown = (out / "results.md").read_text()
    assert "| bf16-mixed | rela | 27.00 | 0.8000 | 20.35 | 400 | 0.750 | 6.0 | 0.50 |" in markdown
    assert matplotlib.image.imread(out / "precision.png").shape[1] > 600


def test_without_a_32_bit_job_there_is_no_speed_ratio(tmp_path: Path) -> None:
    rows = report.precision_rows([_summary("bf16-mixed", 27.0, 6.0)])
    assert rows[0]["speedup"] is None


def test_summaries_that_do_not_name_their_precision_are_refused() -> None:
    old = _summary("32-true", 27.0, 6.0)
    del old["precision"]
    with pytest.raises(KeyError, match="does not name its precision"):
        report.precision_rows([old])


def test_config_is_the_demo_swept_over_precision(make_cfg) -> None:
    demo = make_cfg("train", ["experiment=demo"])
    sweep = make_cfg("train", ["experiment=precision_sweep"])
    hydra_cfg = HydraConfig.get()
    for key in ("model", "data", "module", "trainer"):
        assert demo[key] == sweep[key], key
    assert sweep.task_name == "precision_sweep"
    assert hydra_cfg.sweeper.params.precision == "32-true,bf16-mixed"
    assert (ROOT / hydra_cfg.callbacks.precision_report.script).is_file()
    bf16 = make_cfg("train", ["experiment=precision_sweep", "precision=bf16-mixed"])
    assert bf16.trainer.precision == "bf16-mixed"


@pytest.mark.slow  # two real training jobs in a fresh interpreter: ~1 minute on the shared 2-core CPU
def test_run_script_sweeps_precisions_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    env = {**os.environ, "LAFORMER_OUTPUTS": str(tmp_path / "outputs"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    overrides = [o for o in FAST_DEMO if not o.startswith("experiment=")]
    cmd = [
        "bash",
        str(ROOT / "experiments" / "precision" / "run.sh"),
        *overrides,
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        f"hydra.callbacks.precision_report.args=[--out,{out}]",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "results.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["precision"] for row in table] == ["32-true", "bf16-mixed"]
    assert all(row["steps"] == "2" and float(row["images_per_s"]) > 0 for row in table)
    assert float(table[0]["speedup"]) == 1.0
    assert (out / "precision.png").stat().st_size > 10_000
