"""The attention ablation's table and plot, from the jobs of its sweep.

Reads each job's ``summary.json`` (validation PSNR / SSIM at the end of training, training throughput, the
network config), counts parameters and MACs of each network at 256 x 256, and writes ``results.csv``,
``results.md`` and ``psnr_by_attention.png``. The sweep's Hydra callback runs it when the multirun ends; by hand:

    python experiments/ablation_attention/report.py outputs/ablation_attention/multiruns/<time>_<id>
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra

from laformer.models.complexity import count_macs, count_parameters
from laformer.reports import markdown_table, read_job_summaries, write_csv

ORDER = ("linear", "rela", "softmax")
LABELS = {"linear": "linear", "rela": "RELA", "softmax": "softmax"}
COLUMNS = {
    "attention": "attention",
    "model": "model",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "input_psnr": "input PSNR (dB)",
    "gain_db": "gain (dB)",
    "params_m": "params (M)",
    "macs_g": "MACs @256² (G)",
    "steps": "steps",
    "train_time_min": "train time (min)",
    "images_per_s": "train images/s",
    "wall_time_min": "wall time (min)",
}
FORMATS = {
    "psnr": ".2f",
    "ssim": ".4f",
    "input_psnr": ".2f",
    "gain_db": "+.2f",
    "params_m": ".3f",
    "macs_g": ".2f",
    "train_time_min": ".1f",
    "images_per_s": ".1f",
    "wall_time_min": ".1f",
}


def complexity(net_config: dict[str, Any], size: int) -> tuple[float, float]:
    """(parameters in millions, MACs in billions at size x size) of the network a job trained."""
    net = hydra.utils.instantiate(net_config)
    return count_parameters(net) / 1e6, count_macs(net, size, size) / 1e9


def ablation_rows(summaries: Sequence[dict[str, Any]], macs_size: int = 256) -> list[dict[str, Any]]:
    """One row per job, ordered linear, RELA, softmax (any other attention after them)."""
    rows = []
    for summary in summaries:
        metrics = summary.get("metrics", {})
        net = summary.get("net")
        if not net:
            raise KeyError(
                f"job summary of {summary.get('run_dir')} has no 'net' config: it was written by an older "
                "laformer-train; rerun the job"
            )
        params_m, macs_g = complexity(net, macs_size)
        psnr, input_psnr = metrics.get("val/psnr"), summary.get("input_psnr", metrics.get("val/input_psnr"))
        throughput = summary.get("throughput") or {}
        train_time = throughput.get("train_time_s")
        rows.append(
            {
                "attention": net.get("attention", summary.get("attention")),
                "model": net.get("name", summary.get("model")),
                "psnr": psnr,
                "ssim": metrics.get("val/ssim"),
                "input_psnr": input_psnr,
                "gain_db": psnr - input_psnr if psnr is not None and input_psnr is not None else None,
                "params_m": params_m,
                "macs_g": macs_g,
                "steps": summary.get("steps"),
                "train_time_min": train_time / 60 if train_time is not None else None,
                "images_per_s": throughput.get("images_per_s"),
                "wall_time_min": summary["wall_time_s"] / 60 if summary.get("wall_time_s") is not None else None,
                "run_dir": summary.get("run_dir"),
            }
        )
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(rows, key=lambda row: rank.get(row["attention"], len(ORDER)))


def ordering(rows: Sequence[dict[str, Any]]) -> str:
    """The measured ranking by PSNR and the two gaps the paper's claim is about."""
    scored = sorted((r for r in rows if r["psnr"] is not None), key=lambda r: r["psnr"], reverse=True)
    text = (
        "Measured ordering by PSNR: "
        + " > ".join(f"{LABELS.get(r['attention'], r['attention'])} ({r['psnr']:.2f} dB)" for r in scored)
        + "."
    )
    psnr = {r["attention"]: r["psnr"] for r in scored}
    if "rela" in psnr and "linear" in psnr:
        text += f" RELA − linear: {psnr['rela'] - psnr['linear']:+.2f} dB."
    if "rela" in psnr and "softmax" in psnr:
        text += f" softmax − RELA: {psnr['softmax'] - psnr['rela']:+.2f} dB."
    return text


def render_markdown(rows: Sequence[dict[str, Any]], sweep_dir: str | Path, macs_size: int) -> str:
    columns = {**COLUMNS, "macs_g": f"MACs @{macs_size}² (G)"}
    return (
        f"Attention ablation, sweep `{sweep_dir}`. Validation PSNR / SSIM at the end of training; train time and "
        "images/s count training steps only (no data loading, no validation); wall time is the whole job.\n\n"
        + markdown_table(rows, columns, FORMATS)
        + "\n"
        + ordering(rows)
        + "\n"
    )


def plot(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Bars of PSNR (with the noisy input's PSNR as a dashed line), SSIM and training time per attention."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [LABELS.get(r["attention"], r["attention"]) for r in rows]
    colors = [
        {"linear": "tab:gray", "rela": "tab:blue", "softmax": "tab:orange"}.get(r["attention"], "tab:green")
        for r in rows
    ]
    panels = [
        ("psnr", "validation PSNR (dB)", ".2f"),
        ("ssim", "validation SSIM", ".4f"),
        ("train_time_min", "training time (min)", None),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    for ax, (key, title, fmt) in zip(axes, panels):
        values = [r[key] if r[key] is not None else float("nan") for r in rows]
        fmt = fmt or (".1f" if max(values, default=0) >= 1 else ".2f")
        bars = ax.bar(names, values, color=colors)
        ax.bar_label(bars, labels=[format(v, fmt) for v in values], fontsize=9)
        ax.set_title(title)
        if key == "psnr":
            # Zoomed on the variants (the noisy input, far below, is named in the title): the gaps are tenths of a dB.
            inputs = [r["input_psnr"] for r in rows if r["input_psnr"] is not None]
            if inputs:
                ax.set_title(f"{title}; noisy input {inputs[0]:.2f}")
            finite = [v for v in values if v == v]
            if finite:
                ax.set_ylim(min(finite) - 0.5, max(finite) + 0.3)
        if key == "ssim":
            finite = [v for v in values if v == v]
            if finite:
                ax.set_ylim(max(0.0, min(finite) - 0.05), min(1.0, max(finite) + 0.03))
    steps = {r["steps"] for r in rows}
    fig.suptitle(
        f"Attention ablation: {rows[0]['model']} LAformer, {'/'.join(map(str, steps))} steps each", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(sweep_dir: str | Path, out_dir: str | Path, macs_size: int = 256) -> list[dict[str, Any]]:
    rows = ablation_rows(read_job_summaries(sweep_dir), macs_size)
    out_dir = Path(out_dir)
    write_csv(rows, out_dir / "results.csv")
    (out_dir / "results.md").write_text(render_markdown(rows, sweep_dir, macs_size))
    plot(rows, out_dir / "psnr_by_attention.png")
    print((out_dir / "results.md").read_text())
    print(f"Table and plot written to {out_dir}/results.{{csv,md}} and {out_dir}/psnr_by_attention.png")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun folder holding the jobs 0/, 1/, 2/")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where to write results")
    parser.add_argument("--macs-size", type=int, default=256, help="image side at which MACs are counted")
    args = parser.parse_args(argv)
    write_report(args.sweep_dir, args.out, args.macs_size)


if __name__ == "__main__":
    main()
