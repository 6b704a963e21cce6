"""Resumable sweeps (laformer.sweeps): the sweep folder is named by the sweep, finished jobs are skipped, unfinished
ones resume from their last checkpoint, and a folder holding another job or config is refused. The slow test kills
a real multirun with SIGKILL in the middle of a job and reruns the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from laformer.runs import SUMMARY_FILE, register_resolvers, write_summary
from laformer.sweeps import JOB_FILE, JobStart, SweepJobMismatch, prepare_job, start_job, sweep_folder_name
from tests.conftest import CONFIG_DIR, FAST_DEMO

# -- the sweep folder's name -------------------------------------------------------------------------------------


def test_folder_name_is_the_sweep_not_the_time_or_the_order() -> None:
    a = sweep_folder_name(["experiment=demo", "model.attention=rela,linear"], {"seed": "1,2"})
    assert a == sweep_folder_name(["model.attention=rela,linear", "experiment=demo"], {"seed": "1,2"})
    assert a.startswith("experiment=demo_model.attention=rela,linear-")
    others = {
        sweep_folder_name(["experiment=demo", "model.attention=linear,rela"], {"seed": "1,2"}),  # job order differs
        sweep_folder_name(["experiment=demo", "model.attention=rela,linear"], {"seed": "1,2,3"}),  # more jobs
        sweep_folder_name(["experiment=demo", "model.attention=rela,linear"]),
    }
    assert a not in others and len(others) == 3
    odd = sweep_folder_name(["data.root=/data/DFWB", "hydra_choice='a b'", "x=" + "y" * 200])
    assert "/" not in odd and " " not in odd and "'" not in odd and len(odd) <= 80 + 9
    assert sweep_folder_name([]).startswith("sweep-")


def _sweep_dir(overrides: list[str]) -> str:
    """``hydra.sweep.dir`` of a multirun with these command-line overrides, resolved as Hydra's launcher does."""
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        return str(cfg.hydra.sweep.dir)
    finally:
        GlobalHydra.instance().clear()


def test_the_same_command_resolves_the_same_sweep_folder(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LAFORMER_OUTPUTS", str(tmp_path))
    first = _sweep_dir(["experiment=ablation_attention"])
    assert first == _sweep_dir(["experiment=ablation_attention"])
    assert Path(first).parent == tmp_path / "ablation_attention" / "multiruns"
    assert Path(first).name.startswith("experiment=ablation_attention-")
    assert _sweep_dir(["experiment=ablation_attention", "trainer.max_steps=4"]) != first
    # the sweep axes of the config are part of the name: editing them makes another sweep
    assert _sweep_dir(["experiment=ablation_attention", "hydra.sweeper.params.seed=1"]) != first


# -- one job: skip, resume, start, refuse -------------------------------------------------------------------------
JOB = ["model.attention=linear", "seed=2"]


def _cfg(make_cfg, job_dir: Path, *extra: str):
    return make_cfg("train", [*FAST_DEMO, *JOB, *extra], run_dir=job_dir)


def _checkpoint(job_dir: Path, step: int) -> Path:
    path = job_dir / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {}}, path)
    return path


def test_a_fresh_job_records_itself_and_starts(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    cfg = _cfg(make_cfg, job)
    assert prepare_job(cfg, job, JOB) is None
    assert cfg.get("ckpt_path") is None
    record = json.loads((job / JOB_FILE).read_text())
    assert record["overrides"] == JOB and len(record["attempts"]) == 1
    assert record["config"]["model.attention"] == '"linear"' and "ckpt_path" not in record["config"]


def test_an_unfinished_job_resumes_from_its_last_checkpoint(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    assert prepare_job(_cfg(make_cfg, job), job, JOB) is None
    last = _checkpoint(job, step=7)
    cfg = _cfg(make_cfg, job)
    assert prepare_job(cfg, job, list(reversed(JOB))) is None  # override order does not matter
    assert cfg.ckpt_path == str(last)
    attempts = json.loads((job / JOB_FILE).read_text())["attempts"]
    assert len(attempts) == 2 and attempts[1]["resumed_from"] == {"checkpoint": str(last), "step": 7}
    # laformer-eval passes resume=False: its ckpt_path is what it scores, never a resume point
    cfg = _cfg(make_cfg, job)
    assert prepare_job(cfg, job, JOB, resume=False) is None and cfg.get("ckpt_path") is None


def test_a_finished_job_is_skipped_with_its_summary(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    assert prepare_job(_cfg(make_cfg, job), job, JOB) is None
    write_summary(job, {"overrides": JOB, "metrics": {"val/psnr": 30.0}})
    before = (job / SUMMARY_FILE).read_bytes()
    cfg = _cfg(make_cfg, job)
    assert prepare_job(cfg, job, JOB) == {"overrides": JOB, "metrics": {"val/psnr": 30.0}}
    assert (job / SUMMARY_FILE).read_bytes() == before and cfg.get("ckpt_path") is None


def test_a_folder_of_another_job_is_refused(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    write_summary(job, {"overrides": ["model.attention=rela", "seed=2"]})
    with pytest.raises(SweepJobMismatch, match="finished job with other overrides"):
        prepare_job(_cfg(make_cfg, job), job, JOB)
    other = tmp_path / "1"
    assert prepare_job(_cfg(make_cfg, other), other, ["model.attention=rela"]) is None
    _checkpoint(other, step=5)
    with pytest.raises(SweepJobMismatch, match="unfinished job with other overrides"):
        prepare_job(_cfg(make_cfg, other), other, JOB)


def test_a_job_that_failed_before_its_first_checkpoint_starts_again_under_its_new_config(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    assert prepare_job(_cfg(make_cfg, job), job, ["model.attention=rela"]) is None  # another job, which died early
    assert prepare_job(_cfg(make_cfg, job), job, JOB) is None
    assert prepare_job(_cfg(make_cfg, job, "trainer.max_steps=99"), job, JOB) is None  # a config fixed in between
    record = json.loads((job / JOB_FILE).read_text())
    assert record["overrides"] == JOB and record["config"]["trainer.max_steps"] == "99"
    assert len(record["attempts"]) == 2  # this job's two attempts; the other job's record was dropped


def test_a_changed_config_is_refused_naming_the_keys(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    assert prepare_job(_cfg(make_cfg, job), job, JOB) is None
    _checkpoint(job, step=3)
    with pytest.raises(SweepJobMismatch, match=r"trainer.max_steps: \d+ -> 99"):
        prepare_job(_cfg(make_cfg, job, "trainer.max_steps=99"), job, JOB)
    # a key that is new (an option added since, at its default) is not a changed value: the job resumes
    cfg = _cfg(make_cfg, job, "+module.new_option=7")
    assert prepare_job(cfg, job, JOB) is None and cfg.ckpt_path == str(job / "checkpoints" / "last.ckpt")


def test_a_checkpoint_without_a_record_is_refused(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    _checkpoint(job, step=3)
    with pytest.raises(SweepJobMismatch, match=r"no sweep_job\.json"):
        prepare_job(_cfg(make_cfg, job), job, JOB)


# -- a real sweep, killed and rerun ----------------------------------------------------------------------------
MAX_STEPS = 12
SWEEP = [
    *FAST_DEMO,
    "model.attention=linear,rela,softmax",
    f"trainer.max_steps={MAX_STEPS}",
    f"trainer.val_check_interval={MAX_STEPS}",
    "callbacks.model_checkpoint.last_every_n_steps=1",
    "data.repeat=3",
]


def _run_sweep(outputs: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "LAFORMER_OUTPUTS": str(outputs), "OMP_NUM_THREADS": "1"}
    env |= {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "laformer.cli.train", "-m", *SWEEP],
        cwd=outputs.parent,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def _wait_for_checkpoint(outputs: Path, job: int, step: int, proc: subprocess.Popen, timeout: float = 600) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended (status {proc.returncode}) before job {job} reached step {step}"
        for last in outputs.glob(f"demo/multiruns/*/{job}/checkpoints/last.ckpt"):
            reached = torch.load(last, map_location="cpu", weights_only=False)["global_step"]  # saves are atomic
            if reached >= step:
                return reached
        time.sleep(0.05)
    raise TimeoutError(f"job {job} did not reach step {step} in {timeout} s")


@pytest.mark.slow  # two real multiruns of three short jobs: ~1-2 minutes on the shared 2-core CPU
def test_sweep_killed_midway_then_rerun_skips_finished_and_resumes_unfinished(tmp_path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    proc = _run_sweep(outputs, tmp_path / "first.log")
    try:
        killed_at = _wait_for_checkpoint(outputs, job=1, step=3, proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    (sweep,) = (outputs / "demo" / "multiruns").iterdir()
    assert (sweep / "0" / SUMMARY_FILE).is_file(), "job 0 had finished before the kill"
    assert not (sweep / "1" / SUMMARY_FILE).exists() and not (sweep / "2").exists()
    first_summary = (sweep / "0" / SUMMARY_FILE).read_bytes()

    rerun = _run_sweep(outputs, tmp_path / "second.log")
    assert rerun.wait(900) == 0, (tmp_path / "second.log").read_text()[-4000:]
    log = (tmp_path / "second.log").read_text()
    assert list((outputs / "demo" / "multiruns").iterdir()) == [sweep], "the rerun must find the same sweep folder"
    assert f"Sweep job {sweep / '0'} finished in an earlier run" in log
    resumed = json.loads((sweep / "1" / JOB_FILE).read_text())["attempts"]
    assert len(resumed) == 2 and resumed[1]["resumed_from"]["step"] >= killed_at
    assert f"Sweep job {sweep / '1'}: resuming from step {resumed[1]['resumed_from']['step']}" in log
    assert "resuming" not in json.dumps(json.loads((sweep / "2" / JOB_FILE).read_text()))  # job 2 started fresh
    assert (sweep / "0" / SUMMARY_FILE).read_bytes() == first_summary  # skipped, untouched

    table = pd.read_csv(sweep / "sweep_summary.csv")
    assert sorted(table["attention"]) == ["linear", "rela", "softmax"]
    assert (table["steps"] == MAX_STEPS).all() and table["metrics.val/psnr"].notna().all()
    for job in ("1", "2"):
        final = torch.load(sweep / job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        assert final["global_step"] == MAX_STEPS
    config = OmegaConf.load(sweep / "1" / ".hydra" / "overrides.yaml")
    assert "model.attention=rela" in config


def test_a_damaged_summary_is_not_a_finished_job(make_cfg, tmp_path) -> None:
    job = tmp_path / "0"
    assert prepare_job(_cfg(make_cfg, job), job, JOB) is None
    last = _checkpoint(job, step=12)
    (job / SUMMARY_FILE).write_text('{"overrides": ["model.attention=linear", ')  # killed mid-write (old code)
    cfg = _cfg(make_cfg, job)
    assert prepare_job(cfg, job, JOB) is None and cfg.ckpt_path == str(last)  # resumed, so it writes a whole one


def test_a_study_launching_its_own_jobs_goes_through_the_same_decision(tmp_path) -> None:
    """experiments/frontier passes its overrides (no resolved config); its resumed jobs record ckpt_path=last."""
    job = tmp_path / "seed1"
    first = start_job(job, JOB, fix="pass another --out", log=None)
    assert first == JobStart() and json.loads((job / JOB_FILE).read_text())["overrides"] == JOB
    last = _checkpoint(job, step=3)
    resumed = start_job(job, JOB, fix="pass another --out", log=None)
    assert resumed.resume_from == last and resumed.step == 3 and resumed.finished is None
    write_summary(job, {"overrides": [*JOB, "ckpt_path=last"]})  # what laformer-train records when resumed
    assert start_job(job, list(reversed(JOB)), log=None).finished == {"overrides": [*JOB, "ckpt_path=last"]}
    with pytest.raises(SweepJobMismatch, match=r"other overrides .*seed=2.*seed=3.*or pass another --out$"):
        start_job(job, ["model.attention=linear", "seed=3"], fix="pass another --out", log=None)
