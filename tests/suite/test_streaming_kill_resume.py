"""A real ``laformer-train`` streaming a packed store, killed with SIGKILL mid-epoch and resumed with ckpt_path=last:
from the checkpoint's step on, it reads the samples (names and crops' seeds' order) of an uninterrupted run."""

from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from laformer.cli.data import main as data_main
from tests.data.packed_common import gopro_overrides, write_gopro
from tests.reliability.common import run_cli, signal_at_step

pytest.importorskip("litdata", reason="packed stores need the stream extra (pyproject.toml)")

STEPS = 40  # 8 pairs, batch 2: 4 steps an epoch


def read_steps(folder: Path) -> dict[int, list[str]]:
    steps: dict[int, list[str]] = defaultdict(list)
    for line in (folder / "rank0.txt").read_text().splitlines():
        step, name = line.split(" ", 1)
        steps[int(step)].append(name)
    return dict(steps)


@pytest.mark.slow
def test_killed_streaming_run_resumes_on_the_remaining_samples(tmp_path: Path) -> None:
    root = write_gopro(tmp_path / "data", scenes=2, frames=4)
    store = tmp_path / "store"
    assert data_main(["pack", *gopro_overrides(root), "--out", str(store), "--chunk-pairs", "2"]) == 0

    def overrides(log: Path, *extra: str) -> list[str]:
        return [
            "experiment=demo",
            *gopro_overrides(root, "data.store=streaming", f"data.store_path={store}"),
            "data.batch_size=2",
            "data.num_workers=0",
            "data.val_limit=1",
            "model.width=8",
            "logger=csv",
            "test_after_fit=false",
            "callbacks.anchors.methods=[]",
            "callbacks.image_grid=null",
            "callbacks.progress_bar=null",
            "callbacks.model_checkpoint.last_every_n_steps=1",
            f"trainer.max_steps={STEPS}",
            f"trainer.val_check_interval={STEPS}",
            "+callbacks.samples._target_=tests.suite.sample_log.RecordSamples",
            f"+callbacks.samples.folder={log}",
            *extra,
        ]

    run_cli(tmp_path / "whole", overrides(tmp_path / "whole-log"))
    whole = read_steps(tmp_path / "whole-log")
    assert sorted(whole) == list(range(STEPS))

    killed_dir = tmp_path / "killed"
    proc, _, log = signal_at_step(killed_dir, overrides(tmp_path / "killed-log"), tmp_path / "k.log", 6, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, log[-2000:]
    step = torch.load(killed_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    if step % 4 == 0 or step >= STEPS:
        pytest.skip(f"the kill landed at step {step}, on an epoch boundary or the end; the test wants mid-epoch")
    run_cli(killed_dir, overrides(tmp_path / "resumed-log", "ckpt_path=last"))
    resumed = read_steps(tmp_path / "resumed-log")
    assert min(resumed) == step, f"the resumed run began at step {min(resumed)}, its checkpoint holds {step}"
    assert resumed == {s: whole[s] for s in range(step, STEPS)}, "the resumed run read other samples"
