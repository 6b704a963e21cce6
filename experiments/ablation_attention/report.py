"""The attention ablation's tables and plot, from the jobs of its sweep.

Every number comes from the jobs' ``summary.json``: the sweep axes (task, training crop, seed, attention) from the
job's overrides and run keys, the scores from its metrics. Each job is scored once, at the end of training, on
every test set of the run (``test/<set>/...``): whole images in one pass (``psnr``, ``ssim``) and restored in tiles
of the training crop size (``tiled_psnr``, ``tiled_ssim``, by ``laformer.training.tiled_scoring``), beside the
degraded input and, for Gaussian noise, the classical anchors (``nlmeans_psnr``, ``bm3d_psnr``).

For each task, crop, test set and attention the table gives mean and sd over seeds, and the paired difference
to RELA (the same seed's RELA job) with its 95 % t-interval. Written next to this script:

- ``results.csv``: that table, one row per (task, crop, set, attention), every statistic in its own column;
- ``results_per_seed.csv``: one row per job and set, the raw scores the table is made of;
- ``results.md``: the tables per task and set, the per-seed PSNRs, and what the intervals decide;
- ``psnr_by_attention.png``: per task, each seed's whole-image and tiled PSNR per variant and crop, and the
  paired differences to RELA with their intervals.

The sweep's Hydra callback runs it when the multirun ends; by hand:

    python experiments/ablation_attention/report.py outputs/ablation_attention/multiruns/<sweep>
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from laformer import reports
from laformer.benchmarks.networks import cost_of_config
from laformer.reports import markdown_table, mean_sd, read_job_summaries, t_interval, write_csv

ORDER = ("linear", "rela", "softmax")
BASELINE = "rela"
LABELS = {"linear": "linear", "rela": "RELA", "softmax": "softmax"}
COLORS = {"linear": "tab:gray", "rela": "tab:blue", "softmax": "tab:orange"}
# Classical anchors the suite scores beside Gaussian denoising (laformer.training.anchors).
ANCHORS = {"nlmeans": "NL-means (σ known)", "bm3d": "BM3D (σ known)"}
TASKS = {"noise50": "Gaussian noise σ 50", "lowlight": "low light", "noise": "Gaussian noise"}
SET_LABELS = {"demo-test": "held-out test photos", "demo-val": "validation photos"}
LEVEL = 0.95
# RELA jobs trained before its depthwise weights had a generator of their own (see initialisation_rows).
INDEPENDENT_INIT = Path(__file__).resolve().parent / "rela_independent_init"
METRICS = ("psnr", "ssim", "input_psnr", "tiled_psnr", "tiled_ssim", "tile", *(f"{a}_psnr" for a in ANCHORS))


# -- one row per job and scored set ---------------------------------------------------------------------------
def job_axes(summary: dict[str, Any]) -> dict[str, Any]:
    """The sweep axes of one job (``laformer.reports.job_axes``), with ``—`` for a task nothing names."""
    axes = reports.job_axes(summary)
    return {**axes, "task": axes["task"] or "—"}


def scored_sets(metrics: dict[str, float]) -> list[str]:
    """Test sets a job was scored on (``test/<set>/psnr``), test sets first; ``val`` if it was only validated."""
    sets = sorted({m.group(1) for key in metrics if (m := re.fullmatch(r"test/(.+)/psnr", key))})
    sets.sort(key=lambda s: (SET_LABELS.get(s, "") != SET_LABELS["demo-test"], s))
    return sets or (["val"] if "val/psnr" in metrics else [])


def set_metrics(metrics: dict[str, float], set_name: str) -> dict[str, float | None]:
    prefix = "val/" if set_name == "val" else f"test/{set_name}/"
    return {key: metrics.get(prefix + key) for key in METRICS}


def seed_rows(summaries: Sequence[dict[str, Any]], macs_size: int = 256) -> list[dict[str, Any]]:
    """One row per job and scored set: the sweep axes, the scores, the network's size and the job's timing."""
    rows = []
    for summary in summaries:
        net = summary.get("net")
        if not net:
            raise KeyError(
                f"job summary of {summary.get('run_dir')} has no 'net' config: it was written by an older "
                "laformer-train; rerun the job"
            )
        params_m, macs_g = cost_of_config(net, macs_size, macs_size)
        metrics = summary.get("metrics") or {}
        for set_name in scored_sets(metrics) or ["—"]:
            scores = set_metrics(metrics, set_name)
            whole, tiled = scores["psnr"], scores["tiled_psnr"]
            rows.append(
                {
                    **job_axes(summary),
                    "set": set_name,
                    **scores,
                    "whole_minus_tiled": whole - tiled if whole is not None and tiled is not None else None,
                    "params_m": params_m,
                    "macs_g": macs_g,
                    **reports.job_speed(summary),
                    "run_dir": summary.get("run_dir"),
                }
            )
    return sorted(rows, key=_row_order)


def _attention_rank(attention: str | None) -> int:
    return ORDER.index(attention) if attention in ORDER else len(ORDER)


def _block_order(row: dict[str, Any]) -> tuple:
    """Tasks in ``TASKS`` order, larger crops first, the held-out set before the others."""
    task_rank = list(TASKS).index(row["task"]) if row["task"] in TASKS else len(TASKS)
    return (task_rank, str(row["task"]), -(row["crop"] or 0), row["set"] not in ("demo-test",), str(row["set"]))


def _row_order(row: dict[str, Any]) -> tuple:
    return (
        *_block_order(row),
        _attention_rank(row["attention"]),
        str(row["attention"]),
        row["seed"] if row["seed"] is not None else -1,
    )


# -- the table: mean, sd and paired differences over seeds ------------------------------------------------------
def _block_key(row: dict[str, Any]) -> tuple:
    return (row["task"], row["crop"], row["set"])


def summary_rows(rows: Sequence[dict[str, Any]], baseline: str = BASELINE, level: float = LEVEL) -> list[dict]:
    """One row per (task, crop, set, attention), then one per classical anchor of that block.

    Means and sds are over seeds; ``diff_*`` are paired by seed against ``baseline`` (the same task, crop, set and
    seed): mean difference and its ``level`` t-interval, over the seeds both variants have.
    """
    blocks: dict[tuple, dict[str, list[dict]]] = {}
    for row in rows:
        blocks.setdefault(_block_key(row), {}).setdefault(row["attention"], []).append(row)
    table = []
    for (task, crop, set_name), variants in blocks.items():
        base = {r["seed"]: r for r in variants.get(baseline, [])}
        for attention, runs in sorted(variants.items(), key=lambda item: (_attention_rank(item[0]), str(item[0]))):
            out: dict[str, Any] = {
                "task": task,
                "crop": crop,
                "set": set_name,
                "attention": attention,
                "model": runs[0]["model"],
                "seeds": len(runs),
                "seed_list": " ".join(str(r["seed"]) for r in runs),
            }
            for key in ("psnr", "tiled_psnr", "whole_minus_tiled", "ssim", "tiled_ssim"):
                out[f"{key}_mean"], out[f"{key}_sd"] = mean_sd([r[key] for r in runs])
            # whole - tiled is paired within each job: its interval says whether one pass beats the tiles
            _, out["whole_minus_tiled_low"], out["whole_minus_tiled_high"] = t_interval(
                [r["whole_minus_tiled"] for r in runs], level
            )
            for key in ("psnr", "tiled_psnr", "whole_minus_tiled"):
                theirs = {seed: r[key] for seed, r in base.items()}
                mean, low, high, n = reports.paired_t_interval({r["seed"]: r[key] for r in runs}, theirs, level)
                if attention == baseline:
                    mean, low, high, n = None, None, None, None
                out |= {f"diff_{key}": mean, f"diff_{key}_low": low, f"diff_{key}_high": high, f"diff_{key}_n": n}
            for key in ("input_psnr", "tile", "params_m", "macs_g", "steps", "train_time_min", "images_per_s"):
                out[key] = mean_sd([r[key] for r in runs])[0]
            out["wall_time_min"] = mean_sd([r["wall_time_min"] for r in runs])[0]
            table.append(out)
        for anchor, label in ANCHORS.items():
            values = [r[f"{anchor}_psnr"] for runs in variants.values() for r in runs]
            if any(v is not None for v in values):
                table.append(
                    {"task": task, "crop": crop, "set": set_name, "attention": label, "psnr_mean": mean_sd(values)[0]}
                )
    return table


# -- markdown ----------------------------------------------------------------------------------------------------
def _diff(row: dict[str, Any], key: str) -> str | None:
    return reports.format_interval(row.get(f"diff_{key}"), row.get(f"diff_{key}_low"), row.get(f"diff_{key}_high"))


COLUMNS = {
    "crop_label": "crop",
    "attention_label": "attention",
    "seeds": "seeds",
    "psnr_text": "PSNR whole (dB)",
    "diff_psnr_text": "Δ whole vs RELA [95% CI]",
    "tiled_text": "PSNR tiled (dB)",
    "diff_tiled_text": "Δ tiled vs RELA [95% CI]",
    "gap_text": "whole − tiled [95% CI]",
    "ssim_text": "SSIM whole",
    "params_m": "params (M)",
    "macs_g": "MACs @256² (G)",
    "train_time_min": "train (min)",
    "images_per_s": "train images/s",
    "wall_time_min": "job (min)",
}
FORMATS = {"params_m": ".3f", "macs_g": ".2f", "train_time_min": ".1f", "images_per_s": ".1f", "wall_time_min": ".1f"}


def _display(row: dict[str, Any]) -> dict[str, Any]:
    anchor = row["attention"] in ANCHORS.values()
    return {
        **row,
        "crop_label": f"{row['crop']}²" if row["crop"] else "—",
        "attention_label": row["attention"] if anchor else LABELS.get(row["attention"], row["attention"]),
        "psnr_text": reports.format_mean_sd(row.get("psnr_mean"), row.get("psnr_sd")),
        "diff_psnr_text": _diff(row, "psnr"),
        "tiled_text": reports.format_mean_sd(row.get("tiled_psnr_mean"), row.get("tiled_psnr_sd")),
        "diff_tiled_text": _diff(row, "tiled_psnr"),
        "gap_text": reports.format_interval(
            row.get("whole_minus_tiled_mean"), row.get("whole_minus_tiled_low"), row.get("whole_minus_tiled_high")
        ),
        "ssim_text": reports.format_mean_sd(row.get("ssim_mean"), row.get("ssim_sd"), ".4f"),
    }


def verdicts(
    table: Sequence[dict[str, Any]], set_name: str | None, baseline: str = BASELINE
) -> tuple[list[str], list[str]]:
    """What the intervals on ``set_name`` decide: each variant against RELA (whole images, paired by seed), and
    one pass against tiles of the training crop (whole − tiled, paired within each job)."""
    against, gaps = [], []
    for row in table:
        if row["set"] != set_name or row["attention"] in ANCHORS.values():
            continue
        name = LABELS.get(row["attention"], row["attention"])
        where = f"{TASKS.get(row['task'], row['task'])}, crop {row['crop']}²"
        if row.get("diff_psnr") is not None and row["attention"] != baseline:
            low, high = row.get("diff_psnr_low"), row.get("diff_psnr_high")
            decision = reports.interval_verdict(low, high, f"{name} above RELA", f"{name} below RELA")
            against.append(f"- {where}: {name} − RELA {row['diff_psnr']:+.2f} dB, {_interval(row)}: **{decision}**.")
        if row.get("whole_minus_tiled_mean") is not None:
            low, high = row.get("whole_minus_tiled_low"), row.get("whole_minus_tiled_high")
            decision = reports.interval_verdict(low, high, "one pass beats the tiles", "the tiles beat one pass")
            gap = reports.format_interval(row["whole_minus_tiled_mean"], low, high)
            gaps.append(f"- {where}: {name} whole − tiled {gap} dB: **{decision}**.")
    return against, gaps


def _interval(row: dict[str, Any]) -> str:
    if row.get("diff_psnr_low") is None:
        return "no interval"
    return f"95% CI [{row['diff_psnr_low']:+.2f}, {row['diff_psnr_high']:+.2f}] over {row['diff_psnr_n']} seeds"


def per_seed_table(rows: Sequence[dict[str, Any]], task: str, set_name: str) -> str:
    """Whole-image PSNR (tiled in brackets) of every seed: one row per crop and seed, one column per variant."""
    chosen = [r for r in rows if r["task"] == task and r["set"] == set_name]
    attentions = sorted({r["attention"] for r in chosen}, key=lambda a: (_attention_rank(a), str(a)))
    cells: dict[tuple, dict[str, str]] = {}
    for r in chosen:
        text = f"{r['psnr']:.2f}" if r["psnr"] is not None else "—"
        if r["tiled_psnr"] is not None:
            text += f" ({r['tiled_psnr']:.2f})"
        cells.setdefault((r["crop"], r["seed"]), {})[r["attention"]] = text
    table = [
        {"crop": f"{crop}²" if crop else "—", "seed": seed, **values}
        for (crop, seed), values in sorted(cells.items(), key=lambda item: (-(item[0][0] or 0), item[0][1] or 0))
    ]
    columns = {"crop": "crop", "seed": "seed", **{a: LABELS.get(a, str(a)) for a in attentions}}
    return markdown_table(table, columns)


def render_markdown(
    rows: Sequence[dict[str, Any]],
    table: Sequence[dict[str, Any]],
    sweep_dir: str | Path,
    macs_size: int,
    headline: str | None = None,
) -> str:
    """The tables per task and set, each with its per-seed PSNRs, then what the intervals on ``headline`` (the
    held-out set by default) decide."""
    columns = {**COLUMNS, "macs_g": f"MACs @{macs_size}² (G)"}
    steps = sorted({r["steps"] for r in rows if r["steps"] is not None})
    seeds = sorted({r["seed"] for r in rows if r["seed"] is not None})
    models = sorted({str(r["model"]) for r in rows})
    jobs = len({r["run_dir"] for r in rows})
    parts = [
        f"Attention ablation, sweep `{sweep_dir}`: {jobs} jobs, {'/'.join(models)} LAformer, "
        f"{'/'.join(map(str, steps))} steps each, seeds {', '.join(map(str, seeds))}. Each job is scored once, at "
        "the end of training (nothing is chosen on any score), on whole images in one pass (**whole**) and restored "
        "in overlapping tiles of its training crop size (**tiled**). PSNR and SSIM are mean ± sd over seeds; "
        "**Δ vs RELA** is paired by seed (the RELA job of the same task, crop and seed): mean difference and its "
        "95 % t-interval. An interval that holds 0 does not separate the two variants. Train time and images/s "
        "count training steps only; job time is the whole job, scoring included.\n",
    ]
    for task in dict.fromkeys(r["task"] for r in table):
        for set_name in dict.fromkeys(r["set"] for r in table if r["task"] == task):
            block = [_display(r) for r in table if r["task"] == task and r["set"] == set_name]
            inputs = sorted({round(r["input_psnr"], 2) for r in block if r.get("input_psnr") is not None})
            label = SET_LABELS.get(set_name, set_name)
            parts.append(f"## {TASKS.get(task, task)}: {label} (`{set_name}`)\n")
            if inputs:
                parts.append(f"Degraded input: {' / '.join(f'{v:.2f}' for v in inputs)} dB PSNR.\n")
            parts.append(markdown_table(block, columns, FORMATS))
            parts.append("Per seed, whole-image PSNR (tiled in brackets):\n")
            parts.append(per_seed_table(rows, task, set_name))
    headline = plot_set(rows, headline)
    against, gaps = verdicts(table, headline)
    if against or gaps:
        parts.append(f"## What the 95 % intervals decide on `{headline}`\n")
    if against:
        parts.append("Each variant against RELA, whole images (paired by seed):\n\n" + "\n".join(against) + "\n")
    if gaps:
        parts.append(
            "One pass against tiles of the training crop (paired within each job):\n\n" + "\n".join(gaps) + "\n"
        )
    return "\n".join(parts)


# -- RELA's initial weights: a shared start against an independent draw ----------------------------------------
def initialisation_rows(
    rows: Sequence[dict[str, Any]],
    independent: Sequence[dict[str, Any]],
    reference: str = "linear",
    level: float = LEVEL,
) -> list[dict[str, Any]]:
    """Per (task, crop, set): RELA's seed spread and its paired difference to ``reference``, for RELA jobs that
    start from ``reference``'s weights (``rows``, this sweep) and for RELA jobs whose every weight was an
    independent draw (``independent``: jobs of the code before the depthwise term had a generator of its own).

    Only the seeds that have all three jobs (reference, shared-start RELA, independent RELA) count, so both
    columns describe the same seeds. ``shared_minus_independent`` is paired by seed: does the start move the level?
    """

    def by_seed(chosen: Sequence[dict[str, Any]], attention: str) -> dict[tuple, dict[Any, float]]:
        found: dict[tuple, dict[Any, float]] = {}
        for r in chosen:
            if r["attention"] == attention and r["psnr"] is not None:
                found.setdefault(_block_key(r), {})[r["seed"]] = r["psnr"]
        return found

    refs, shared, drawn = by_seed(rows, reference), by_seed(rows, BASELINE), by_seed(independent, BASELINE)
    out = []
    for key, independent_psnr in drawn.items():
        seeds = sorted(set(independent_psnr) & set(shared.get(key, {})) & set(refs.get(key, {})))
        if not seeds:
            continue
        row: dict[str, Any] = {"task": key[0], "crop": key[1], "set": key[2], "seeds": len(seeds)}
        for name, psnr in (("shared", shared[key]), ("independent", independent_psnr)):
            row[f"rela_{name}_mean"], row[f"rela_{name}_sd"] = mean_sd([psnr[s] for s in seeds])
            diffs = [psnr[s] - refs[key][s] for s in seeds]
            row[f"diff_{name}_mean"], row[f"diff_{name}_low"], row[f"diff_{name}_high"] = t_interval(diffs, level)
            row[f"diff_{name}_sd"] = mean_sd(diffs)[1]
        shift = [shared[key][s] - independent_psnr[s] for s in seeds]
        row["shared_minus_independent"], row["shift_low"], row["shift_high"] = t_interval(shift, level)
        out.append(row)
    return sorted(out, key=_block_order)


def render_initialisation(table: Sequence[dict[str, Any]], reference: str = "linear") -> str:
    """The markdown section of :func:`initialisation_rows`."""
    name = LABELS.get(reference, reference)
    shown = [
        {
            "where": f"{TASKS.get(r['task'], r['task'])}, {r['crop']}², `{r['set']}`",
            "seeds": r["seeds"],
            "shared": reports.format_mean_sd(r["rela_shared_mean"], r["rela_shared_sd"]),
            "independent": reports.format_mean_sd(r["rela_independent_mean"], r["rela_independent_sd"]),
            "diff_shared": _paired_cell(r, "shared"),
            "diff_independent": _paired_cell(r, "independent"),
            "shift": reports.format_interval(r["shared_minus_independent"], r["shift_low"], r["shift_high"]),
        }
        for r in table
    ]
    columns = {
        "where": "task, crop, set",
        "seeds": "seeds",
        "shared": "RELA, shared start (dB)",
        "independent": "RELA, independent draw (dB)",
        "diff_shared": f"RELA − {name}, shared start [95 % CI]",
        "diff_independent": f"RELA − {name}, independent draw [95 % CI]",
        "shift": "shared − independent RELA [95 % CI]",
    }
    return (
        f"## RELA's initial weights: the same start as {name}, or an independent draw\n\n"
        f"Before 2026-12-03, RELA's depthwise weights were drawn from the global random stream and shifted every "
        f"weight built after them, so under one seed RELA started from other weights than {name} and softmax. "
        "Those jobs (`rela_independent_init/`) are compared here with this sweep's RELA jobs, which share every "
        f"initial weight with {name} under the same seed. Same seeds in both columns; PSNR of whole images, mean ± "
        "sd; differences paired by seed with their 95 % t-intervals and the sd of the paired differences.\n\n"
        + markdown_table(shown, columns)
    )


def _paired_cell(row: dict[str, Any], name: str) -> str:
    sd = row[f"diff_{name}_sd"]
    interval = reports.format_interval(row[f"diff_{name}_mean"], row[f"diff_{name}_low"], row[f"diff_{name}_high"])
    return f"{interval} (sd {'—' if sd is None else f'{sd:.2f}'})"


# -- the plot ------------------------------------------------------------------------------------------------------
def plot_set(rows: Sequence[dict[str, Any]], wanted: str | None = None) -> str | None:
    """The set the plot shows: ``wanted``, else the held-out test set, else the first one scored."""
    sets = list(dict.fromkeys(r["set"] for r in rows))
    if wanted:
        if wanted not in sets:
            raise ValueError(f"no job was scored on set {wanted!r}; the sets are {sets}")
        return wanted
    return "demo-test" if "demo-test" in sets else (sets[0] if sets else None)


def plot(rows: Sequence[dict[str, Any]], table: Sequence[dict[str, Any]], path: str | Path, set_name: str) -> Path:
    """Per task (one row of panels): each seed's PSNR per crop and variant (filled: whole image, hollow: tiled),
    and the paired differences to RELA with their 95 % intervals."""
    rows = [r for r in rows if r["set"] == set_name]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    with reports.figure(path, len(tasks), 2, figsize=(13, 3.9 * len(tasks)), squeeze=False) as (fig, axes):
        for (ax_points, ax_diff), task in zip(axes, tasks):
            chosen = [r for r in rows if r["task"] == task]
            crops = sorted({r["crop"] for r in chosen}, key=lambda c: -(c or 0))
            attentions = sorted({r["attention"] for r in chosen}, key=lambda a: (_attention_rank(a), str(a)))
            _points_panel(ax_points, chosen, crops, attentions)
            diffs = [r for r in table if r["task"] == task and r["set"] == set_name and r.get("diff_psnr") is not None]
            _diff_panel(ax_diff, chosen, diffs, crops, [a for a in attentions if a != BASELINE])
            label = TASKS.get(task, task)
            inputs = [r["input_psnr"] for r in chosen if r["input_psnr"] is not None]
            ax_points.set_title(
                f"{label}: PSNR per seed" + (f" (input {inputs[0]:.2f} dB)" if inputs else ""), fontsize=10
            )
            ax_diff.set_title(f"{label}: paired difference to RELA, 95% CI", fontsize=10)
        steps = "/".join(map(str, sorted({r["steps"] for r in rows if r["steps"] is not None})))
        fig.suptitle(
            f"Attention ablation on {SET_LABELS.get(set_name, set_name)} ({set_name}), {steps} steps; "
            "filled: whole image, hollow: tiles of the training crop",
            fontsize=11,
        )
    return Path(path)


def _positions(crops: Sequence[Any], names: Sequence[str]) -> dict[tuple, float]:
    width = len(names) + 1
    return {(crop, name): i * width + j for i, crop in enumerate(crops) for j, name in enumerate(names)}


def _crop_ticks(ax: Any, crops: Sequence[Any], names: Sequence[str]) -> None:
    pos = _positions(crops, names)
    ax.set_xticks(
        [pos[(c, n)] for c in crops for n in names],
        [f"{LABELS.get(n, n)}\n{c}²" if c else LABELS.get(n, n) for c in crops for n in names],
        fontsize=8,
    )


def _points_panel(ax: Any, rows: Sequence[dict], crops: Sequence[Any], attentions: Sequence[str]) -> None:
    pos = _positions(crops, attentions)
    for (crop, attention), x in pos.items():
        runs = [r for r in rows if r["crop"] == crop and r["attention"] == attention]
        color = COLORS.get(attention, "tab:green")
        for key, offset, face in (("psnr", -0.15, color), ("tiled_psnr", 0.15, "none")):
            values = [r[key] for r in runs if r[key] is not None]
            if not values:
                continue
            ax.scatter([x + offset] * len(values), values, s=28, facecolors=face, edgecolors=color, zorder=3)
            mean = sum(values) / len(values)
            ax.hlines(mean, x + offset - 0.12, x + offset + 0.12, colors=color, linewidth=2)
    _crop_ticks(ax, crops, attentions)
    ax.set_ylabel("PSNR (dB)")
    ax.grid(axis="y", alpha=0.3)


def _diff_panel(
    ax: Any, rows: Sequence[dict], diffs: Sequence[dict], crops: Sequence[Any], attentions: Sequence[str]
) -> None:
    pos = _positions(crops, attentions)
    base = {(r["crop"], r["seed"]): r for r in rows if r["attention"] == BASELINE}
    for row in diffs:
        x = pos.get((row["crop"], row["attention"]))
        if x is None:
            continue
        color = COLORS.get(row["attention"], "tab:green")
        for key, offset, face in (("psnr", -0.15, color), ("tiled_psnr", 0.15, "none")):
            mean, low, high = row.get(f"diff_{key}"), row.get(f"diff_{key}_low"), row.get(f"diff_{key}_high")
            if mean is None:
                continue
            if low is not None:
                ax.errorbar(x + offset, mean, yerr=[[mean - low], [high - mean]], color=color, capsize=4, zorder=2)
            ax.scatter([x + offset], [mean], s=50, facecolors=face, edgecolors=color, zorder=3, marker="D")
            seeds = [
                r[key] - base[(r["crop"], r["seed"])][key]
                for r in rows
                if r["attention"] == row["attention"]
                and r["crop"] == row["crop"]
                and r[key] is not None
                and (r["crop"], r["seed"]) in base
                and base[(r["crop"], r["seed"])][key] is not None
            ]
            ax.scatter([x + offset + 0.08] * len(seeds), seeds, s=10, color=color, alpha=0.6, zorder=3)
    ax.axhline(0.0, color="black", linewidth=0.8)
    _crop_ticks(ax, crops, attentions)
    ax.set_ylabel("variant − RELA (dB)")
    ax.grid(axis="y", alpha=0.3)


# -- entry point -------------------------------------------------------------------------------------------------
def write_report(
    sweep_dir: str | Path,
    out_dir: str | Path,
    macs_size: int = 256,
    set_name: str | None = None,
    independent_init: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Read the sweep's job summaries and write the CSVs, the markdown and the plot to ``out_dir``; the table.

    ``independent_init``: a folder of RELA jobs from before the shared start (:func:`initialisation_rows`); their
    comparison goes to ``results_initialisation.csv`` and a section of ``results.md``.
    """
    rows = seed_rows(read_job_summaries(sweep_dir), macs_size)
    table = summary_rows(rows)
    out_dir = Path(out_dir)
    write_csv(table, out_dir / "results.csv")
    write_csv(rows, out_dir / "results_per_seed.csv")
    markdown = render_markdown(rows, table, sweep_dir, macs_size, set_name)
    if independent_init is not None:
        init_table = initialisation_rows(rows, seed_rows(read_job_summaries(independent_init), macs_size))
        write_csv(init_table, out_dir / "results_initialisation.csv")
        markdown += "\n" + render_initialisation(init_table)
    (out_dir / "results.md").write_text(markdown)
    shown = plot_set(rows, set_name)
    if shown is not None:
        plot(rows, table, out_dir / "psnr_by_attention.png", shown)
    print((out_dir / "results.md").read_text())
    print(f"Tables and plot written to {out_dir}/results.{{csv,md}}, results_per_seed.csv, psnr_by_attention.png")
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun folder holding the jobs 0/, 1/, ...")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where to write results")
    parser.add_argument("--macs-size", type=int, default=256, help="image side at which MACs are counted")
    parser.add_argument("--plot-set", default=None, help="the test set the plot shows (default: the held-out one)")
    parser.add_argument(
        "--independent-init",
        default=None,
        help="RELA jobs of the old initialisation to compare with (default: rela_independent_init/<sweep name> next "
        "to this script, where it exists; 'none' to leave the comparison out)",
    )
    args = parser.parse_args(argv)
    write_report(args.sweep_dir, args.out, args.macs_size, args.plot_set, independent_folder(args))


def independent_folder(args: argparse.Namespace) -> Path | None:
    if args.independent_init is not None:
        return None if args.independent_init.lower() == "none" else Path(args.independent_init)
    default = INDEPENDENT_INIT / Path(args.sweep_dir).name
    return default if default.is_dir() else None


if __name__ == "__main__":
    main()
