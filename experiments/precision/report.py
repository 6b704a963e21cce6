"""The precision sweep's table and plot: validation quality and training throughput at each precision.

Reads each job's ``summary.json`` and writes ``results.csv``, ``results.md`` and ``precision.png``. The sweep's
Hydra callback runs it when the multirun ends; by hand:

    python experiments/precision/report.py outputs/precision_sweep/multiruns/<time>_<id>
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from laformer.reports import figure, job_speed, markdown_table, read_job_summaries, write_csv

ORDER = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
COLUMNS = {
    "precision": "precision",
    "attention": "attention",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "input_psnr": "input PSNR (dB)",
    "steps": "steps",
    "batches_per_s": "train steps/s",
    "images_per_s": "train images/s",
    "speedup": "speed vs 32",
    "train_time_min": "train time (min)",
    "wall_time_min": "wall time (min)",
}
FORMATS = {
    "psnr": ".2f",
    "ssim": ".4f",
    "input_psnr": ".2f",
    "batches_per_s": ".3f",
    "images_per_s": ".1f",
    "speedup": ".2f",
    "train_time_min": ".1f",
    "wall_time_min": ".1f",
}


def precision_rows(summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per job, full precision first; ``speedup`` is images/s relative to the 32-bit job."""
    rows = []
    for summary in summaries:
        if not summary.get("precision"):
            raise KeyError(
                f"job summary of {summary.get('run_dir')} does not name its precision: it was written by an older "
                "laformer-train; rerun the job"
            )
        metrics, speed = summary.get("metrics", {}), job_speed(summary)
        rows.append(
            {
                "precision": summary["precision"],
                "attention": summary.get("attention"),
                "psnr": metrics.get("val/psnr"),
                "ssim": metrics.get("val/ssim"),
                "input_psnr": summary.get("input_psnr", metrics.get("val/input_psnr")),
                "steps": speed["steps"],
                "batches_per_s": (summary.get("throughput") or {}).get("batches_per_s"),
                "images_per_s": speed["images_per_s"],
                "train_time_min": speed["train_time_min"],
                "wall_time_min": speed["wall_time_min"],
                "run_dir": summary.get("run_dir"),
            }
        )
    rank = {name: i for i, name in enumerate(ORDER)}
    rows.sort(key=lambda row: rank.get(row["precision"], len(ORDER)))
    reference = next((r["images_per_s"] for r in rows if r["precision"] == "32-true"), None)
    for row in rows:
        row["speedup"] = row["images_per_s"] / reference if reference and row["images_per_s"] else None
    return rows


def render_markdown(rows: Sequence[dict[str, Any]], sweep_dir: str | Path) -> str:
    return (
        f"Precision sweep, sweep `{sweep_dir}`. Validation PSNR / SSIM at the end of training; steps/s and images/s "
        "count training steps only (forward, backward, optimiser; no data loading, no validation); wall time is the "
        "whole job.\n\n" + markdown_table(rows, COLUMNS, FORMATS)
    )


def plot(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Bars of validation PSNR and training images/s per precision."""
    names = [r["precision"] for r in rows]
    with figure(path, 1, 2, figsize=(9, 3.8)) as (fig, axes):
        for ax, (key, title, fmt) in zip(
            axes, [("psnr", "validation PSNR (dB)", ".2f"), ("images_per_s", "training images / s", ".1f")]
        ):
            values = [r[key] if r[key] is not None else float("nan") for r in rows]
            bars = ax.bar(names, values, color=["tab:blue", "tab:orange", "tab:green", "tab:gray"][: len(rows)])
            ax.bar_label(bars, labels=[format(v, fmt) for v in values], fontsize=9)
            ax.set_title(title)
            finite = [v for v in values if v == v]
            if key == "psnr" and finite:
                ax.set_ylim(min(finite) - 1.0, max(finite) + 0.5)
        fig.suptitle(f"Precision sweep: {rows[0]['attention']} LAformer, {rows[0]['steps']} steps each", fontsize=11)
    return Path(path)


def write_report(sweep_dir: str | Path, out_dir: str | Path) -> list[dict[str, Any]]:
    rows = precision_rows(read_job_summaries(sweep_dir))
    out_dir = Path(out_dir)
    write_csv(rows, out_dir / "results.csv")
    (out_dir / "results.md").write_text(render_markdown(rows, sweep_dir))
    plot(rows, out_dir / "precision.png")
    print((out_dir / "results.md").read_text())
    print(f"Table and plot written to {out_dir}/results.{{csv,md}} and {out_dir}/precision.png")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun folder holding the jobs 0/, 1/, ...")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where to write results")
    args = parser.parse_args(argv)
    write_report(args.sweep_dir, args.out)


if __name__ == "__main__":
    main()
