"""A real checkpoint for the inference tests: two steps of the demo run through ``laformer-train``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST_DEMO


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``last.ckpt`` of a 2-step ``laformer-train`` demo run (tiny RELA, width 8), shared by the session."""
    run_dir = tmp_path_factory.mktemp("train_run")
    script = shutil.which("laformer-train", path=str(Path(sys.executable).parent)) or "laformer-train"
    overrides = [
        *FAST_DEMO,
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "callbacks.image_grid=null",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run([script, *overrides], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"laformer-train failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file(), f"no checkpoint in {run_dir / 'checkpoints'}: {list(run_dir.rglob('*'))}"
    return ckpt
