"""Two CPU processes (DDP over gloo) train the demo like one process and report metrics over every image."""

from __future__ import annotations

import json
import re
import signal
import statistics
from pathlib import Path

import hydra
import lightning as L
import pytest

from laformer.cli.train import SIGTERM_EXIT_STATUS, train
from tests.reliability.common import assert_same_training_state, fast, load, run_cli, signal_at_step

# Three validation images on two processes: one process scores two, the other one. Lightning's default
# sampler would pad the second with a repeat of the first image and bias the mean.
DATA = ("data.val_photos=[chelsea,rocket,retina]", "data.batch_size=2", "data.repeat=2")
RUN = fast(*DATA, "logger=[csv,wandb]", "trainer.max_steps=4", "trainer.val_check_interval=4")
DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")


def score_one_process(make_cfg, checkpoint: Path, run_dir: Path) -> tuple[float, dict[str, float]]:
    """val/psnr of ``checkpoint`` from a single-process validation, and each image's PSNR."""
    cfg = make_cfg("train", fast(*DATA), run_dir)
    module = hydra.utils.instantiate(cfg.module)
    datamodule = hydra.utils.instantiate(cfg.data)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    (validated,) = trainer.validate(module, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
    trainer.test(module, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
    return validated["val/psnr"], {r["name"]: r["psnr"] for r in module.test_records}


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one_process(make_cfg, tmp_path):
    ddp_dir = tmp_path / "ddp"
    output = run_cli(ddp_dir, [*RUN, *DDP])
    assert "distributed_backend=gloo" in output and "Starting with 2 processes" in output
    summary = json.loads((ddp_dir / "summary.json").read_text())
    assert summary["steps"] == 4
    ddp_psnr = summary["metrics"]["val/psnr"]

    # The metric rank 0 reports is the mean over all three images, computed by one process.
    single_psnr, per_image = score_one_process(make_cfg, ddp_dir / "checkpoints" / "last.ckpt", tmp_path / "check")
    assert ddp_psnr == pytest.approx(single_psnr, abs=1e-5)
    assert single_psnr == pytest.approx(statistics.mean(per_image.values()), abs=1e-5)
    rank0_only = statistics.mean([per_image["chelsea"], per_image["retina"]])
    padded = statistics.mean([per_image["chelsea"], per_image["rocket"], per_image["retina"], per_image["chelsea"]])
    assert abs(ddp_psnr - rank0_only) > 1e-3 and abs(ddp_psnr - padded) > 1e-3, "the check could not tell"

    # Global batch 2 split 1 + 1, gradients averaged: the same training as one process with batch 2.
    one = train(make_cfg("train", RUN, tmp_path / "one"))
    assert ddp_psnr == pytest.approx(one["metrics"]["val/psnr"], abs=1e-4)
    ddp_weights = load(ddp_dir / "checkpoints" / "last.ckpt")["state_dict"]
    one_weights = load(tmp_path / "one" / "checkpoints" / "last.ckpt")["state_dict"]
    assert max((ddp_weights[k] - one_weights[k]).abs().max().item() for k in one_weights) < 1e-5

    # Only rank 0 writes: one summary, one image grid, one CSV log, one wandb run.
    files = [p.relative_to(ddp_dir).as_posix() for p in ddp_dir.rglob("*") if p.is_file()]
    assert [f for f in files if f.endswith("summary.json")] == ["summary.json"]
    assert [f for f in files if f.endswith(".png") and not f.startswith("wandb/")] == ["val_grid.png"]
    assert [f for f in files if f.endswith(".csv")] == ["csv/metrics.csv"]
    assert len(list((ddp_dir / "wandb").glob("offline-run-*"))) == 1
    assert len([f for f in files if f.endswith(".ckpt")]) == 2  # best and last, written once


@pytest.mark.slow
def test_ddp_sigterm_saves_on_every_rank_then_resumes(tmp_path):
    # A scheduler pre-empting a multi-GPU job: every process stops at the same step, last.ckpt is written
    # once, and the resumed job ends bit-identical to an uninterrupted one.
    run = fast(
        *DDP,
        *DATA,
        "data.val_photos=[chelsea,rocket]",
        "callbacks=[default,ema]",
        "callbacks.progress_bar=null",
        "trainer.max_steps=20",
        "trainer.val_check_interval=10",
        "callbacks.model_checkpoint.last_every_n_steps=2",
    )
    run_dir, log = tmp_path / "run", tmp_path / "first.log"
    proc, reached, output = signal_at_step(run_dir, run, log, 4, signal.SIGTERM)
    assert proc.returncode == SIGTERM_EXIT_STATUS, output[-3000:]
    assert "[rank: 0] Received SIGTERM" in output and "[rank: 1] Received SIGTERM" in output
    saved_step = int(re.search(r"SIGTERM at step (\d+): saved", output).group(1))
    assert reached <= saved_step < 20
    assert load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == saved_step

    run_cli(run_dir, [*run, "ckpt_path=last"])
    run_cli(tmp_path / "reference", run)
    reference = load(tmp_path / "reference" / "checkpoints" / "last.ckpt")
    assert_same_training_state(reference, load(run_dir / "checkpoints" / "last.ckpt"))
