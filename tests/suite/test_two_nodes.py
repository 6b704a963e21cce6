"""Two nodes on one machine: ``laformer-train trainer=ddp_multinode`` started twice on 127.0.0.1 (gloo, CPU).

Each node is one process (``trainer.devices=1 trainer.num_nodes=2``), started the way ``conf/trainer/
ddp_multinode.yaml`` documents for machines without SLURM: ``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK`` and
``WORLD_SIZE`` in the environment. Training streams a packed store through LitData (``data.store=streaming``),
which shards it per rank. Both nodes share one run folder, as on a shared file system: node 1 must not be refused
by the run-folder lock that node 0 holds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from laformer.cli.data import main as data_main
from tests.data.packed_common import gopro_overrides, write_gopro

pytest.importorskip("litdata", reason="packed stores need the stream extra (pyproject.toml)")

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nodes(run_dir: Path, overrides: list[str], logs: Path) -> list[subprocess.Popen]:
    port = str(free_port())
    processes = []
    for node in (0, 1):
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "GROUP_RANK", "SLURM_PROCID")}
        env.update(
            OMP_NUM_THREADS="1",
            WANDB_MODE="offline",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            NODE_RANK=str(node),
            WORLD_SIZE="2",
        )
        command = [sys.executable, "-m", "laformer.cli.train", *overrides, f"hydra.run.dir={run_dir}"]
        log = open(logs / f"node{node}.log", "wb")  # noqa: SIM115 - closed when the process ends, below
        processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def run_nodes(run_dir: Path, overrides: list[str], logs: Path, timeout: float = 480) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    processes = start_nodes(run_dir, overrides, logs)
    try:
        codes = [p.wait(timeout=timeout) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout and p.stdout.close()
    outputs = [(logs / f"node{n}.log").read_text(errors="replace") for n in (0, 1)]
    assert codes == [0, 0], "\n\n".join(
        f"node {n} exited {c}:\n{o[-3000:]}" for n, (c, o) in enumerate(zip(codes, outputs))
    )


def samples(folder: Path) -> dict[int, dict[int, list[str]]]:
    """rank -> step -> pair names read, from the RecordSamples files."""
    seen: dict[int, dict[int, list[str]]] = {}
    for rank in (0, 1):
        steps: dict[int, list[str]] = defaultdict(list)
        for line in (folder / f"rank{rank}.txt").read_text().splitlines():
            step, name = line.split(" ", 1)
            steps[int(step)].append(name)
        seen[rank] = dict(steps)
    return seen


@pytest.mark.slow
def test_two_nodes_on_one_machine_step_on_disjoint_samples_and_resume(tmp_path: Path) -> None:
    root = write_gopro(tmp_path / "data", scenes=2, frames=4)  # 8 pairs: 4 per rank and epoch
    store = tmp_path / "store"
    assert data_main(["pack", *gopro_overrides(root), "--out", str(store), "--chunk-pairs", "2"]) == 0
    run_dir = tmp_path / "run"

    def overrides(log: Path, steps: int, *extra: str) -> list[str]:
        return [
            "experiment=demo",
            *gopro_overrides(root, "data.store=streaming", f"data.store_path={store}"),
            "data.batch_size=2",  # global: one pair per rank and step
            "data.num_workers=0",
            "data.val_limit=2",
            "model.width=8",
            "logger=csv",
            "test_after_fit=false",
            "callbacks.anchors.methods=[]",
            "callbacks.image_grid=null",
            "callbacks.progress_bar=null",
            "trainer=ddp_multinode",
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "trainer.num_nodes=2",
            f"trainer.max_steps={steps}",
            "trainer.val_check_interval=4",
            "trainer.log_every_n_steps=1",
            "+callbacks.samples._target_=tests.suite.sample_log.RecordSamples",
            f"+callbacks.samples.folder={log}",
            *extra,
        ]

    run_nodes(run_dir, overrides(tmp_path / "first", 4), tmp_path / "logs-first")
    node0 = (tmp_path / "logs-first" / "node0.log").read_text(errors="replace")
    assert "distributed_backend=gloo" in node0 and "Starting with 2 processes" in node0
    first = samples(tmp_path / "first")
    assert sorted(first[0]) == sorted(first[1]) == [0, 1, 2, 3], "both ranks take every step"
    epoch = {rank: {n for names in steps.values() for n in names} for rank, steps in first.items()}
    assert len(epoch[0]) == len(epoch[1]) == 4 and not epoch[0] & epoch[1], "ranks read disjoint shards"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 4
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len([c for c in checkpoints if c.startswith("best-")]) == 1 and "last.ckpt" in checkpoints
    assert len(checkpoints) == 2, f"one checkpoint set, written once: {checkpoints}"

    last = run_dir / "checkpoints" / "last.ckpt"
    run_nodes(run_dir, overrides(tmp_path / "resumed", 6, f"ckpt_path={last}"), tmp_path / "logs-resumed")
    resumed = samples(tmp_path / "resumed")
    assert sorted(resumed[0]) == sorted(resumed[1]) == [4, 5], "both ranks go on from step 4"
    second = {rank: {n for names in steps.values() for n in names} for rank, steps in resumed.items()}
    assert not second[0] & second[1]
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 6
