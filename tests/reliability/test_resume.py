"""Crash, SIGKILL and SIGTERM mid-run, then ``ckpt_path=last``: the run ends where an uninterrupted one does.

"Where" is bit for bit: step counter, weights, EMA, optimiser and scheduler state. That holds only if the
data order and every random draw of data loading resume at the batch the checkpoint was taken at.
"""

from __future__ import annotations

import json
import random
import re
import signal
from pathlib import Path

import pytest

from laformer.cli.train import SIGTERM_EXIT_STATUS, train
from tests.reliability.common import assert_same_training_state, fast, load, run_cli, signal_at_step
from tests.reliability.faults import SimulatedCrash

# Three batches an epoch (6 patches, batch 2), so checkpoints fall mid-epoch; EMA on.
RESUMABLE = (
    "callbacks=[default,ema]",
    "callbacks.progress_bar=null",
    "data.repeat=3",
    "seed=7",
)


def resumable(max_steps: int, every: int, val_every: int) -> list[str]:
    return fast(
        *RESUMABLE,
        f"trainer.max_steps={max_steps}",
        f"trainer.val_check_interval={val_every}",
        f"callbacks.model_checkpoint.last_every_n_steps={every}",
    )


def test_crash_then_resume_matches_uninterrupted_run(make_cfg, tmp_path):
    overrides = resumable(max_steps=8, every=2, val_every=5)
    reference = train(make_cfg("train", overrides, tmp_path / "reference"))

    crash = ["+callbacks.crash._target_=tests.reliability.faults.CrashAtStep", "+callbacks.crash.step=5"]
    with pytest.raises(SimulatedCrash):
        train(make_cfg("train", [*overrides, *crash], tmp_path / "crashed"))
    last = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    saved = load(last)
    assert saved["global_step"] == 4
    # Step 4 is one batch into the second epoch: the resumed run must skip exactly that batch.
    assert saved["epoch"] == 1
    assert saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["ready"] == 1

    resumed = train(make_cfg("train", [*overrides, "ckpt_path=last"], tmp_path / "crashed"))
    assert resumed["steps"] == reference["steps"] == 8
    assert resumed["metrics"]["val/psnr"] == reference["metrics"]["val/psnr"]
    assert_same_training_state(load(tmp_path / "reference/checkpoints/last.ckpt"), load(last))


def sigterm_then_resume(make_cfg, tmp_path, overrides: list[str], step: int, when: str) -> dict:
    """Reference run; a run that receives SIGTERM at ``step`` during ``when``; its resumption. The saved state."""
    train(make_cfg("train", overrides, tmp_path / "reference"))
    signal_at = [
        "+callbacks.sigterm._target_=tests.reliability.faults.SigtermAt",
        f"+callbacks.sigterm.step={step}",
        f"+callbacks.sigterm.when={when}",
    ]
    with pytest.raises(SystemExit) as stopped:
        train(make_cfg("train", [*overrides, *signal_at], tmp_path / "stopped"))
    assert stopped.value.code == SIGTERM_EXIT_STATUS
    assert not (tmp_path / "stopped" / "summary.json").exists(), "an interrupted run must not look finished"
    saved = load(tmp_path / "stopped" / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == step

    resumed = train(make_cfg("train", [*overrides, "ckpt_path=last"], tmp_path / "stopped"))
    assert resumed["steps"] == 8
    reference = load(tmp_path / "reference" / "checkpoints" / "last.ckpt")
    assert_same_training_state(reference, load(tmp_path / "stopped" / "checkpoints" / "last.ckpt"))
    return saved


def test_sigterm_at_epoch_end_saves_then_resumes(make_cfg, tmp_path):
    # No periodic last.ckpt: the one on disk is the SIGTERM's. Step 3 closes the first epoch.
    saved = sigterm_then_resume(make_cfg, tmp_path, resumable(max_steps=8, every=100, val_every=5), 3, "train")
    assert saved["epoch"] == 1  # closed, the second not yet begun


@pytest.mark.slow
def test_sigterm_inside_validation_saves_then_resumes(make_cfg, tmp_path):
    # Two validation images, the signal after the first: Lightning stops mid-validation while the EMA
    # weights are swapped into the model; the checkpoint must still hold each set where it belongs.
    overrides = [*resumable(max_steps=8, every=100, val_every=4), "data.val_photos=[chelsea,rocket]"]
    saved = sigterm_then_resume(make_cfg, tmp_path, overrides, 4, "validation")
    assert saved["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]["current"]["completed"] == 1


# -- real processes ------------------------------------------------------------------------------------
MAX_STEPS = 36
PROCESS_RUN = resumable(max_steps=MAX_STEPS, every=2, val_every=10)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """One uninterrupted ``laformer-train`` run that the interrupted ones are compared with."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run_cli(run_dir, PROCESS_RUN)
    return run_dir


def resume_and_compare(run_dir: Path, reference_run: Path) -> None:
    run_cli(run_dir, [*PROCESS_RUN, "ckpt_path=last"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == MAX_STEPS
    final = load(run_dir / "checkpoints" / "last.ckpt")
    assert final["global_step"] == MAX_STEPS
    assert_same_training_state(load(reference_run / "checkpoints" / "last.ckpt"), final)
    reference = json.loads((reference_run / "summary.json").read_text())
    assert summary["metrics"]["val/psnr"] == reference["metrics"]["val/psnr"]


@pytest.mark.slow
def test_sigkill_at_random_step_then_resume(tmp_path, reference_run):
    kill_at = random.randint(4, 16)
    run_dir = tmp_path / "run"
    proc, reached, output = signal_at_step(run_dir, PROCESS_RUN, tmp_path / "first.log", kill_at, signal.SIGKILL, 60)
    assert proc.returncode == -signal.SIGKILL, (kill_at, output[-3000:])
    assert reached < MAX_STEPS, f"killed at step {kill_at} target, but the run had finished"
    assert load(run_dir / "checkpoints" / "last.ckpt")["global_step"] >= reached
    resume_and_compare(run_dir, reference_run)


@pytest.mark.slow
def test_sigterm_saves_last_checkpoint_then_resume(tmp_path, reference_run):
    stop_at = random.randint(4, 16)
    run_dir = tmp_path / "run"
    log = tmp_path / "first.log"
    proc, reached, output = signal_at_step(run_dir, PROCESS_RUN, log, stop_at, signal.SIGTERM)
    assert proc.returncode == SIGTERM_EXIT_STATUS, (stop_at, output[-3000:])
    match = re.search(r"SIGTERM at step (\d+): saved (\S+)", output)
    assert match, f"no checkpoint report after SIGTERM:\n{output[-3000:]}"
    saved_step, saved_path = int(match.group(1)), Path(match.group(2).rstrip(";"))
    assert saved_path == run_dir / "checkpoints" / "last.ckpt"
    assert reached <= saved_step < MAX_STEPS
    assert load(saved_path)["global_step"] == saved_step
    assert not (run_dir / "summary.json").exists(), "an interrupted run must not look finished"
    resume_and_compare(run_dir, reference_run)
