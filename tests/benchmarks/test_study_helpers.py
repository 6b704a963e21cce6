"""Helpers the studies used to write each for itself, now in the package (issue 24): the paired interval and its
cells, the Pareto front, figures, a job's speed, the forward latency, the gradient-layout check, the error note,
and a part under a time budget."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from laformer.benchmarks.measure import (
    describe_error,
    forward_latency,
    gradient_layout_mismatches,
    precision_problem,
)
from laformer.benchmarks.memory import gpu_peak, peak_of
from laformer.benchmarks.parts import BudgetedPart, run_budgeted
from laformer.reports import (
    figure,
    format_interval,
    format_mean_sd,
    interval_verdict,
    job_speed,
    paired_t_interval,
    pareto_front,
    short_number,
    t_interval,
)


def test_paired_interval_pairs_by_key_and_leaves_gaps_out() -> None:
    mine = {1: 25.0, 2: 26.0, 3: 24.5, 4: None}
    theirs = {1: 24.0, 2: 25.5, 3: 24.0, 5: 30.0}
    assert paired_t_interval(mine, theirs) == (*t_interval([1.0, 0.5, 0.5]), 3)
    assert paired_t_interval({1: 1.0}, {1: 0.5})[1:] == (None, None, 1)  # one pair: no interval


def test_cells_and_verdicts_of_an_interval() -> None:
    assert format_mean_sd(29.414, 0.123) == "29.41 ± 0.12" and format_mean_sd(1.0, None, ".4f") == "1.0000"
    assert format_mean_sd(None, 1.0) is None
    assert format_interval(0.1234, -0.05, 0.29) == "+0.12 [-0.05, +0.29]"
    assert format_interval(0.5, None, None) == "+0.50 (one seed: no interval)"
    assert interval_verdict(0.1, 0.3, "above", "below") == "above"
    assert interval_verdict(-0.3, -0.1, "above", "below") == "below"
    assert interval_verdict(-0.1, 0.3, "above", "below").startswith("not distinguishable")
    assert interval_verdict(None, None, "above", "below") == "one seed, no interval"
    assert [short_number(v) for v in (None, 0.123456, 12345.6, 3, float("nan"))] == ["", "0.1235", "12346", "3", "nan"]


def test_pareto_front_keeps_what_nothing_cheaper_beats() -> None:
    points = [("a", 1.0, 20.0), ("b", 2.0, 19.0), ("c", 2.0, 21.0), ("d", 5.0, 25.0)]
    assert pareto_front(points) == {"a", "c", "d"}


def test_figure_saves_on_success_and_nothing_on_an_error(tmp_path: Path) -> None:
    with figure(tmp_path / "sub" / "plot.png", 1, 2, figsize=(4, 2)) as (fig, axes):
        fig.suptitle("two panels")
        axes[0].plot([0, 1], [1, 0])
    assert (tmp_path / "sub" / "plot.png").stat().st_size > 0
    with pytest.raises(RuntimeError), figure(tmp_path / "broken.png"):
        raise RuntimeError("the drawing failed")
    assert not (tmp_path / "broken.png").exists()


def test_job_speed_reads_a_summary() -> None:
    summary = {"steps": 10, "throughput": {"train_time_s": 120.0, "images_per_s": 3.5}, "wall_time_s": 300.0}
    assert job_speed(summary) == {"steps": 10, "train_time_min": 2.0, "images_per_s": 3.5, "wall_time_min": 5.0}
    assert job_speed({}) == {"steps": None, "train_time_min": None, "images_per_s": None, "wall_time_min": None}


def test_forward_latency_and_gradient_layout_on_the_cpu() -> None:
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    timing, peak = forward_latency(net, torch.rand(1, 3, 16, 16), "fp32", warmup=1, repeats=2)
    assert len(timing.times) == 2 and all(t > 0 for t in timing.times) and peak is None  # no GPU peak on the CPU
    params, odd = gradient_layout_mismatches(net, torch.rand(2, 3, 8, 8))
    assert params == 2 and odd == []
    with gpu_peak("cpu") as memory:
        pass
    assert peak_of(memory) is None
    assert "GPU" in precision_problem("fp16", "cpu") and precision_problem("fp32", "cpu") is None


def test_describe_error_is_one_bounded_line() -> None:
    assert describe_error(ValueError("a\n  b")) == "ValueError: a b"
    long = describe_error(RuntimeError("x" * 500), limit=50)
    assert len(long) == 50 and long.endswith("...")


@dataclass
class Row:
    case: str
    status: str = "ok"
    note: str = ""


@dataclass
class Part(BudgetedPart):
    deadline: float
    in_flight: Row | None = None


def test_a_budgeted_part_records_errors_skips_and_the_case_in_flight_at_timeout() -> None:
    rows: list[Row] = []
    part = Part(time.monotonic() + 1.0)

    def cases():
        yield part.attempt(Row("fails"), lambda row: 1 / 0)
        yield part.attempt(Row("skipped"), lambda row: None, skip="no bf16 here")
        yield part.attempt(Row("hangs"), lambda row: time.sleep(30))
        yield Row("never")

    run_budgeted(cases, 1.0, rows.append, part, lambda: Row("(part)"))
    assert [(r.case, r.status) for r in rows] == [("fails", "error"), ("skipped", "skipped"), ("hangs", "timeout")]
    assert rows[0].note.startswith("ZeroDivisionError") and rows[1].note == "no bf16 here"
    assert part.left() < 0  # the budget is spent
