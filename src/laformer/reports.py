"""Study reports: the job summaries of a sweep as rows, tables in CSV and markdown, the statistics every study
reports (mean, sd, the paired t-interval), and the hook that writes a study's table and plot when its Hydra
multirun ends. Tables go through pandas, statistics through SciPy; no study writes its own."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

from laformer.runs import SUMMARY_FILE, config_dir

T = TypeVar("T")


def project_root() -> Path:
    """The checkout holding ``conf/`` (and ``experiments/``)."""
    return Path(config_dir()).parent


def read_job_summaries(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job's ``summary.json`` directly under ``sweep_dir`` (``<sweep>/<job>/summary.json``), in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder not found: {sweep_dir} (pass the folder holding the jobs 0/, 1/, ...)")
    paths = sorted(sweep_dir.glob(f"*/{SUMMARY_FILE}"), key=lambda p: _job_order(p.parent.name))
    if not paths:
        raise FileNotFoundError(
            f"no job summaries (*/{SUMMARY_FILE}) under {sweep_dir}: did the sweep's jobs finish? Each job writes "
            "its summary when training ends"
        )
    return [json.loads(path.read_text()) for path in paths]


def _job_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (sys.maxsize, name)


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
