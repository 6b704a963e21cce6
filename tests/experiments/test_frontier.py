"""The quality-versus-cost frontier (experiments/frontier/frontier.py): matched cost points, a report from real tiny
jobs (trained by laformer-train, measured in-process), resuming, and refusals that name the fix."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from laformer.models.peers import PeerUnavailableError, import_spandrel
from laformer.runs import SUMMARY_FILE
from tests.experiments.scripts import load_script

try:
    import_spandrel()
except PeerUnavailableError as exc:  # the core suite works without the `peers` extra
    pytest.skip(str(exc), allow_module_level=True)

frontier = load_script("experiments/frontier/frontier.py", "frontier_study")

# Each job in seconds: 2 steps on small crops, one validation and one test photo cropped to odd sides.
TOY = [
    "data.patch_size=32",
    "data.batch_size=2",
    "data.repeat=1",
    "data.val_photos=[coffee]",
    "data.val_crop=45",
    "data.test_photos=[camera]",
    "data.test_crop=37",
    "callbacks.anchors.methods=[nlmeans]",
    "callbacks.image_grid=null",
]
TOY_NETWORKS = """
tolerance: 0.25
points:
  toy:
    laformer_rela: [model=tiny, model.width=8]
    restormer: [model=restormer, model.preset=small, model.dim=6]
"""


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_shipped_cost_points_are_matched_and_hold_every_family() -> None:
    networks, tolerance = frontier.load_networks()
    assert tolerance == 0.25
    costs = frontier.cost(networks)
    frontier.check_matched(networks, costs, tolerance)  # raises if a size drifted
    for point in ("tiny", "small"):
        names = [n.name for n in networks if n.point == point]
        assert names[:2] == ["laformer_rela", "laformer_linear"]
        assert {"nafnet", "swinir", "restormer"} <= set(names) and {"drunet", "dncnn"} & set(names)
    ratio = costs["small/laformer_rela"]["macs_g"] / costs["tiny/laformer_rela"]["macs_g"]
    assert ratio > 4  # two cost points, not one


def test_a_network_off_its_cost_point_is_refused_before_training(tmp_path: Path) -> None:
    spec = tmp_path / "networks.yaml"
    spec.write_text("points:\n  tiny:\n    laformer_rela: [model=tiny]\n    nafnet: [model=nafnet, model.preset=base]")
    with pytest.raises(SystemExit, match=r"tiny/nafnet: 16\.05 G MACs, x4\.07\d of the point.s .*model\.width"):
        frontier.main(["--networks-file", str(spec), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit, match="unknown point"):
        frontier.select(frontier.load_networks(spec)[0], "huge", None)


def test_pareto_front_keeps_the_points_nothing_beats() -> None:
    points = [("a", 1.0, 20.0), ("b", 2.0, 19.0), ("c", 3.0, 25.0), ("d", 0.5, 18.0), ("e", 3.0, 24.0)]
    assert frontier.pareto(points) == {"a", "c", "d"}


@pytest.mark.slow  # two real training jobs, 27 s on the AVX2 EPYC; the report's pieces are tested with fakes
def test_report_from_two_tiny_finished_jobs_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "networks.yaml"
    spec.write_text(TOY_NETWORKS)
    out = tmp_path / "study"
    argv = ["--networks-file", str(spec), "--seeds", "1", "--steps", "2", "--out", str(out)]
    argv += ["--sizes", "32", "48", "--repeats", "2", "--warmup", "0", *TOY]
    rows = frontier.main(argv)

    for name in ("results.csv", "results.md", "results_per_seed.csv", "frontier.png", "measurements.csv"):
        assert (out / name).is_file(), name
    by_name = {row["network"]: row for row in _read(out / "results.csv")}
    reference, peer = by_name["laformer_rela"], by_name["restormer"]
    for row in (reference, peer):
        assert row["seeds"] == "1" and float(row["test_psnr"]) > 0 and float(row["latency_s"]) > 0, row
        assert float(row["est_4k_gb"]) > 0 and row["fits_4k"] in ("yes", "no")
    assert float(peer["diff_vs_ref"]) == pytest.approx(float(peer["test_psnr"]) - float(reference["test_psnr"]))
    assert reference["diff_vs_ref"] == ""  # the reference is not compared with itself
    assert "yes" in (reference["pareto"], peer["pareto"])
    assert float(by_name["noisy input"]["test_psnr"]) > 0 and float(by_name["nlmeans"]["test_psnr"]) > 0
    markdown = (out / "results.md").read_text()
    assert "| toy | laformer_rela |" in markdown and "| toy | restormer |" in markdown and "latency 32²" in markdown
    assert [r["network"] for r in rows] == ["laformer_rela", "restormer"]
    per_seed = _read(out / "results_per_seed.csv")
    jobs = {(r["network"], r["seed"], r["steps"]) for r in per_seed}
    assert jobs == {("laformer_rela", "1", "2"), ("restormer", "1", "2")}

    summary = out / "runs" / "toy" / "laformer_rela" / "seed1" / SUMMARY_FILE
    written = summary.stat().st_mtime_ns
    capsys.readouterr()
    frontier.main(argv)  # nothing is trained or measured again
    printed = capsys.readouterr().out
    assert printed.count("finished earlier") == 2 and "[measure" not in printed
    assert summary.stat().st_mtime_ns == written
    assert len(_read(out / "measurements.csv")) == 2

    changed = [*argv[: argv.index("--steps") + 1], "3", *argv[argv.index("--steps") + 2 :]]
    refusal = r"other overrides .*trainer.max_steps=2.*trainer.max_steps=3.*Delete that folder"
    with pytest.raises(SystemExit, match=refusal):
        frontier.main(changed)


def test_a_started_job_resumes_from_its_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frontier's jobs go through laformer.sweeps.start_job, as every multirun job does."""
    import argparse
    import json
    import subprocess

    import torch

    from laformer.sweeps import JOB_FILE

    network = frontier.Network("toy", "laformer_rela", ("model=tiny",), reference=True)
    args = argparse.Namespace(out=tmp_path, steps=4, lr=1e-3, verbose=False)
    commands: list[list[str]] = []

    def killed(command: list[str], **kwargs) -> subprocess.CompletedProcess:
        commands.append(command)
        return subprocess.CompletedProcess(command, -9, "", "Killed\n")

    monkeypatch.setattr(frontier.subprocess, "run", killed)
    assert "failed" in frontier.train(network, 1, args, [], "[1/1]")  # died before its first checkpoint
    assert not any(c.startswith("ckpt_path=") for c in commands[-1])
    last = frontier.run_dir(tmp_path, network, 1) / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"global_step": 2}, last)
    frontier.train(network, 1, args, [], "[1/1]")
    assert commands[-1][-1] == "ckpt_path=last"
    attempts = json.loads((last.parent.parent / JOB_FILE).read_text())["attempts"]
    assert len(attempts) == 2 and attempts[1]["resumed_from"] == {"checkpoint": str(last), "step": 2}
