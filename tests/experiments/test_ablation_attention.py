"""The attention ablation: its report from job summaries, its configs, and (slow) the real sweep end to end."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from hydra.core.hydra_config import HydraConfig

from laformer.models import LAformer
from laformer.models.complexity import count_macs, count_parameters
from laformer.runs import write_summary
from tests.conftest import FAST_DEMO
from tests.experiments.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


report = load_script("experiments/ablation_attention/report.py", "ablation_attention_report")


def _net(attention: str) -> dict:
    return {"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "attention": attention, "width": 8}


def _summary(attention: str, psnr: float, ssim: float, train_time_s: float = 120.0) -> dict:
    return {
        "task": "train",
        "model": "tiny",
        "attention": attention,
        "net": _net(attention),
        "precision": "32-true",
        "steps": 1000,
        "metrics": {"val/psnr": psnr, "val/ssim": ssim, "val/input_psnr": 14.71},
        "input_psnr": 14.71,
        "throughput": {"batches": 1000, "train_time_s": train_time_s, "batches_per_s": 1.5, "images_per_s": 24.0},
        "wall_time_s": train_time_s + 30,
        "run_dir": f"/runs/{attention}",
    }


def _sweep(tmp_path: Path, jobs: list[dict]) -> Path:
    sweep = tmp_path / "sweep"
    for i, summary in enumerate(jobs):
        write_summary(sweep / str(i), summary)
    return sweep


def test_rows_follow_variant_order_and_count_each_network(tmp_path: Path) -> None:
    # job order of a sweep need not be the table's order
    sweep = _sweep(
        tmp_path,
        [_summary("softmax", 25.9, 0.70, 900), _summary("linear", 24.8, 0.66), _summary("rela", 25.6, 0.69)],
    )
    rows = report.ablation_rows(report.read_job_summaries(sweep), macs_size=64)
    assert [r["attention"] for r in rows] == ["linear", "rela", "softmax"]
    by = {r["attention"]: r for r in rows}
    for attention, row in by.items():
        net = LAformer.from_preset("tiny", attention=attention, width=8)
        assert row["params_m"] == pytest.approx(count_parameters(net) / 1e6)
        assert row["macs_g"] == pytest.approx(count_macs(net, 64, 64) / 1e9)
    assert by["rela"]["params_m"] > by["linear"]["params_m"] == by["softmax"]["params_m"]
    assert by["softmax"]["macs_g"] > by["rela"]["macs_g"] > by["linear"]["macs_g"]
    assert by["rela"]["gain_db"] == pytest.approx(25.6 - 14.71)
    assert by["softmax"]["train_time_min"] == pytest.approx(15.0)
    assert by["linear"]["wall_time_min"] == pytest.approx(2.5)


def test_report_writes_table_markdown_and_plot(tmp_path: Path) -> None:
    sweep = _sweep(
        tmp_path, [_summary("linear", 24.8, 0.66), _summary("rela", 25.6, 0.69), _summary("softmax", 25.9, 0.7)]
    )
    out = tmp_path / "out"
    report.write_report(sweep, out, macs_size=64)

    with (out / "results.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["attention"] for row in table] == ["linear", "rela", "softmax"]
    assert float(table[1]["psnr"]) == 25.6
    markdown = (out / "results.md").read_text()
    assert "| linear | tiny | 24.80 | 0.6600 | 14.71 | +10.09 |" in markdown
    assert "MACs @64² (G)" in markdown
    assert str(sweep) in markdown
    assert "softmax (25.90 dB) > RELA (25.60 dB) > linear (24.80 dB)" in markdown
    assert "RELA − linear: +0.80 dB" in markdown and "softmax − RELA: +0.30 dB" in markdown
    image = matplotlib.image.imread(out / "psnr_by_attention.png")
    assert image.shape[0] > 200 and image.shape[1] > 600


def test_ordering_reports_what_was_measured_even_against_the_paper(tmp_path: Path) -> None:
    sweep = _sweep(
        tmp_path, [_summary("linear", 26.0, 0.7), _summary("rela", 25.5, 0.69), _summary("softmax", 28.0, 0.8)]
    )
    text = report.ordering(report.ablation_rows(report.read_job_summaries(sweep), macs_size=32))
    assert text.startswith("Measured ordering by PSNR: softmax (28.00 dB) > linear (26.00 dB) > RELA (25.50 dB).")
    assert "RELA − linear: -0.50 dB" in text and "softmax − RELA: +2.50 dB" in text


def test_a_job_without_metrics_shows_a_dash_and_the_rest_still_reports(tmp_path: Path) -> None:
    broken = _summary("softmax", 0.0, 0.0)
    broken["metrics"], broken["input_psnr"] = {}, None
    sweep = _sweep(tmp_path, [_summary("linear", 24.8, 0.66), broken])
    rows = report.write_report(sweep, tmp_path / "out", macs_size=32)
    assert rows[1]["psnr"] is None and rows[1]["gain_db"] is None
    assert "| softmax | tiny | — | — | — | — |" in (tmp_path / "out" / "results.md").read_text()


def test_old_summaries_without_net_config_are_refused(tmp_path: Path) -> None:
    old = _summary("rela", 25.0, 0.7)
    del old["net"]
    with pytest.raises(KeyError, match="no 'net' config"):
        report.ablation_rows([old])


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
        assert cfg.seed == 42 and cfg.model.name == "tiny"
        assert cfg.data.degradation.sigma == 50.0
    for key in ("loss", "optimizer"):  # same training recipe at both scales (warm-up scales with the budget)
        assert cpu.module[key] == gpu.module[key], key
    assert cpu.data._target_ == "laformer.data.DemoDataModule" and cpu.data.val_crop == 192
    assert cpu.trainer.accelerator == "cpu" and gpu.trainer.accelerator == "gpu"
    assert gpu.data._target_ == "laformer.data.BenchmarkDataModule" and gpu.data.val_sigma == 50
    for hydra_cfg in (cpu_hydra, gpu_hydra):
        assert hydra_cfg.sweeper.params["model.attention"] == "linear,rela,softmax"
        callback = hydra_cfg.callbacks.ablation_report
        assert callback._target_ == "laformer.reports.RunScriptAfterSweep"
        assert (ROOT / callback.script).is_file()
        assert "collect_sweep" in hydra_cfg.callbacks  # the generic sweep table is still written
    assert list(cpu_hydra.callbacks.ablation_report.args) == []
    assert list(gpu_hydra.callbacks.ablation_report.args) == ["--out", "experiments/ablation_attention/gpu"]


@pytest.mark.slow  # three real training jobs in a fresh interpreter: ~1-2 minutes on the shared 2-core CPU
def test_run_script_sweeps_three_attentions_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    env = {**os.environ, "LAFORMER_OUTPUTS": str(tmp_path / "outputs"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    overrides = [o for o in FAST_DEMO if not o.startswith("experiment=")]
    cmd = [
        "bash",
        str(ROOT / "experiments" / "ablation_attention" / "run.sh"),
        *overrides,
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        f"hydra.callbacks.ablation_report.args=[--out,{out}]",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "results.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["attention"] for row in table] == ["linear", "rela", "softmax"]
    assert all(row["steps"] == "2" and float(row["psnr"]) > 0 and float(row["images_per_s"]) > 0 for row in table)
    assert (out / "psnr_by_attention.png").stat().st_size > 10_000
    sweeps = list((tmp_path / "outputs" / "ablation_attention" / "multiruns").iterdir())
    assert len(sweeps) == 1 and (sweeps[0] / "sweep_summary.csv").is_file()
