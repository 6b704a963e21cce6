"""One training per run folder (laformer.runs.lock_run_folder): a second ``laformer-train`` in a folder in use is
refused with one line and exit status 2 and writes nothing there; a killed run leaves no stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from laformer.cli.train import BUSY_EXIT_STATUS, train
from laformer.runs import LOCK_FILE, SUMMARY_FILE, RunFolderBusy, launching_process, lock_run_folder
from tests.reliability.common import REPO, cli_command, cli_env, fast, load, run_cli

GATE = "tests.suite.lock_gate.HoldUntil"
LOCK_CALLBACK = "laformer.runs.LockRunFolder"


def _gated(gate: Path, *extra: str, step: int = 0) -> list[str]:
    return fast(
        *extra, f"+callbacks.gate._target_={GATE}", f"+callbacks.gate.gate={gate}", f"+callbacks.gate.step={step}"
    )


def _wait_for(path: Path, procs: list[subprocess.Popen], timeout: float = 300) -> None:
    """Until ``path`` exists, while at least one of ``procs`` still runs."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        assert any(p.poll() is None for p in procs), [p.returncode for p in procs]
        time.sleep(0.05)


class Holder:
    """Another process that holds ``run_dir``'s lock until it is closed (stdin) or killed."""

    def __init__(self, run_dir: Path) -> None:
        code = (
            "import sys; from laformer.runs import lock_run_folder\n"
            f"with lock_run_folder({str(run_dir)!r}):\n    print('held', flush=True); sys.stdin.read()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        assert self.proc.stdout.readline().strip() == "held"

    def close(self) -> None:
        self.proc.communicate("", timeout=60)


def test_the_lock_refuses_a_second_process_names_it_and_outlives_no_one(tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    holder = Holder(run_dir)
    try:
        with pytest.raises(RunFolderBusy) as refused, lock_run_folder(run_dir):
            pass
        message = str(refused.value)
        assert "\n" not in message and str(run_dir) in message and f"process {holder.proc.pid}" in message
        assert "hydra.run.dir=" in message and "wait until" in message
        assert refused.value.holder["pid"] == holder.proc.pid
    finally:
        holder.close()
    with lock_run_folder(run_dir) as locked, lock_run_folder(run_dir) as again:  # free again; re-entrant
        assert locked and again
        assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == os.getpid()
    holder = Holder(run_dir)  # released after the nested blocks: another process takes it
    holder.proc.kill()  # and a killed holder's lock goes with it
    holder.proc.wait(60)
    with lock_run_folder(run_dir) as locked:
        assert locked
    # A distributed run's other ranks share the first one's folder: they neither lock nor are refused.
    holder = Holder(run_dir)
    try:
        monkeypatch.setenv("LOCAL_RANK", "1")
        assert not launching_process()
        with lock_run_folder(run_dir) as locked:
            assert not locked
    finally:
        holder.close()


def test_train_in_a_folder_in_use_is_refused_before_writing_there(make_cfg, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = make_cfg("train", fast("trainer.max_steps=1"), run_dir)
    holder = Holder(run_dir)
    try:
        with pytest.raises(RunFolderBusy, match=f"process {holder.proc.pid}"):
            train(cfg)
    finally:
        holder.close()
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]


def test_laformer_train_in_a_folder_in_use_exits_2_with_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = Holder(run_dir)
    try:
        done = subprocess.run(
            cli_command(run_dir, fast("trainer.max_steps=1")),
            cwd=REPO,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        holder.close()
    assert done.returncode == BUSY_EXIT_STATUS, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip() == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"laformer-train: error: run folder {run_dir} is in use by process {holder.proc.pid}")
    # conf/hydra/default.yaml lists LockRunFolder: refused before Hydra writes .hydra/ or opens train.log there
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]


def test_without_the_hydra_callback_the_task_function_still_refuses(tmp_path: Path) -> None:
    """With ``LockRunFolder`` taken out of ``hydra.callbacks`` the task function's own lock still refuses; Hydra
    has then written ``.hydra/`` and opened an empty ``train.log``, but no summary or checkpoint is touched."""
    run_dir = tmp_path / "run"
    holder = Holder(run_dir)
    try:
        overrides = fast("trainer.max_steps=1", "~hydra.callbacks.lock_run_folder")
        done = subprocess.run(
            cli_command(run_dir, overrides), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300
        )
    finally:
        holder.close()
    assert done.returncode == BUSY_EXIT_STATUS, done.stdout[-2000:] + done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"laformer-train: error: run folder {run_dir} is in use by process {holder.proc.pid}")
    assert not (run_dir / SUMMARY_FILE).exists() and (run_dir / "train.log").read_text() == ""


@pytest.mark.slow  # two real laformer-train processes: ~30 s on the shared 2-core CPU
def test_two_trainings_started_together_in_one_folder(tmp_path: Path) -> None:
    run_dir, gate = tmp_path / "run", tmp_path / "gate"
    seeds = (11, 22)  # tells the two apart in the summary and the log
    logs = [tmp_path / f"seed{seed}.log" for seed in seeds]
    procs = []
    for seed, log in zip(seeds, logs):
        command = cli_command(run_dir, _gated(gate, "trainer.max_steps=2", f"seed={seed}"))
        procs.append(
            subprocess.Popen(command, cwd=REPO, env=cli_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT)
        )
    try:
        _wait_for(Path(f"{gate}.waiting"), procs)  # the winner holds the folder and waits at the start of fit
        deadline = time.monotonic() + 300
        while all(p.poll() is None for p in procs):  # the other one is refused meanwhile
            assert time.monotonic() < deadline, "neither training was refused"
            time.sleep(0.05)
        loser = next(i for i, p in enumerate(procs) if p.poll() is not None)
        winner = 1 - loser
        gate.touch()
        assert procs[winner].wait(300) == 0, logs[winner].read_text()[-3000:]
    finally:
        gate.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(60)
    refusal = logs[loser].read_text()
    assert procs[loser].returncode == BUSY_EXIT_STATUS, refusal[-3000:]
    (line,) = [line for line in refusal.splitlines() if line.strip()]  # one line, no traceback
    assert line.startswith("laformer-train: error: run folder ") and str(run_dir) in line
    assert f"process {procs[winner].pid}" in line and "hydra.run.dir=" in line
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    assert summary["overrides"] == _gated(gate, "trainer.max_steps=2", f"seed={seeds[winner]}")
    log = (run_dir / "train.log").read_text()
    assert f"Seed set to {seeds[winner]}" in log and f"Seed set to {seeds[loser]}" not in log
    assert "in use" not in log
    assert not list((run_dir / "checkpoints").glob("*-v1.ckpt")), "only one training saved checkpoints"


@pytest.mark.slow  # two short real trainings
def test_a_run_killed_with_sigkill_resumes_its_lock_released(tmp_path: Path) -> None:
    run_dir, gate = tmp_path / "run", tmp_path / "gate"
    # A DataLoader worker forked from the training must not keep the lock alive after its parent is killed.
    run = ["trainer.max_steps=4", "callbacks.model_checkpoint.last_every_n_steps=1", "data.num_workers=1"]
    log = tmp_path / "first.log"
    proc = subprocess.Popen(
        cli_command(run_dir, _gated(gate, *run, step=2)),
        cwd=REPO,
        env=cli_env(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(Path(f"{gate}.waiting"), [proc])  # held after step 2, last.ckpt saved at step 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == proc.pid  # the file stays, the lock does not
    assert not (run_dir / SUMMARY_FILE).exists()
    # At once, the folder locked both by the Hydra callback and by train() (re-entrant): no stale lock.
    output = run_cli(
        run_dir, [*fast(*run), "ckpt_path=last", f"+hydra.callbacks.lock_run_folder._target_={LOCK_CALLBACK}"]
    )
    assert "in use" not in output
    assert json.loads((run_dir / SUMMARY_FILE).read_text())["steps"] == 4
    assert load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 4
