"""Study reports: the job summaries of a sweep as rows, tables in CSV and markdown, the statistics every study
reports (mean, sd, the paired t-interval, what an interval decides, a Pareto front) and their cells, the figure a
study draws into, and the hook that writes a study's table and plot when its Hydra multirun ends. Tables go through
pandas, statistics through SciPy; no study writes its own."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

from laformer.runs import SUMMARY_FILE, config_dir, job_folders

T = TypeVar("T")


def project_root() -> Path:
    """The checkout holding ``conf/`` (and ``experiments/``)."""
    return Path(config_dir()).parent


def read_job_summaries(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job's ``summary.json`` directly under ``sweep_dir`` (``<sweep>/<job>/summary.json``), in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder not found: {sweep_dir} (pass the folder holding the jobs 0/, 1/, ...)")
    paths = [folder / SUMMARY_FILE for folder in job_folders(sweep_dir)]
    if not paths:
        raise FileNotFoundError(
            f"no job summaries (*/{SUMMARY_FILE}) under {sweep_dir}: did the sweep's jobs finish? Each job writes "
            "its summary when training ends"
        )
    return [json.loads(path.read_text()) for path in paths]


def job_speed(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A job's length and speed from its summary: steps, training minutes and images/s (training steps only, as
    ``TrainingThroughput`` counts them), and the whole job's minutes (scoring included); None where not recorded."""
    throughput = summary.get("throughput") or {}
    train_time, wall = throughput.get("train_time_s"), summary.get("wall_time_s")
    return {
        "steps": summary.get("steps"),
        "train_time_min": train_time / 60 if train_time is not None else None,
        "images_per_s": throughput.get("images_per_s"),
        "wall_time_min": wall / 60 if wall is not None else None,
    }


def parse_overrides(overrides: Sequence[str] | None) -> dict[str, str]:
    """A job's Hydra overrides as a mapping: ``["a.b=1", "+c=x"]`` -> ``{"a.b": "1", "c": "x"}`` (``+``/``~`` dropped).

    Studies read a job's sweep axes (task, crop, seed) from what the sweep set.
    """
    parsed = {}
    for item in overrides or ():
        key, _, value = str(item).partition("=")
        parsed[key.lstrip("+~")] = value
    return parsed


def job_axes(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep axes of one job: task (the degradation config), training crop, seed, attention and model.

    From the job's overrides (what the sweep set) and, where an axis was not swept, the run keys laformer-train
    writes into the summary (``patch_size``, ``seed``, ``degradation`` and ``sigma``); None where neither says.
    """
    overrides, net = parse_overrides(summary.get("overrides")), summary.get("net") or {}
    task = overrides.get("data/degradation")
    if not task and summary.get("degradation"):  # the class name and strength, when the task was not swept
        sigma = summary.get("sigma")
        task = f"{summary['degradation']}{'' if sigma is None else f' σ{sigma}'}"
    return {
        "task": task or None,
        "crop": _integer(_first(overrides.get("data.patch_size"), summary.get("patch_size"))),
        "seed": _integer(_first(overrides.get("seed"), summary.get("seed"))),
        "attention": _first(net.get("attention"), summary.get("attention")),
        "model": _first(net.get("name"), summary.get("model")),
    }


def _integer(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Rows as CSV; the columns are ``columns``, else the union of the rows' keys in order of first appearance.

    Values are written as Python writes them (an int stays ``1``, not ``1.0``; None and missing keys are empty),
    so a rerun on the same records rewrites the same bytes. Keys outside ``columns`` are left out.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns) if columns is not None else list(dict.fromkeys(key for row in rows for key in row))
    # dtype=object keeps each value as it is: pandas would otherwise turn an int column with a gap into floats.
    table = pd.DataFrame([{key: row.get(key) for key in columns} for row in rows], columns=columns, dtype=object)
    table.to_csv(path, index=False, lineterminator="\r\n")
    return path


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV with numbers parsed back (int where it reads as one, else float) and empty cells as None."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [{key: _parsed(value) for key, value in row.items()} for row in table.to_dict("records")]


def read_dataclass_rows(path: str | Path, cls: type[T]) -> list[T]:
    """Rows of a CSV written from dataclass rows, as ``cls`` again: each field typed by its annotation.

    A field annotated ``int``, ``float`` or ``bool`` (optionally ``| None``) is parsed back (an empty cell is None),
    any other field stays text (an empty cell is ""); columns ``cls`` does not have are left out.
    """
    kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = []
    for record in table.to_dict("records"):
        values: dict[str, Any] = {}
        for name, text in record.items():
            kind = kinds.get(name)
            if kind is None:
                continue
            if kind.split(" ")[0] in ("int", "float", "bool"):
                cast = {"int": int, "float": float, "bool": lambda t: t == "True"}[kind.split(" ")[0]]
                values[name] = None if text == "" else cast(text)
            else:
                values[name] = text
        rows.append(cls(**values))
    return rows


def _parsed(value: str) -> Any:
    if value == "":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def markdown_table(
    rows: Sequence[dict[str, Any]], columns: dict[str, str], formats: dict[str, str] | None = None
) -> str:
    """A markdown table of ``rows``: ``columns`` maps a row key to its header, ``formats`` a key to a format spec.

    Missing or None values print as an em dash; numeric columns are right-aligned. Written here rather than by
    ``DataFrame.to_markdown``: tabulate pads every cell to its column's width, which would rewrite each committed
    table (and the lines the tests look for) without changing a number.
    """
    formats = formats or {}

    def cell(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if value is None:
            return "—"
        return format(value, formats[key]) if key in formats else str(value)

    numeric = {key for key in columns if any(isinstance(row.get(key), (int, float)) for row in rows)}
    lines = [
        "| " + " | ".join(columns.values()) + " |",
        "|" + "|".join("---:" if key in numeric else "---" for key in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row, key) for key in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class RunScriptAfterSweep(HydraCallback):
    """Hydra callback: when a multirun ends, run a study's report script on the sweep folder.

    The script runs as ``python <script> <sweep_dir> <args...>`` from the project root, so a relative
    ``script`` (and relative paths in ``args``) name files of the checkout, wherever the sweep was launched.
    Hydra calls the end-of-multirun callbacks only when every job succeeded; run the script by hand otherwise.
    """

    def __init__(self, script: str, args: Sequence[str] | None = None) -> None:
        self.script, self.args = script, [str(arg) for arg in args or []]

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = project_root()
        script = Path(self.script) if Path(self.script).is_absolute() else root / self.script
        if not script.is_file():
            raise FileNotFoundError(f"report script not found: {script} (check hydra.callbacks.*.script)")
        command = [sys.executable, str(script), str(Path(config.hydra.sweep.dir).resolve()), *self.args]
        print("Writing the study report:", " ".join(command), flush=True)
        done = subprocess.run(command, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(
                f"the report script failed (exit {done.returncode}); the sweep's jobs are complete, rerun it with: "
                + " ".join(command)
            )


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the values that are not None; the sd is None below two."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    # By hand, not numpy.std: numpy's sums (and scipy's t.interval) differ in the last bit, which would rewrite every
    # committed table when a report is rerun on its records. SciPy gives the t quantile below.
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def t_interval(values: Sequence[float | None], level: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high): the mean and its two-sided Student-t confidence interval at ``level`` (SciPy's t quantile).

    For paired differences (one per seed) this is the paired t-interval. The bounds are None for fewer than two
    values, where no interval exists.
    """
    from scipy import stats

    mean, sd = mean_sd(values)
    if mean is None or sd is None:
        return mean, None, None
    n = len([v for v in values if v is not None])
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / n**0.5
    return mean, mean - half, mean + half


def paired_t_interval(
    values: Mapping[Any, float | None], reference: Mapping[Any, float | None], level: float = 0.95
) -> tuple[float | None, float | None, float | None, int]:
    """(mean, low, high, n): the paired t-interval of ``values - reference`` over the keys (seeds) both hold.

    ``values`` and ``reference`` map a pairing key, usually the seed, to a score; a key missing on either side or
    a None score is left out. The studies compare a variant with its reference trained under the same seed.
    """
    diffs = [
        value - reference[key] for key, value in values.items() if value is not None and reference.get(key) is not None
    ]
    return (*t_interval(diffs, level), len(diffs))


def format_mean_sd(mean: float | None, sd: float | None, fmt: str = ".2f") -> str | None:
    """``29.41 ± 0.12`` (just the mean where there is no sd; None where there is no mean), for a table cell."""
    if mean is None:
        return None
    return f"{mean:{fmt}}" + (f" ± {sd:{fmt.lstrip('+')}}" if sd is not None else "")


def format_interval(mean: float | None, low: float | None, high: float | None) -> str | None:
    """``+0.12 [-0.05, +0.29]``: a signed difference and its interval, or the note that one seed gives none."""
    if mean is None:
        return None
    interval = f" [{low:+.2f}, {high:+.2f}]" if low is not None else " (one seed: no interval)"
    return f"{mean:+.2f}{interval}"


def interval_verdict(low: float | None, high: float | None, above: str, below: str) -> str:
    """What an interval of a difference decides: ``above`` (all of it above 0), ``below``, or neither."""
    if low is None or high is None:
        return "one seed, no interval"
    if low > 0:
        return above
    if high < 0:
        return below
    return "not distinguishable (the interval holds 0)"


def short_number(value: Any) -> str:
    """A cell of a measurement table: four significant digits (none after the point from 1000 up), empty for None."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def pareto_front(points: Sequence[tuple[str, float, float]]) -> set[str]:
    """Names on the front of (name, cost, quality) points: no other point is at most as costly and strictly better."""
    front, best = set(), float("-inf")
    for name, _, quality in sorted(points, key=lambda p: (p[1], -p[2])):
        if quality > best:
            front.add(name)
            best = quality
    return front


@contextlib.contextmanager
def figure(
    path: str | Path, nrows: int = 1, ncols: int = 1, dpi: int = 110, **subplots: Any
) -> Iterator[tuple[Any, Any]]:
    """``with figure(path, 1, 2, figsize=(9, 4)) as (fig, axes): ...``: a study's plot, drawn off-screen.

    The figure is laid out tightly, saved to ``path`` (its folder created) and closed when the block ends; an
    exception in the block saves nothing. ``subplots`` go to ``matplotlib.pyplot.subplots``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(nrows, ncols, **subplots)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


# --- choosing a setting on the validation photos; learning curves --------------------------------------------------


def select_by_validation(
    records: Sequence[Mapping[str, Any]],
    group: Sequence[str],
    setting: str,
    score: str,
    higher_is_better: bool = True,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The setting (a learning rate, a design choice) each group scores best with, on ``score`` alone.

    ``records`` are per-job rows (one per group, setting and seed); ``group`` names the keys that identify whose
    setting is chosen (``("point", "network")``), ``setting`` the key chosen over, and ``score`` the validation
    score (``"val_psnr"``). Each setting's scores are averaged over the group's records (seeds); records without
    the score are left out. No other key of a record is read: a held-out score beside the validation one cannot
    change the choice, which is the point (a figure used to choose is a validation figure, never the headline).
    Ties keep the setting seen first.

    Returns ``{group values: {"setting", "score", "runs", "scores": {setting: mean}}}``, groups in first-seen order.
    """
    collected: dict[tuple[Any, ...], dict[Any, list[float]]] = {}
    for record in records:
        value = record.get(score)
        if value is None:
            continue
        key = tuple(record.get(g) for g in group)
        collected.setdefault(key, {}).setdefault(record.get(setting), []).append(float(value))
    chosen = {}
    for key, by_setting in collected.items():
        means = {s: sum(v) / len(v) for s, v in by_setting.items()}
        sign = 1.0 if higher_is_better else -1.0
        best = max(means, key=lambda s: sign * means[s])  # max keeps the first of equals
        chosen[key] = {"setting": best, "score": means[best], "runs": len(by_setting[best]), "scores": means}
    return chosen


def learning_curve_rows(
    records: Sequence[Mapping[str, Any]],
    group: Sequence[str],
    score: str,
    step: str = "step",
    time: str = "train_time_s",
    pair: str = "seed",
    reference: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per group and step of a learning curve, from one record per kept checkpoint.

    A record is a checkpoint of one job (``CurveCheckpoints`` writes the step and the training seconds), scored
    afterwards (``score``: a held-out PSNR, say). Each row holds the group's keys, the step, the number of scored
    records, the mean and sd of the score and the mean training minutes to that step. With ``reference`` (group
    values, e.g. ``{"network": "laformer_rela"}``), each other group also gets the paired difference to the
    reference group at the same step and the same other keys, paired by ``pair`` (the seed), with its 95 %
    t-interval (``diff``, ``diff_low``, ``diff_high``, ``pairs``). Rows: groups in first-seen order, steps rising.
    """
    scores: dict[tuple[tuple[Any, ...], int], dict[Any, float | None]] = {}
    minutes: dict[tuple[tuple[Any, ...], int], list[float]] = {}
    for record in records:
        key = (tuple(record.get(g) for g in group), int(record[step]))
        scores.setdefault(key, {})[record.get(pair)] = record.get(score)
        if record.get(time) is not None:
            minutes.setdefault(key, []).append(float(record[time]) / 60)
    order = list(dict.fromkeys(k[0] for k in scores))
    rows = []
    for key in sorted(scores, key=lambda k: (order.index(k[0]), k[1])):
        values, step_value = scores[key], key[1]
        mean, sd = mean_sd(list(values.values()))
        spent = minutes.get(key)
        row: dict[str, Any] = dict(zip(group, key[0]))
        row.update({step: step_value, "runs": len([v for v in values.values() if v is not None])})
        row.update({score: mean, f"{score}_sd": sd, "train_time_min": sum(spent) / len(spent) if spent else None})
        if reference is not None:
            mine = dict(zip(group, key[0]))
            if any(mine.get(k) != v for k, v in reference.items()):
                partner = tuple(reference.get(g, mine[g]) for g in group)
                diff, low, high, n = paired_t_interval(values, scores.get((partner, step_value), {}))
                row.update(diff=diff, diff_low=low, diff_high=high, pairs=n)
        rows.append(row)
    return rows


def plot_learning_curves(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    label: Sequence[str],
    score: str,
    score_label: str = "held-out PSNR (dB)",
    step: str = "step",
    lines: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """PSNR against steps and against training minutes, one line per ``label`` group (``learning_curve_rows``).

    ``lines`` draws horizontal references (``{"NL-means": 28.0}``) on both panels, so a reader sees when a network
    passes a classical filter. Mean over seeds with sd bars; the x axes are logarithmic (doubling steps).
    """
    curves: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get(score) is not None:
            curves.setdefault(" ".join(str(row.get(k)) for k in label), []).append(row)
    with figure(path, 1, 2, figsize=(12, 4.8)) as (fig, axes):
        for ax, (key, xlabel) in zip(axes, ((step, "training steps"), ("train_time_min", "training time (min)"))):
            for index, (name, points) in enumerate(curves.items()):
                shown = sorted((p for p in points if p.get(key) is not None), key=lambda p: p[key])
                if not shown:
                    continue
                ax.errorbar([p[key] for p in shown], [p[score] for p in shown],
                            yerr=[p.get(f"{score}_sd") or 0 for p in shown], marker="o", markersize=4, capsize=3,
                            color=f"C{index % 10}", label=name)  # fmt: skip
            for text, value in (lines or {}).items():
                ax.axhline(value, linestyle="--", color="0.6", linewidth=1)
                ax.annotate(text, (0.01, value), xycoords=("axes fraction", "data"), fontsize=7, color="0.4",
                            xytext=(0, 2), textcoords="offset points")  # fmt: skip
            ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{score_label}, mean ± sd over seeds")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
        if title:
            fig.suptitle(title)
    return Path(path)
