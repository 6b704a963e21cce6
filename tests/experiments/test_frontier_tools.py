"""The package pieces the frontier's stages stand on (issue 26): a setting chosen on validation scores only, variants
refused off their cost point with their ratio, the learning-curve table from checkpoint records, and its plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from laformer.benchmarks.cost_points import (
    OffCostPoint,
    check_cost_point,
    check_variants,
    merge_overrides,
    preset_entry,
)
from laformer.models.laformer import PRESETS
from laformer.reports import learning_curve_rows, plot_learning_curves, select_by_validation

VARIANTS = Path(__file__).resolve().parents[2] / "experiments" / "frontier" / "variants.yaml"


def _job(network: str, lr: float, seed: int, val: float, test: float) -> dict:
    return {"point": "tiny", "network": network, "lr": lr, "seed": seed, "val_psnr": val, "test_psnr": test}


def test_the_learning_rate_is_chosen_on_validation_scores_only() -> None:
    records = [
        _job("nafnet", 1e-3, 1, 27.0, 27.5),
        _job("nafnet", 3e-3, 1, 27.4, 27.6),
        _job("dncnn", 1e-3, 1, 26.0, 26.0),
        _job("dncnn", 3e-3, 1, 25.0, 25.0),
    ]
    chosen = select_by_validation(records, group=("point", "network"), setting="lr", score="val_psnr")
    assert chosen["tiny", "nafnet"]["setting"] == 3e-3 and chosen["tiny", "dncnn"]["setting"] == 1e-3
    assert chosen["tiny", "nafnet"]["scores"] == {1e-3: 27.0, 3e-3: 27.4}

    # A fake job whose held-out score would pick 1e-3 for NAFNet (and with no validation score at all for 6e-3):
    # the choice does not move, because the held-out column is never read.
    tempting = [*records, _job("nafnet", 1e-3, 2, 27.3, 35.0), {**_job("nafnet", 6e-3, 1, 0, 40.0), "val_psnr": None}]
    again = select_by_validation(tempting, group=("point", "network"), setting="lr", score="val_psnr")
    assert again["tiny", "nafnet"]["setting"] == 3e-3
    assert again["tiny", "nafnet"]["scores"][1e-3] == pytest.approx(27.15)  # averaged over its two seeds
    by_test = select_by_validation(tempting, group=("point", "network"), setting="lr", score="test_psnr")
    assert by_test["tiny", "nafnet"]["setting"] == 6e-3  # the same records, read on the other column, would differ


def test_a_variant_off_its_cost_point_is_refused_with_its_ratio() -> None:
    assert check_cost_point("fusion=sum", 3.94, 3.94) == pytest.approx(1.0)
    assert check_cost_point("kernel 7", 4.30, 3.94) == pytest.approx(1.0914, abs=1e-4)  # 9 % over: allowed
    with pytest.raises(OffCostPoint, match=r"qk_ratio=1.0: 4.38 G MACs, x1.112 of the point's 3.94 G.*±10%"):
        check_cost_point("qk_ratio=1.0", 4.38, 3.94)
    with pytest.raises(OffCostPoint, match=r"x0.888"):
        check_cost_point("narrow", 3.50, 3.94)


def test_a_real_variant_is_counted_and_refused_and_the_shipped_ones_are_on_the_point() -> None:
    reference = ["model=tiny", "model.attention=rela"]
    with pytest.raises(OffCostPoint, match=r"wide: .*x1.11\d of the point's 3.94 G"):
        check_variants({"ok": ["model.fusion=sum"], "wide": ["model.qk_ratio=1.0"]}, reference, 0.10)
    spec = OmegaConf.to_container(OmegaConf.load(VARIANTS))
    variants = {
        f"{choice}={value}": overrides
        for choice, values in spec["choices"].items()
        for value, overrides in values.items()
        if overrides
    }
    assert len(variants) == 9  # every open choice of the issue has its alternatives
    table = check_variants(variants, spec["reference"], spec["tolerance"])  # raises if a variant drifted
    assert {round(row["ratio"], 2) for row in table.values()} <= {round(0.9 + i / 100, 2) for i in range(21)}


def test_a_tuned_preset_is_the_reference_with_the_chosen_overrides() -> None:
    chosen = merge_overrides(["model=tiny"], ["model.qk_ratio=1.0", "model.refinement=0"], ["model.blocks=[1,1,1,6]"])
    assert chosen == ["model=tiny", "model.qk_ratio=1.0", "model.refinement=0", "model.blocks=[1,1,1,6]"]
    assert merge_overrides(["model.width=16"], ["model.width=14"]) == ["model.width=14"]
    entry = preset_entry(chosen, PRESETS["tiny"])
    assert entry == {**PRESETS["tiny"], "qk_ratio": 1.0, "refinement": 0, "blocks": (1, 1, 1, 6)}


def _checkpoint(network: str, seed: int, step: int, minutes: float, psnr: float | None) -> dict:
    return {"network": network, "seed": seed, "step": step, "train_time_s": minutes * 60, "test_psnr": psnr}


CURVE = [
    _checkpoint("laformer_rela", 1, 500, 2.0, 27.0),
    _checkpoint("laformer_rela", 1, 250, 1.0, 26.0),
    _checkpoint("laformer_rela", 2, 250, 1.2, 26.4),
    _checkpoint("laformer_rela", 2, 500, 2.2, 27.4),
    _checkpoint("nafnet", 1, 250, 0.8, 26.5),
    _checkpoint("nafnet", 2, 250, 1.0, 27.1),
    _checkpoint("nafnet", 1, 500, 1.6, 27.8),
    _checkpoint("nafnet", 2, 500, 1.8, None),  # not scored yet
]


def test_the_learning_curve_table_from_checkpoint_records() -> None:
    rows = learning_curve_rows(CURVE, group=("network",), score="test_psnr", reference={"network": "laformer_rela"})
    assert [(r["network"], r["step"], r["runs"]) for r in rows] == [
        ("laformer_rela", 250, 2),
        ("laformer_rela", 500, 2),
        ("nafnet", 250, 2),
        ("nafnet", 500, 1),
    ]
    rela_250, _, nafnet_250, nafnet_500 = rows
    assert rela_250["test_psnr"] == pytest.approx(26.2) and rela_250["test_psnr_sd"] == pytest.approx(0.2828, 1e-3)
    assert rela_250["train_time_min"] == pytest.approx(1.1) and "diff" not in rela_250
    # paired by seed at the same step: (26.5 - 26.0, 27.1 - 26.4) -> +0.6, an interval of two pairs
    assert nafnet_250["diff"] == pytest.approx(0.6) and nafnet_250["pairs"] == 2
    assert nafnet_250["diff_low"] < 0.6 < nafnet_250["diff_high"]
    assert nafnet_500["test_psnr"] == pytest.approx(27.8) and nafnet_500["pairs"] == 1
    assert nafnet_500["diff"] == pytest.approx(0.8) and nafnet_500["diff_low"] is None  # one pair: no interval


def test_the_learning_curve_plot_is_written(tmp_path: Path) -> None:
    rows = learning_curve_rows(CURVE, group=("network",), score="test_psnr")
    png = plot_learning_curves(rows, tmp_path / "curves" / "learning_curves.png", label=("network",),
                               score="test_psnr", lines={"NL-means": 28.0}, title="toy")  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
