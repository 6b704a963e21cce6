"""Rank of the effective attention maps, head by head and level by level: vanilla linear vs RELA, untrained
(seeded) and trained (checkpoints of the attention ablation).

Each model sees the same centre crop of a bundled photo; for every attention module the N x N map of each head
is built (``laformer.models.rank``). Two counts of its singular values: the numerical rank (above ``rtol`` x the
largest) and the energy rank (the fewest that hold ``energy`` of the squared sum). Vanilla linear attention is
bounded by the head dimension d; RELA adds one banded depthwise-convolution matrix per channel, so its ranks are
given per head as min / median / max over the head's channels.

    python experiments/rank_analysis/analyze.py                         # untrained tiny models only
    python experiments/rank_analysis/analyze.py --sweep-dir outputs/ablation_attention/multiruns/<sweep>
    python experiments/rank_analysis/analyze.py outputs/ablation_attention/multiruns/<sweep>   # the same
    python experiments/rank_analysis/analyze.py --ckpt run_a/checkpoints/last.ckpt --ckpt run_b/...

A sweep's jobs are told apart by their task, training crop and seed (from each job's ``summary.json``), so a
multi-seed sweep gives one set of rows per trained network. Writes ``rank_table.csv`` (one row per head of every
network), ``rank_levels.csv`` (per network and level), ``rank_table.md`` (per level over the seeds, then each
seed at full resolution) and ``rank_by_level.png``.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from laformer.benchmarks.inputs import photo_crop
from laformer.benchmarks.networks import build
from laformer.inference.checkpoint import load_network
from laformer.models.rank import DEFAULT_ENERGY, DEFAULT_RTOL, attention_rank_report
from laformer.reports import figure, job_axes, markdown_table, read_csv, read_job_summaries, write_csv

STATES = ("untrained", "trained")
# What tells the trained networks of one sweep apart (None for untrained models and bare --ckpt files).
RUN_KEYS = ("task", "crop", "seed")
ATTENTION_NAMES = {"LinearAttention": "linear", "RankEnhancedLinearAttention": "rela", "SoftmaxAttention": "softmax"}


def untrained_models(
    attentions: Sequence[str], preset: str = "tiny", seed: int = 0, **overrides: Any
) -> dict[str, nn.Module]:
    """Seeded untrained networks that share every weight they have in common.

    RELA is built first; the other variants load its weights minus the depthwise term, so the first block sees
    identical q, k and v in every variant and the maps differ only by what the variant adds.
    """
    sizes = [f"model.{key}={value}" for key, value in overrides.items()]
    reference = build([f"model={preset}", "model.attention=rela", *sizes], seed=seed)
    shared = {k: v for k, v in reference.state_dict().items() if ".spatial.dwconv." not in k}
    models = {}
    for attention in attentions:
        if attention == "rela":
            models[attention] = reference
        else:
            models[attention] = build([f"model={preset}", f"model.attention={attention}", *sizes], seed=None)
            models[attention].load_state_dict(shared)
    return models


def rank_rows(
    model: nn.Module,
    x: torch.Tensor,
    state: str,
    source: str,
    rtol: float = DEFAULT_RTOL,
    energy: float = DEFAULT_ENERGY,
    run: dict[str, Any] | None = None,
) -> list[dict]:
    """``attention_rank_report`` rows (float64) with the variant, level, training state and run labels added.

    Level 1 is full resolution; each level below has a quarter of the tokens. ``run`` holds the ``RUN_KEYS``
    (task, crop, seed) of a sweep's job; missing ones are None.
    """
    rows = attention_rank_report(model.double().eval(), x.double(), rtol, energy)
    full = max(row["tokens"] for row in rows)
    labels = {key: (run or {}).get(key) for key in RUN_KEYS}
    return [
        {
            "state": state,
            "source": source,
            **labels,
            "variant": ATTENTION_NAMES.get(row["attention"], row["attention"]),
            "level": 1 + round(math.log(full / row["tokens"], 4)),
            **row,
            "rank_fraction": row["rank_median"] / row["tokens"],
        }
        for row in rows
    ]


def run_labels(summary: dict[str, Any]) -> dict[str, Any]:
    """Task (the degradation config), training crop and seed of a sweep's job (``laformer.reports.job_axes``)."""
    axes = job_axes(summary)
    return {key: axes[key] for key in RUN_KEYS}


def sweep_checkpoints(sweep_dir: str | Path, attentions: Sequence[str]) -> list[tuple[Path, dict[str, Any]]]:
    """(last checkpoint, run labels) of each job of a sweep whose attention is one of ``attentions``."""
    found = []
    for summary in read_job_summaries(sweep_dir):
        if summary.get("attention") in attentions:
            checkpoint = summary.get("last_checkpoint") or summary.get("best_checkpoint")
            if not checkpoint:
                raise FileNotFoundError(f"job {summary.get('run_dir')} of {sweep_dir} saved no checkpoint")
            found.append((Path(checkpoint), run_labels(summary)))
    if not found:
        raise FileNotFoundError(f"no job of {sweep_dir} trained one of the attentions {list(attentions)}")
    return found


def checkpoints_of_sweep(sweep_dir: str | Path, attentions: Sequence[str]) -> list[Path]:
    """The last checkpoint of each job of a sweep whose attention is one of ``attentions``."""
    return [path for path, _ in sweep_checkpoints(sweep_dir, attentions)]


def analyse(
    attentions: Sequence[str],
    checkpoints: Iterable[str | Path | tuple[str | Path, dict[str, Any]]] = (),
    size: int = 32,
    preset: str = "tiny",
    seed: int = 0,
    rtol: float = DEFAULT_RTOL,
    photo: str = "chelsea",
    energy: float = DEFAULT_ENERGY,
    earlier: dict[str, list[dict]] | None = None,
) -> list[dict]:
    """Rank rows of the untrained variants and of every checkpoint, all on the same photo crop.

    A checkpoint is a path, or a (path, run labels) pair as :func:`sweep_checkpoints` gives them. A checkpoint
    that no longer exists (a job restored from its records in a fresh checkout) keeps the rows computed from it
    before, if ``earlier`` (:func:`earlier_rows`) has them.
    """
    checkpoints = [item if isinstance(item, tuple) else (item, None) for item in checkpoints]
    # Before any work: a gone checkpoint without earlier rows is an error.
    reused = {str(path): _reused_rows(Path(path), earlier or {}) for path, _ in checkpoints if not Path(path).is_file()}
    x = photo_crop(size, photo)
    rows = []
    for model in untrained_models(attentions, preset, seed).values():
        rows += rank_rows(model, x, "untrained", f"{preset}, seed {seed}", rtol, energy)
    for path, run in checkpoints:
        if str(path) in reused:
            rows += reused[str(path)]
            continue
        net, config = load_network(path)
        if config.get("attention") not in attentions:
            continue
        rows += rank_rows(net, x, "trained", str(path), rtol, energy, run)
    return rows


def earlier_rows(table: str | Path) -> dict[str, list[dict]]:
    """The trained rows of an earlier ``rank_table.csv``, by the checkpoint they came from (``source``), with
    numbers parsed back; empty if there is no such table."""
    table = Path(table)
    if not table.is_file():
        return {}
    found: dict[str, list[dict]] = {}
    for row in read_csv(table):
        if row["state"] == "trained":
            found.setdefault(str(row["source"]), []).append(row)
    return found


def _reused_rows(path: Path, earlier: dict[str, list[dict]]) -> list[dict]:
    if str(path) not in earlier:
        raise FileNotFoundError(
            f"checkpoint {path} is gone and no earlier rank table has rows from it: rerun its job (delete the job "
            "folder and rerun the sweep), or pass --earlier with the rank_table.csv that analysed it"
        )
    print(f"{path} is gone: reusing the {len(earlier[str(path)])} rows computed from it before", flush=True)
    return earlier[str(path)]


def _sortable(value: Any) -> tuple:
    return (value is not None, str(value) if not isinstance(value, int | float) else "", value or 0)


def level_summary(rows: Sequence[dict], by: Sequence[str] = ()) -> list[dict]:
    """Per (state, variant, ``by``..., level): heads, tokens N, head dim d, and each rank over heads (median of
    per-head medians, smallest minimum, largest maximum); the numerical rank also as a fraction of N; the median
    global-map and local-term norms. ``by`` adds run labels (``RUN_KEYS``) to the grouping: ``("task", "crop",
    "seed")`` gives one group per trained network; none pools every network of a state and variant."""
    by = tuple(by)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = (row["state"], row["variant"], *(row.get(k) for k in by), row["level"])
        groups.setdefault(key, []).append(row)
    summary = []
    for key, group in sorted(
        groups.items(), key=lambda item: (STATES.index(item[0][0]), item[0][1], *map(_sortable, item[0][2:]))
    ):
        state, variant, level = key[0], key[1], key[-1]
        row = {
            "state": state,
            "variant": variant,
            **dict(zip(by, key[2:-1])),
            "level": level,
            "networks": len({r["source"] for r in group}),
            "heads": len(group),
            "tokens": group[0]["tokens"],
            "head_dim": group[0]["head_dim"],
        }
        for rank in ("rank", "energy_rank"):
            row[f"{rank}_min"] = min(r[f"{rank}_min"] for r in group)
            row[f"{rank}_median"] = statistics.median(r[f"{rank}_median"] for r in group)
            row[f"{rank}_max"] = max(r[f"{rank}_max"] for r in group)
        row["rank_fraction"] = row["rank_median"] / row["tokens"]
        for norm in ("global_norm", "local_norm"):
            row[norm] = statistics.median(r[norm] for r in group)
        summary.append(row)
    return summary


LEVEL_COLUMNS = {
    "state": "state",
    "variant": "attention",
    "task": "task",
    "crop": "crop",
    "seed": "seed",
    "level": "level",
    "networks": "networks",
    "heads": "heads (all blocks)",
    "tokens": "tokens N",
    "head_dim": "head dim d",
    "rank_min": "rank min",
    "rank_median": "rank median",
    "rank_max": "rank max",
    "rank_fraction": "median / N",
    "energy_rank_min": "energy rank min",
    "energy_rank_median": "energy rank median",
    "energy_rank_max": "energy rank max",
    "global_norm": "global map ‖A‖_F",
    "local_norm": "local term ‖M_c‖_F",
}
LEVEL_FORMATS = {
    "rank_median": "g",
    "rank_fraction": ".3f",
    "energy_rank_median": "g",
    "global_norm": ".3f",
    "local_norm": ".2f",
}


def _columns(summary: Sequence[dict], drop: Sequence[str]) -> dict[str, str]:
    """The table's columns: run labels only where some row has one, and without ``drop``."""
    labelled = {key for key in RUN_KEYS if any(row.get(key) is not None for row in summary)}
    return {k: v for k, v in LEVEL_COLUMNS.items() if k not in drop and (k not in RUN_KEYS or k in labelled)}


def render_markdown(rows: Sequence[dict], size: int, photo: str, rtol: float, energy: float = DEFAULT_ENERGY) -> str:
    """Per level over every network of a state, variant, task and crop (all seeds pooled); then, for a sweep of
    several seeds, each trained network on its own at full resolution (level 1)."""
    pooled = level_summary(rows, by=("task", "crop"))
    text = (
        f"Numerical rank (singular values > {rtol:g} x largest) and energy rank (fewest singular values holding "
        f"{energy:.0%} of their squared sum) of the effective attention maps on the {size} x {size} centre crop "
        f"of `{photo}`. One row per training state, attention, task, training crop and level, over every head of "
        "every block at that level of every network (seeds pooled: `networks` counts them); for RELA each head's "
        "ranks are first taken over its channels. ‖A‖_F is the median Frobenius norm of the heads' row-stochastic "
        "global maps (1: uniform averaging over all tokens; sqrt(N): one token per row); ‖M_c‖_F is the median "
        "norm of RELA's depthwise term (0: none).\n\n"
        + markdown_table(pooled, _columns(pooled, drop=("seed",)), LEVEL_FORMATS)
    )
    per_seed = [r for r in level_summary(rows, by=RUN_KEYS) if r["state"] == "trained" and r["level"] == 1]
    if len({r.get("seed") for r in per_seed}) > 1:
        drop = ("state", "networks", "tokens", "head_dim", "rank_min", "rank_max", "level")
        text += "\nEach trained network at full resolution (level 1), one row per seed:\n\n" + markdown_table(
            per_seed, _columns(per_seed, drop=drop), LEVEL_FORMATS
        )
    return text


PANELS = {"rank": "numerical rank", "energy_rank": "energy rank"}


def plot(summary: Sequence[dict], path: str | Path) -> Path:
    """Numerical and energy rank per level, side by side: median bars with whiskers from the smallest to the
    largest head, log scale, with full rank N (solid) and the head dimension d (dotted)."""
    with figure(path, 1, len(PANELS), figsize=(13, 4.4), sharey=True) as (fig, axes):
        for ax, (key, label) in zip(axes, PANELS.items()):
            plot_panel(ax, summary, key)
            ax.set_title(label, fontsize=10)
        axes[0].set_ylabel("rank of the attention map")
        axes[0].legend(fontsize=8, ncol=2)
        fig.suptitle("Attention-map rank per level (solid line: full rank N; dotted: head dim d)", fontsize=10)
    return Path(path)


def plot_panel(ax: Any, summary: Sequence[dict], key: str) -> None:
    """One bar per (variant, state) at each level, for the rank named ``key`` (``rank`` or ``energy_rank``)."""
    series = list(dict.fromkeys((r["variant"], r["state"]) for r in summary))
    levels = sorted({r["level"] for r in summary})
    by_key = {(r["variant"], r["state"], r["level"]): r for r in summary}
    colors = {"linear": "tab:gray", "rela": "tab:blue", "softmax": "tab:orange"}
    width = 0.8 / len(series)
    for i, (variant, state) in enumerate(series):
        xs, heights, low, high = [], [], [], []
        for j, level in enumerate(levels):
            row = by_key.get((variant, state, level))
            if row is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            heights.append(row[f"{key}_median"])
            low.append(row[f"{key}_median"] - row[f"{key}_min"])
            high.append(row[f"{key}_max"] - row[f"{key}_median"])
        ax.bar(
            xs,
            heights,
            width,
            yerr=[low, high],
            capsize=3,
            color=colors.get(variant, "tab:green"),
            alpha=1.0 if state == "trained" else 0.5,
            hatch="" if state == "trained" else "//",
            label=f"{variant}, {state}",
        )
    for j, level in enumerate(levels):
        row = next(r for r in summary if r["level"] == level)
        ax.hlines(row["tokens"], j - 0.45, j + 0.45, colors="black", linestyles="-", linewidth=1)
        ax.hlines(row["head_dim"], j - 0.45, j + 0.45, colors="black", linestyles=":", linewidth=1)
    ax.set_xticks(range(len(levels)), [f"level {lv}\nN = {by_level_tokens(summary, lv)}" for lv in levels])
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5)  # a rank of 1 still shows as a bar


def by_level_tokens(summary: Sequence[dict], level: int) -> int:
    return next(r["tokens"] for r in summary if r["level"] == level)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, nargs="?", help="an attention-ablation sweep (same as --sweep-dir)")
    parser.add_argument("--sweep-dir", type=Path, help="an attention-ablation sweep: analyse its jobs' checkpoints")
    parser.add_argument("--ckpt", type=Path, action="append", default=[], help="a checkpoint (repeatable)")
    parser.add_argument("--attentions", default="linear,rela", help="variants to analyse (add softmax if wanted)")
    parser.add_argument("--size", type=int, default=32, help="side of the photo crop (N = size² at level 1)")
    parser.add_argument("--photo", default="chelsea", help="a photo bundled with scikit-image")
    parser.add_argument("--preset", default="tiny", help="preset of the untrained models")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained models")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="relative singular-value threshold")
    parser.add_argument(
        "--energy", type=float, default=DEFAULT_ENERGY, help="share of the squared singular values for the energy rank"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where to write results")
    parser.add_argument(
        "--earlier",
        type=Path,
        default=None,
        help="rank_table.csv whose rows stand in for checkpoints that are gone (default: the one in --out)",
    )
    args = parser.parse_args(argv)
    earlier = earlier_rows(args.earlier or args.out / "rank_table.csv")

    attentions = [name.strip() for name in args.attentions.split(",") if name.strip()]
    checkpoints: list = list(args.ckpt)
    for sweep in dict.fromkeys(s for s in (args.sweep, args.sweep_dir) if s):
        checkpoints += sweep_checkpoints(sweep, attentions)
    rows = analyse(
        attentions, checkpoints, args.size, args.preset, args.seed, args.rtol, args.photo, args.energy, earlier
    )
    write_csv(rows, args.out / "rank_table.csv")
    write_csv(level_summary(rows, by=RUN_KEYS), args.out / "rank_levels.csv")
    (args.out / "rank_table.md").write_text(render_markdown(rows, args.size, args.photo, args.rtol, args.energy))
    plot(level_summary(rows), args.out / "rank_by_level.png")  # every trained network of a variant pooled
    print((args.out / "rank_table.md").read_text())
    print(f"Per-head table, per-level table and plot written to {args.out}/rank_table.{{csv,md}}, rank_by_level.png")


if __name__ == "__main__":
    main()
