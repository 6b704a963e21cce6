"""A real Hydra multirun in a subprocess, collected into one table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import FAST_DEMO


def test_two_job_multirun_writes_sweep_table(tmp_path):
    env = {**os.environ, "LAFORMER_OUTPUTS": str(tmp_path / "out"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [
        sys.executable,
        "-m",
        "laformer.cli.train",
        "-m",
        *FAST_DEMO,
        "model.attention=rela,linear",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    tables = list((tmp_path / "out").rglob("sweep_summary.csv"))
    assert len(tables) == 1, f"expected one sweep table, found {tables}"
    table = pd.read_csv(tables[0])
    assert sorted(table["attention"]) == ["linear", "rela"]
    assert (table["steps"] == 2).all()
    assert table["metrics.val/psnr"].notna().all()
    job_dirs = sorted(p.parent for p in Path(tables[0].parent).glob("*/summary.json"))
    assert len(job_dirs) == 2
