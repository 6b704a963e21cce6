"""The attention ablation: its report from job summaries (seeds, paired intervals, whole vs tiled), its configs, and
(slow) a tiny real sweep through run.sh, reported end to end."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from hydra.core.hydra_config import HydraConfig
from scipy import stats

from laformer.models import LAformer
from laformer.models.complexity import count_macs, count_parameters
from laformer.runs import write_summary
from tests.conftest import FAST_DEMO
from tests.experiments.scripts import load_script
from tests.reliability.common import merged

ROOT = Path(__file__).resolve().parents[2]

report = load_script("experiments/ablation_attention/report.py", "ablation_attention_report")

# test PSNR (whole, tiled) per task, crop, attention and seed: linear is RELA + 0.1 dB + seed noise
WHOLE = {"linear": [27.0, 27.3, 27.1], "rela": [26.9, 27.1, 27.1], "softmax": [27.5, 27.6, 27.2]}
TILED = {"linear": [26.8, 27.1, 27.0], "rela": [26.9, 27.0, 27.0], "softmax": [27.0, 27.1, 26.9]}
SEEDS = (1, 2, 3)


def _net(attention: str) -> dict:
    return {"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "attention": attention, "width": 8}


def _summary(task: str, crop: int, attention: str, seed: int, whole: float, tiled: float) -> dict:
    sets = {"demo-test": (whole, tiled, 14.7), "demo-val": (whole - 1, tiled - 1, 15.3)}
    metrics = {}
    for name, (w, t, inp) in sets.items():
        metrics |= {
            f"test/{name}/psnr": w,
            f"test/{name}/ssim": 0.7 + (w - 27) / 10,
            f"test/{name}/input_psnr": inp,
            f"test/{name}/tiled_psnr": t,
            f"test/{name}/tiled_ssim": 0.69,
            f"test/{name}/tile": float(crop),
        }
        if task == "noise50":
            metrics[f"test/{name}/nlmeans_psnr"] = 25.0
    return {
        "task": "train",
        "attention": attention,
        "net": _net(attention),
        "seed": seed,
        "patch_size": crop,
        "degradation": "GaussianNoise" if task == "noise50" else "LowLight",
        "overrides": [
            f"data/degradation={task}",
            f"data.patch_size={crop}",
            f"seed={seed}",
            f"model.attention={attention}",
        ],
        "steps": 400,
        "metrics": metrics,
        "throughput": {"batches": 400, "train_time_s": 120.0, "batches_per_s": 3.3, "images_per_s": 26.7},
        "wall_time_s": 150.0,
        "run_dir": f"/runs/{task}/{crop}/{attention}/{seed}",
    }


def _sweep(tmp_path: Path, tasks=("noise50", "lowlight"), crops=(64, 32), shuffle=True) -> Path:
    jobs = [
        _summary(task, crop, attention, seed, WHOLE[attention][i] - (crop == 32), TILED[attention][i] - (crop == 32))
        for task in tasks
        for crop in crops
        for i, seed in enumerate(SEEDS)
        for attention in ("softmax", "linear", "rela")  # not the table's order
    ]
    if shuffle:
        jobs = jobs[::-1]
    sweep = tmp_path / "sweep"
    for i, summary in enumerate(jobs):
        write_summary(sweep / str(i), summary)
    return sweep


def _table(tmp_path: Path, **kwargs) -> list[dict]:
    return report.summary_rows(report.seed_rows(report.read_job_summaries(_sweep(tmp_path, **kwargs)), 64))


def _row(table, task="noise50", crop=64, set_name="demo-test", attention="linear") -> dict:
    (row,) = [r for r in table if (r["task"], r["crop"], r["set"], r["attention"]) == (task, crop, set_name, attention)]
    return row


def test_rows_are_one_per_job_and_set_with_the_sweep_axes(tmp_path: Path) -> None:
    rows = report.seed_rows(report.read_job_summaries(_sweep(tmp_path)), macs_size=64)
    assert len(rows) == 2 * 2 * 3 * 3 * 2  # tasks x crops x seeds x attentions x sets
    first = rows[:9]
    assert [(r["task"], r["crop"], r["set"]) for r in first] == [("noise50", 64, "demo-test")] * 9
    assert [(r["attention"], r["seed"]) for r in first] == [
        (a, s) for a in ("linear", "rela", "softmax") for s in SEEDS
    ]
    assert first[0]["psnr"] == 27.0 and first[0]["tiled_psnr"] == 26.8 and first[0]["tile"] == 64
    assert first[0]["whole_minus_tiled"] == pytest.approx(0.2) and first[0]["nlmeans_psnr"] == 25.0
    for attention in ("linear", "rela", "softmax"):
        row = next(r for r in rows if r["attention"] == attention)
        net = LAformer.from_preset("tiny", attention=attention, width=8)
        assert row["params_m"] == pytest.approx(count_parameters(net) / 1e6)
        assert row["macs_g"] == pytest.approx(count_macs(net, 64, 64) / 1e9)
    assert rows[0]["train_time_min"] == pytest.approx(2.0) and rows[0]["wall_time_min"] == pytest.approx(2.5)


def test_axes_come_from_overrides_else_from_the_run_keys() -> None:
    summary = _summary("lowlight", 32, "rela", 2, 27.0, 26.0)
    assert report.job_axes(summary) | {"model": None} == {
        "task": "lowlight",
        "crop": 32,
        "seed": 2,
        "attention": "rela",
        "model": None,
    }
    summary["overrides"] = ["model.attention=rela"]  # a sweep of attentions only: the run keys say the rest
    summary["sigma"] = 50.0
    assert report.job_axes(summary)["task"] == "LowLight σ50.0"
    assert (report.job_axes(summary)["crop"], report.job_axes(summary)["seed"]) == (32, 2)
    summary["seed"] = 0  # a falsy seed is still a seed
    assert report.job_axes(summary)["seed"] == 0


def test_means_sds_and_paired_t_intervals_against_rela(tmp_path: Path) -> None:
    table = _table(tmp_path)
    linear, rela = _row(table), _row(table, attention="rela")
    assert linear["seeds"] == 3 and linear["seed_list"] == "1 2 3"
    assert linear["psnr_mean"] == pytest.approx(statistics.mean(WHOLE["linear"]))
    assert linear["psnr_sd"] == pytest.approx(statistics.stdev(WHOLE["linear"]))
    diffs = [a - b for a, b in zip(WHOLE["linear"], WHOLE["rela"])]
    half = stats.t.ppf(0.975, 2) * statistics.stdev(diffs) / 3**0.5
    assert linear["diff_psnr"] == pytest.approx(statistics.mean(diffs))
    assert (linear["diff_psnr_low"], linear["diff_psnr_high"]) == pytest.approx(
        (statistics.mean(diffs) - half, statistics.mean(diffs) + half)
    )
    assert linear["diff_psnr_n"] == 3
    tiled = [a - b for a, b in zip(TILED["linear"], TILED["rela"])]
    assert linear["diff_tiled_psnr"] == pytest.approx(statistics.mean(tiled))
    gaps = [w - t for w, t in zip(WHOLE["linear"], TILED["linear"])]
    assert linear["whole_minus_tiled_mean"] == pytest.approx(statistics.mean(gaps))
    assert linear["whole_minus_tiled_low"] > 0  # every seed's one pass beats its tiles
    assert rela["diff_psnr"] is None and rela["psnr_mean"] == pytest.approx(statistics.mean(WHOLE["rela"]))
    # each crop pairs with its own RELA jobs: the 32² ones are 1 dB lower, the differences the same
    assert _row(table, crop=32)["diff_psnr"] == pytest.approx(linear["diff_psnr"])
    anchors = [r for r in table if r["attention"] == report.ANCHORS["nlmeans"]]
    assert {(r["task"], r["crop"], r["set"]) for r in anchors} == {
        ("noise50", c, s) for c in (64, 32) for s in ("demo-test", "demo-val")
    }
    assert all(r["psnr_mean"] == 25.0 for r in anchors)  # no NL-means for low light


def test_a_missing_seed_pairs_only_the_seeds_both_variants_have(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, tasks=("noise50",), crops=(64,))
    for job in sweep.iterdir():  # drop RELA's seed 3
        summary = json.loads((job / "summary.json").read_text())
        if summary["attention"] == "rela" and summary["seed"] == 3:
            (job / "summary.json").unlink()
    table = report.summary_rows(report.seed_rows(report.read_job_summaries(sweep), 64))
    linear = _row(table)
    assert linear["seeds"] == 3 and linear["diff_psnr_n"] == 2
    assert linear["diff_psnr"] == pytest.approx(statistics.mean([27.0 - 26.9, 27.3 - 27.1]))


def test_report_writes_tables_markdown_and_plot(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    out = tmp_path / "out"
    report.write_report(sweep, out, macs_size=64)

    with (out / "results.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["attention"] for r in table[:4]] == ["linear", "rela", "softmax", report.ANCHORS["nlmeans"]]
    assert table[0]["task"] == "noise50" and table[0]["crop"] == "64" and table[0]["set"] == "demo-test"
    with (out / "results_per_seed.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 72
    markdown = (out / "results.md").read_text()
    assert str(sweep) in markdown and "36 jobs" in markdown and "seeds 1, 2, 3" in markdown
    assert "## Gaussian noise σ 50: held-out test photos (`demo-test`)" in markdown
    assert "## low light: validation photos (`demo-val`)" in markdown
    assert "MACs @64² (G)" in markdown
    assert "| 64² | linear | 3 | 27.13 ± 0.15 | +0.10 [" in markdown
    assert "| 64² | 2 | 27.30 (27.10) | 27.10 (27.00) | 27.60 (27.10) |" in markdown  # per seed, tiled in brackets
    assert "Gaussian noise σ 50, crop 64²: linear − RELA +0.10 dB, 95% CI [" in markdown
    assert "low light, crop 64²: softmax whole − tiled +0.43 [" in markdown
    image = matplotlib.image.imread(out / "psnr_by_attention.png")
    assert image.shape[0] > 500 and image.shape[1] > 1000  # two tasks: two rows of two panels


# RELA jobs of the old initialisation (an independent draw of every weight): the same seeds, a wider spread
INDEPENDENT_RELA = [26.4, 27.6, 27.0]


def _independent_init(tmp_path: Path, seeds=SEEDS) -> Path:
    folder = tmp_path / "independent"
    for i, seed in enumerate(seeds):
        psnr = INDEPENDENT_RELA[SEEDS.index(seed)]
        write_summary(folder / str(i), _summary("noise50", 64, "rela", seed, psnr, psnr - 0.1))
    return folder


def test_initialisation_comparison_pairs_both_starts_with_linear_by_seed(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, tasks=("noise50",), crops=(64,))
    rows = report.seed_rows(report.read_job_summaries(sweep), 64)
    independent = report.seed_rows(report.read_job_summaries(_independent_init(tmp_path, seeds=(3, 1, 2))), 64)
    table = report.initialisation_rows(rows, independent)
    assert [(r["task"], r["crop"], r["set"]) for r in table] == [
        ("noise50", 64, "demo-test"),
        ("noise50", 64, "demo-val"),
    ]
    row = table[0]
    assert row["seeds"] == 3
    assert row["rela_shared_sd"] == pytest.approx(statistics.stdev(WHOLE["rela"]))
    assert row["rela_independent_sd"] == pytest.approx(statistics.stdev(INDEPENDENT_RELA))
    for name, rela in (("shared", WHOLE["rela"]), ("independent", INDEPENDENT_RELA)):
        diffs = [r - lin for r, lin in zip(rela, WHOLE["linear"])]
        half = stats.t.ppf(0.975, 2) * statistics.stdev(diffs) / 3**0.5
        assert row[f"diff_{name}_mean"] == pytest.approx(statistics.mean(diffs))
        assert row[f"diff_{name}_sd"] == pytest.approx(statistics.stdev(diffs))
        assert (row[f"diff_{name}_low"], row[f"diff_{name}_high"]) == pytest.approx(
            (statistics.mean(diffs) - half, statistics.mean(diffs) + half)
        )
    shift = [a - b for a, b in zip(WHOLE["rela"], INDEPENDENT_RELA)]
    assert row["shared_minus_independent"] == pytest.approx(statistics.mean(shift))
    assert table[1]["rela_shared_mean"] == pytest.approx(statistics.mean(WHOLE["rela"]) - 1)  # demo-val is 1 dB lower


def test_initialisation_comparison_counts_only_seeds_with_all_three_jobs(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, tasks=("noise50",), crops=(64, 32))
    rows = report.seed_rows(report.read_job_summaries(sweep), 64)
    independent = report.seed_rows(report.read_job_summaries(_independent_init(tmp_path, seeds=(1, 2))), 64)
    (row, _) = report.initialisation_rows(rows, independent)  # crop 32 has no independent jobs: no row
    assert row["crop"] == 64 and row["seeds"] == 2
    assert row["rela_independent_mean"] == pytest.approx(statistics.mean(INDEPENDENT_RELA[:2]))
    assert row["rela_shared_mean"] == pytest.approx(statistics.mean(WHOLE["rela"][:2]))


def test_report_adds_the_initialisation_section_when_given_old_jobs(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, tasks=("noise50",), crops=(64,))
    out = tmp_path / "out"
    report.main(
        [str(sweep), "--out", str(out), "--macs-size", "64", "--independent-init", str(_independent_init(tmp_path))]
    )
    markdown = (out / "results.md").read_text()
    assert "## RELA's initial weights: the same start as linear, or an independent draw" in markdown
    diffs = [r - lin for r, lin in zip(WHOLE["rela"], WHOLE["linear"])]
    assert (
        f"| Gaussian noise σ 50, 64², `demo-test` | 3 | 27.03 ± 0.12 | 27.00 ± 0.60 | {statistics.mean(diffs):+.2f} ["
        in markdown
    )
    with (out / "results_initialisation.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    report.main([str(sweep), "--out", str(out), "--macs-size", "64", "--independent-init", "none"])
    assert "initial weights" not in (out / "results.md").read_text()


def test_one_seed_has_no_interval_and_a_job_without_scores_shows_dashes(tmp_path: Path) -> None:
    broken = _summary("noise50", 64, "softmax", 1, 0, 0)
    broken["metrics"] = {}
    sweep = tmp_path / "sweep"
    for i, summary in enumerate(
        [_summary("noise50", 64, "linear", 1, 27.0, 26.9), _summary("noise50", 64, "rela", 1, 26.8, 26.8), broken]
    ):
        write_summary(sweep / str(i), summary)
    table = report.write_report(sweep, tmp_path / "out", macs_size=32)
    linear = _row(table)
    assert linear["diff_psnr"] == pytest.approx(0.2) and linear["diff_psnr_low"] is None
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "+0.20 (one seed: no interval)" in markdown
    assert any(r["attention"] == "softmax" and r["set"] == "—" for r in table)  # a job scored on no set is listed
    assert "| 64² | softmax | 1 | — | — | — | — | — |" in markdown


def test_old_summaries_without_net_config_are_refused() -> None:
    old = _summary("noise50", 64, "rela", 1, 25.0, 25.0)
    del old["net"]
    with pytest.raises(KeyError, match="no 'net' config"):
        report.seed_rows([old])


def test_missing_or_empty_sweep_folder_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sweep folder not found"):
        report.main([str(tmp_path / "nope"), "--out", str(tmp_path)])
    (tmp_path / "empty" / "0").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no job summaries"):
        report.main([str(tmp_path / "empty"), "--out", str(tmp_path)])


def test_cpu_and_gpu_configs_run_the_same_study(make_cfg) -> None:
    cpu = make_cfg("train", ["experiment=ablation_attention"])
    cpu_hydra = HydraConfig.get()
    gpu = make_cfg("train", ["experiment=ablation_attention_gpu"])
    gpu_hydra = HydraConfig.get()

    for cfg in (cpu, gpu):
        assert cfg.model.name == "tiny" and cfg.test_after_fit is True
        assert cfg.trainer.limit_val_batches == 0  # nothing chosen on validation: the final weights are scored
        assert cfg.data.degradation._target_ == "laformer.data.degradations.GaussianNoise"
        assert cfg.data.degradation.sigma == 50.0
        assert cfg.callbacks.tiled_scoring.tile == cfg.data.patch_size  # tiles of the training crop
        assert list(cfg.callbacks.anchors.methods) == ["nlmeans", "bm3d"]
    for key in ("loss", "optimizer"):  # same training recipe at both scales (warm-up scales with the budget)
        assert cpu.module[key] == gpu.module[key], key
    assert cpu.data._target_ == "laformer.data.DemoDataModule"
    assert cpu.data.val_crop is None and cpu.data.test_crop is None  # whole photos for every variant
    assert list(cpu.data.test_photos) == ["chelsea"] and list(cpu.data.val_photos) == ["coins"]
    assert cpu.trainer.accelerator == "cpu" and gpu.trainer.accelerator == "gpu"
    assert gpu.data._target_ == "laformer.data.BenchmarkDataModule" and gpu.data.eval_degradation == "train"
    cpu_axes, gpu_axes = dict(cpu_hydra.sweeper.params), dict(gpu_hydra.sweeper.params)
    assert list(cpu_axes) == list(gpu_axes) == ["data/degradation", "data.patch_size", "seed", "model.attention"]
    assert cpu_axes["data.patch_size"] == "64,32" and gpu_axes["data.patch_size"] == "128,64"
    for axes in (cpu_axes, gpu_axes):
        assert axes["data/degradation"] == "noise50,lowlight"
        assert axes["seed"] == "1,2,3" and axes["model.attention"] == "linear,rela,softmax"
    for hydra_cfg in (cpu_hydra, gpu_hydra):
        for name in ("ablation_report", "rank_analysis"):
            callback = hydra_cfg.callbacks[name]
            assert callback._target_ == "laformer.reports.RunScriptAfterSweep"
            assert (ROOT / callback.script).is_file()
        assert list(hydra_cfg.callbacks)[-1] == "ablation_report"  # runs first (last-first): the report
        assert "collect_sweep" in hydra_cfg.callbacks  # the generic sweep table is still written
    assert list(cpu_hydra.callbacks.ablation_report.args) == []
    assert list(gpu_hydra.callbacks.ablation_report.args) == ["--out", "experiments/ablation_attention/gpu"]
    assert list(gpu_hydra.callbacks.rank_analysis.args) == ["--out", "experiments/rank_analysis/gpu"]


def test_the_low_light_task_composes_for_both_scales(make_cfg) -> None:
    for experiment in ("ablation_attention", "ablation_attention_gpu"):
        cfg = make_cfg("train", [f"experiment={experiment}", "data/degradation=lowlight"])
        assert cfg.data.degradation._target_ == "laformer.data.photometric.LowLight"
        assert "sigma" not in cfg.data.degradation  # the noise task's sigma does not leak into low light


# -- a tiny real sweep, end to end -----------------------------------------------------------------------------
TINY_SWEEP = merged(
    (o for o in FAST_DEMO if not o.startswith("experiment=")),
    [
        "data/degradation=noise50,lowlight",
        "data.patch_size=16",
        "seed=1,2",
        "data.val_photos=[coins]",
        "data.test_photos=[chelsea]",
        "data.val_crop=48",
        "data.test_crop=64",
        "trainer.max_steps=2",
        "test_after_fit=true",
        "callbacks.anchors.methods=[nlmeans]",
    ],
)


@pytest.mark.slow  # 12 real training jobs (2 steps each) in one multirun, then the report and the rank analysis
def test_run_script_sweeps_seeds_tasks_and_attentions_then_reports(tmp_path: Path) -> None:
    out, rank_out = tmp_path / "report", tmp_path / "rank"
    env = {**os.environ, "LAFORMER_OUTPUTS": str(tmp_path / "outputs"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        "bash",
        str(ROOT / "experiments" / "ablation_attention" / "run.sh"),
        *TINY_SWEEP,
        f"hydra.callbacks.ablation_report.args=[--out,{out}]",
        f"hydra.callbacks.rank_analysis.args=[--out,{rank_out},--size,16]",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Callback RunScriptAfterSweep.on_multirun_end raised" not in done.stderr, done.stderr[-3000:]

    with (out / "results.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    networks = [r for r in table if r["attention"] in ("linear", "rela", "softmax")]
    assert {(r["task"], r["set"]) for r in networks} == {
        (t, s) for t in ("noise50", "lowlight") for s in ("demo-test", "demo-val")
    }
    assert len(networks) == 2 * 2 * 3 and all(r["seeds"] == "2" and r["crop"] == "16" for r in networks)
    assert all(float(r["psnr_mean"]) > 0 and float(r["tiled_psnr_mean"]) > 0 for r in networks)
    assert all(r["diff_psnr_n"] == "2" for r in networks if r["attention"] != "rela")
    assert any(r["attention"] == report.ANCHORS["nlmeans"] and r["task"] == "noise50" for r in table)
    assert not any(r["attention"] == report.ANCHORS["nlmeans"] and r["task"] == "lowlight" for r in table)
    with (out / "results_per_seed.csv").open(newline="") as handle:
        per_seed = list(csv.DictReader(handle))
    assert len(per_seed) == 12 * 2 and all(r["steps"] == "2" and r["tile"] == "16.0" for r in per_seed)
    assert (out / "psnr_by_attention.png").stat().st_size > 10_000

    rank_md = (rank_out / "rank_table.md").read_text()
    assert "Each trained network at full resolution (level 1), one row per seed" in rank_md
    with (rank_out / "rank_levels.csv").open(newline="") as handle:
        trained = [r for r in csv.DictReader(handle) if r["state"] == "trained" and r["level"] == "1"]
    assert {(r["variant"], r["task"], r["seed"]) for r in trained} == {
        (v, t, s) for v in ("linear", "rela") for t in ("noise50", "lowlight") for s in ("1", "2")
    }
    (sweep,) = (tmp_path / "outputs" / "ablation_attention" / "multiruns").iterdir()
    assert (sweep / "sweep_summary.csv").is_file() and len(list(sweep.glob("*/summary.json"))) == 12
