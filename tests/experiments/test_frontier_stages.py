"""The stages of the fair frontier (experiments/frontier/stages.py, issue 26) with the training faked: which jobs each
stage starts, at which rate, with which curve checkpoints, and that every choice reads validation scores only."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from laformer.models.peers import PeerUnavailableError, import_spandrel
from laformer.reports import read_csv
from tests.experiments.scripts import load_script

try:
    import_spandrel()
except PeerUnavailableError as exc:  # the networks file names peer networks
    pytest.skip(str(exc), allow_module_level=True)

frontier = load_script("experiments/frontier/frontier.py", "frontier_study_stages")
stages = load_script("experiments/frontier/stages.py", "frontier_stages")

# Validation prefers 2e-3 for every network; the held-out photos would prefer 6e-3 (never to be read).
VAL_BEST, TEST_BEST = 2e-3, 6e-3


def _args(out: Path) -> argparse.Namespace:
    sets = {"test_set": "demo-test", "val_set": "demo-val"}
    return argparse.Namespace(networks_file=frontier.NETWORKS_FILE, networks=None, out=out, seeds=[1, 2],
                              seeds_given=False, steps=250, lr=1e-3, verbose=False, measure="none", **sets)  # fmt: skip


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every job a stage would train, as (network, seed, lr, steps, overrides), with made-up scores."""
    started: list[dict] = []

    def fake_train(network, seed, args, extra, position):
        started.append({"network": network.name, "seed": seed, "lr": args.lr, "steps": args.steps, "extra": extra,
                        "out": args.out, "overrides": network.overrides})  # fmt: skip
        val = 28.0 - abs(args.lr - VAL_BEST) * 1000
        test = 28.0 - abs(args.lr - TEST_BEST) * 100
        if network.name == "dncnn":
            val = 20.6 - args.lr * 10  # a plateau: 0.06 dB over the grid, its "best" rate is noise
        if "model.fusion=sum" in network.overrides:
            val += 0.5  # the one variant validation likes (and the combination that holds it)
        if "model.kernel_size=7" in network.overrides:
            test += 5.0  # held-out would like this one: must not matter
        return {"metrics": {"test/demo-val/psnr": val + seed * 0.01, "test/demo-test/psnr": test}, "steps": args.steps}

    monkeypatch.setattr(frontier, "train", fake_train)
    return started


def test_the_lr_stage_trains_the_grid_and_chooses_on_validation(jobs: list[dict], tmp_path: Path) -> None:
    chosen = stages.run_lr(frontier, _args(tmp_path), [])
    networks = [n.name for n in frontier.load_networks()[0] if n.point == "tiny" and n.name != "swinir"]
    assert len(jobs) == len(networks) * len(stages.GRID) and {j["steps"] for j in jobs} == {250}
    # network by network, RELA's whole grid first (all the choices stage needs), SwinIR cut
    assert [j["network"] for j in jobs[: len(stages.GRID)]] == ["laformer_rela"] * len(stages.GRID)
    assert {j["lr"] for j in jobs} == set(stages.GRID) and {j["seed"] for j in jobs} == {1}
    assert all(c["setting"] == VAL_BEST for (_, n), c in chosen.items() if n != "dncnn")  # not TEST_BEST
    rows = read_csv(tmp_path / "chosen_lr.csv")
    assert [r["network"] for r in rows] == networks
    assert {r["lr"] for r in rows if r["network"] != "dncnn"} == {VAL_BEST}
    # a grid that separates nothing chooses nothing: the fallback rate, and the row says why
    (dncnn,) = [r for r in rows if r["network"] == "dncnn"]
    assert dncnn["lr"] == stages.FALLBACK_LR and dncnn["how"].startswith("grid does not separate (spread 0.06 dB")
    assert stages.chosen_rates(tmp_path)["dncnn"] == stages.FALLBACK_LR
    assert stages.chosen_rates(tmp_path)["laformer_tuned"] == VAL_BEST  # the tuned preset trains at RELA's rate


def test_the_choices_stage_picks_on_validation_and_trains_the_combination(
    jobs: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "chosen_lr.csv").write_text("point,network,lr\r\ntiny,laformer_rela,0.003\r\n")
    chosen = stages.run_choices(frontier, _args(tmp_path), [])
    assert chosen["fusion",]["setting"] == "sum" and chosen["kernel_size",]["setting"] == "5"  # 7 won only held out
    assert {j["lr"] for j in jobs} == {3e-3} and {j["steps"] for j in jobs} == {500}
    combination = [j for j in jobs if j["network"] == "laformer_tuned"]
    assert [j["seed"] for j in combination] == [1, 2] and "model.fusion=sum" in combination[0]["overrides"]
    assert stages.tuned_overrides(tmp_path) == ("model=tiny", "model.attention=rela", "model.fusion=sum")
    printed = capsys.readouterr().out  # the PRESETS entry to paste beside `tiny` once it is adopted
    assert "'tiny-tuned': {'width': 16, " in printed and "'fusion': 'sum'}" in printed


def test_the_long_stage_trains_each_at_its_rate_with_curve_checkpoints(jobs: list[dict], tmp_path: Path) -> None:
    (tmp_path / "chosen_lr.csv").write_text("point,network,lr\r\ntiny,laformer_rela,0.003\r\ntiny,nafnet,0.002\r\n")
    args = _args(tmp_path)
    args.seeds, args.seeds_given = [3], True
    stages.run_stage("frontier", frontier, args, ["data.num_workers=0"])
    by_network = {j["network"]: j for j in jobs}
    assert "swinir" not in by_network and "laformer_tuned" not in by_network  # cut; no combination adopted yet
    assert by_network["laformer_rela"]["lr"] == 3e-3 and by_network["nafnet"]["lr"] == 2e-3
    assert {j["seed"] for j in jobs} == {3} and {j["steps"] for j in jobs} == {2000}
    assert by_network["nafnet"]["extra"] == [
        "callbacks=[default,curve_checkpoints]", "callbacks.curve_checkpoints.steps=[250,500,1000,2000]",
        "data.num_workers=0",
    ]  # fmt: skip
    assert by_network["nafnet"]["out"] == tmp_path / "stages" / "frontier"
    with pytest.raises(SystemExit, match=r"run `frontier.py --stage lr` first"):
        stages.run_stage("small", frontier, _args(tmp_path / "fresh"), [])


def test_a_long_stage_trains_only_the_networks_it_is_given(jobs: list[dict], tmp_path: Path) -> None:
    (tmp_path / "chosen_lr.csv").write_text("point,network,lr\r\ntiny,laformer_rela,0.003\r\ntiny,nafnet,0.002\r\n")
    frontier.main(["--stage", "frontier", "--out", str(tmp_path), "--networks", "nafnet,laformer_rela", "--seeds", "2"])
    assert [(j["network"], j["seed"]) for j in jobs] == [("laformer_rela", 2), ("nafnet", 2)]  # the stage's order
    with pytest.raises(SystemExit, match=r"unknown name\(s\) \['swinir'\]"):  # not in stage 3 (cut)
        frontier.main(["--stage", "frontier", "--out", str(tmp_path), "--networks", "swinir"])


def test_frontier_py_runs_a_stage_with_the_seeds_it_is_given(
    jobs: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    frontier.main(["--stage", "demo", "--out", str(tmp_path)])
    assert jobs == [] and "nothing to check, stage 2 adopted no tuned preset" in capsys.readouterr().out
    (tmp_path / "choices.csv").write_text(
        "choice,value,val_psnr,overrides\r\ncombination,adopt,28.6,model=tiny model.attention=rela model.fusion=sum\r\n"
    )
    frontier.main(["--stage", "demo", "data.num_workers=0", "--out", str(tmp_path), "--seeds", "2"])
    # the demo's own budget and rate, the reference against the adopted combination
    assert [(j["network"], j["seed"], j["lr"], j["steps"], j["extra"]) for j in jobs] == [
        ("laformer_rela", 2, 3e-3, 800, ["data.num_workers=0"]),
        ("laformer_tuned", 2, 3e-3, 800, ["data.num_workers=0"]),
    ]
    assert jobs[1]["overrides"] == ("model=tiny", "model.attention=rela", "model.fusion=sum")
    assert (tmp_path / "demo_check.csv").is_file()
    frontier.main(["--stage", "demo", "--out", str(tmp_path)])  # no --seeds: the stage's own (1, 2)
    assert [j["seed"] for j in jobs[2:]] == [1, 1, 2, 2]
    with pytest.raises(SystemExit):
        frontier.main(["--stage", "nonsense"])


def test_each_kept_checkpoint_is_scored_once_by_laformer_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import subprocess

    curve = tmp_path / "checkpoints" / "curve"
    curve.mkdir(parents=True)
    records = [{"step": 250, "train_time_s": 60.0, "checkpoint": "step0000250.ckpt"}]
    (curve / "curve.json").write_text(json.dumps({"records": records}))
    commands: list[list[str]] = []

    def fake_eval(command: list[str], **kwargs) -> subprocess.CompletedProcess:
        commands.append(command)
        target = Path(next(c for c in command if c.startswith("hydra.run.dir=")).split("=", 1)[1])
        target.mkdir(parents=True)
        scores = {"demo-test": {"psnr": 27.5}, "demo-val": {"psnr": 28.5}}
        (target / "summary.json").write_text(json.dumps({"task": "eval", "benchmarks": scores}))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(stages.subprocess, "run", fake_eval)
    scored = stages.score_curve(tmp_path, "demo-test", "demo-val")
    path = str(curve / "step0000250.ckpt")
    assert scored == [{**records[0], "checkpoint": path, "test_psnr": 27.5, "val_psnr": 28.5}]
    assert f"ckpt_path={curve / 'step0000250.ckpt'}" in commands[0] and "callbacks.anchors.methods=[]" in commands[0]
    assert stages.score_curve(tmp_path, "demo-test", "demo-val") == scored and len(commands) == 1  # not scored again


def test_a_combination_off_the_point_is_refused_until_resized(
    jobs: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qk 1.0 and FFN 2.66 are each on the point; together they cost x1.15, which stops the stage until resized."""
    (tmp_path / "chosen_lr.csv").write_text("point,network,lr\r\ntiny,laformer_rela,0.002\r\n")
    spec = stages.load_variants()
    # the costlier value first: every fake score ties, and a tie keeps the first value seen
    spec["choices"] = {c: dict(reversed(list(spec["choices"][c].items()))) for c in ("qk_ratio", "ffn_expansion")}
    monkeypatch.setattr(stages, "load_variants", lambda: spec)
    with pytest.raises(SystemExit, match=r"the combination: 4\.5\d G MACs, x1\.15\d .*presets\.tiny-tuned\.resize"):
        stages.run_choices(frontier, _args(tmp_path), [])
    spec["presets"]["tiny-tuned"]["resize"] = ["model.blocks=[1,1,2,2]"]
    stages.run_choices(frontier, _args(tmp_path), [])
    combination = next(j for j in jobs if j["network"] == "laformer_tuned")["overrides"]
    assert {"model.qk_ratio=1.0", "model.ffn_expansion=2.66", "model.blocks=[1,1,2,2]"} <= set(combination)


@pytest.mark.slow
def test_a_real_toy_job_keeps_and_scores_its_curve(tmp_path: Path) -> None:
    """One real laformer-train job through frontier.train with the curve overrides, then laformer-eval per step."""
    from tests.experiments.test_frontier import TOY, TOY_NETWORKS

    spec = tmp_path / "networks.yaml"
    spec.write_text(TOY_NETWORKS)
    args = _args(tmp_path)
    args.networks_file = spec
    (tmp_path / "chosen_lr.csv").write_text("point,network,lr\r\ntoy,laformer_rela,0.002\r\n")
    stage = stages.Stage("frontier", "toy", ("laformer_rela",), 4, (1,), (2, 4))
    stages.run_long(frontier, args, [*TOY, "data.test_crop=40"], stage, [1])
    folder = frontier.run_dir(tmp_path / "stages" / "frontier", frontier.load_networks(spec)[0][0], 1)
    scored = stages.score_curve(folder, "demo-test", "demo-val")
    assert [r["step"] for r in scored] == [2, 4]
    assert all(r["test_psnr"] > 0 and r["val_psnr"] > 0 and r["train_time_s"] > 0 for r in scored), scored


def test_frontier_py_loads_its_stages_when_run_as_a_script(tmp_path: Path) -> None:
    """As a user runs it (``python experiments/frontier/frontier.py --stage ...``): the stages file loads and the
    choices stage refuses, by name, to start before the rates exist (it found a dataclass-loading bug once)."""
    import subprocess
    import sys

    from tests.experiments.scripts import ROOT

    done = subprocess.run(
        [sys.executable, "experiments/frontier/frontier.py", "--stage", "choices", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "run `frontier.py --stage lr` first" in done.stderr + done.stdout


def test_a_stage_refuses_to_train_when_the_recipe_in_conf_changed(jobs: list[dict], tmp_path: Path) -> None:
    """The first stage keeps the composed recipe; an edit of conf/ between sittings (here: the kept copy says
    another weight decay) stops the next stage by name before any job trains."""
    import yaml

    (tmp_path / "chosen_lr.csv").write_text("point,network,lr\r\ntiny,laformer_rela,0.003\r\n")
    stages.run_stage("demo", frontier, _args(tmp_path), [])
    kept_path = tmp_path / "stages" / stages.RECIPE_FILE
    kept = yaml.safe_load(kept_path.read_text())
    assert kept["module.optimizer.lr"] == 3e-3 and "paths.root_dir" not in kept
    trained = len(jobs)
    kept["module.optimizer.weight_decay"] = 0.05
    kept_path.write_text(yaml.safe_dump(kept))
    with pytest.raises(SystemExit, match=r"recipe changed .*module\.optimizer\.weight_decay: 0\.05 -> 0\.0001"):
        stages.run_stage("frontier", frontier, _args(tmp_path), [])
    assert len(jobs) == trained  # nothing trained under the other recipe
