"""The reporting module (laformer.reports): CSV over the union of keys, parsed back, and the paired t-interval."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from laformer.reports import mean_sd, read_csv, read_dataclass_rows, t_interval, write_csv


def test_t_interval_matches_a_hand_computed_case() -> None:
    # [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3) = 1.29099, t(0.975, 3 df) = 3.18245, half width 3.18245 * 1.29099 / 2
    mean, low, high = t_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert low == pytest.approx(2.5 - 2.054261, abs=1e-5) and high == pytest.approx(2.5 + 2.054261, abs=1e-5)
    assert t_interval([1.0, None, 2.0, 3.0, 4.0]) == (mean, low, high)  # missing values are left out
    wider = t_interval([1.0, 2.0, 3.0, 4.0], level=0.99)
    assert wider[1] < low and wider[2] > high
    assert t_interval([3.0]) == (3.0, None, None) and t_interval([]) == (None, None, None)
    assert mean_sd([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, (5 / 3) ** 0.5))


def test_csv_takes_the_union_of_keys_and_reads_back(tmp_path: Path) -> None:
    rows = [{"seed": 1, "psnr": 25.5}, {"name": "rela, tiled", "seed": None}, {"psnr": float("inf"), "ok": True}]
    path = write_csv(rows, tmp_path / "sub" / "t.csv")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["seed", "psnr", "name", "ok"]
        assert [r["seed"] for r in reader] == ["1", "", ""]  # an int column with a gap stays ints
    assert read_csv(path) == [
        {"seed": 1, "psnr": 25.5, "name": None, "ok": None},
        {"seed": None, "psnr": None, "name": "rela, tiled", "ok": None},
        {"seed": None, "psnr": float("inf"), "name": None, "ok": "True"},
    ]
    write_csv(rows, path, columns=["psnr", "seed"])
    assert path.read_text().splitlines()[:2] == ["psnr,seed", "25.5,1"]


@dataclass
class _Row:
    name: str
    size: str
    pixels: int | None = None
    time_s: float | None = None
    ok: bool | None = None
    note: str = ""


def test_dataclass_rows_read_back_with_their_types(tmp_path: Path) -> None:
    rows = [_Row("tiny", "256", 65536, 0.25, True), _Row("base", "3840x2160")]
    path = write_csv([asdict(r) for r in rows], tmp_path / "rows.csv")
    assert read_dataclass_rows(path, _Row) == rows
