"""The rank-analysis study: linear maps stay at the head dimension, RELA's do not, on a real photo crop, for
untrained models and for a network loaded from a checkpoint file."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import pytest
import torch

from laformer.models import LAformer
from laformer.runs import write_summary
from laformer.training.callbacks import StoreNetConfig
from tests.experiments.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SIDE = 16  # N = 256, 64, 16, 4 tokens at levels 1-4


analyze = load_script("experiments/rank_analysis/analyze.py", "rank_analysis_analyze")


def _rows(attentions=("linear", "rela")) -> list[dict]:
    x = analyze.photo_crop(SIDE)
    models = analyze.untrained_models(attentions, "tiny", seed=0, width=8)
    return [row for name, model in models.items() for row in analyze.rank_rows(model, x, "untrained", name)]


def test_photo_crop_is_a_real_photo_in_unit_range() -> None:
    x = analyze.photo_crop(24)
    assert x.shape == (1, 3, 24, 24) and x.dtype == torch.float64
    assert 0 <= x.min() < x.max() <= 1 and x.std() > 0.01
    with pytest.raises(ValueError, match="smaller than"):
        analyze.photo_crop(100_000)


def test_untrained_variants_share_every_common_weight() -> None:
    models = analyze.untrained_models(["linear", "rela", "softmax"], "tiny", seed=3, width=8)
    rela = models["rela"].state_dict()
    for name in ("linear", "softmax"):
        state = models[name].state_dict()
        assert state.keys() == {k for k in rela if ".spatial.dwconv." not in k}
        assert all(torch.equal(state[k], rela[k]) for k in state)


def test_linear_rank_is_bounded_by_head_dim_and_rela_exceeds_it() -> None:
    rows = _rows()
    linear = {(r["layer"], r["head"]): r for r in rows if r["variant"] == "linear"}
    rela = {(r["layer"], r["head"]): r for r in rows if r["variant"] == "rela"}
    assert linear.keys() == rela.keys() and linear
    assert {r["level"]: r["tokens"] for r in rows} == {1: 256, 2: 64, 3: 16, 4: 4}
    for key, row in linear.items():
        assert row["rank_max"] <= min(row["head_dim"], row["tokens"]), row
        if row["tokens"] > row["head_dim"]:
            assert rela[key]["rank_min"] > row["rank_max"], (key, rela[key], row)
    full_res = [r for r in rela.values() if r["level"] == 1]
    assert all(r["rank_min"] >= 0.9 * r["tokens"] for r in full_res)
    for row in rows:  # the energy rank counts a subset of the values the numerical rank counts
        assert 1 <= row["energy_rank_min"] <= row["energy_rank_max"] <= row["tokens"], row
    for row in linear.values():
        assert row["energy_rank_max"] <= row["head_dim"], row


def test_level_summary_and_outputs(tmp_path: Path) -> None:
    rows = _rows()
    summary = analyze.level_summary(rows)
    assert [(s["state"], s["variant"], s["level"]) for s in summary] == [
        ("untrained", v, level) for v in ("linear", "rela") for level in (1, 2, 3, 4)
    ]
    first = summary[0]
    assert first["heads"] == 3 and first["tokens"] == 256 and first["rank_max"] <= first["head_dim"]
    assert first["networks"] == 1
    markdown = analyze.render_markdown(rows, SIDE, "chelsea", 1e-6)
    assert "| untrained | linear | 1 | 1 | 3 | 256 | 4 | 4 | 4 | 4 | 0.016 |" in markdown  # width 8: d = 4
    assert "| task |" not in markdown and "one row per seed" not in markdown  # no sweep: no run columns
    analyze.plot(summary, tmp_path / "rank.png")
    assert matplotlib.image.imread(tmp_path / "rank.png").shape[1] > 500


def _checkpoint(tmp_path: Path, attention: str, seed: int | None = None, crop: int = 64) -> Path:
    """A checkpoint laid out as laformer-train writes it: the module's ``net.*`` weights and the net config; its
    job's summary in ``tmp_path/sweep`` (with the sweep's overrides when ``seed`` is given)."""
    config = {"_target_": "laformer.models.LAformer.from_preset", "name": "tiny", "attention": attention, "width": 8}
    torch.manual_seed(1 if seed is None else seed)
    net = LAformer.from_preset("tiny", attention=attention, width=8)
    with torch.no_grad():  # a "trained" network: weights no seeded init gives
        for module in net.modules():
            if hasattr(module, "dwconv"):
                module.dwconv.weight.mul_(3.0)
    path = tmp_path / f"{attention}-{seed}" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, StoreNetConfig.KEY: config}, path)
    summary = {"attention": attention, "last_checkpoint": str(path), "metrics": {}}
    if seed is not None:
        summary["overrides"] = ["data/degradation=lowlight", f"data.patch_size={crop}", f"seed={seed}"]
        summary["overrides"].append(f"model.attention={attention}")
    write_summary(tmp_path / "sweep" / str(len(list((tmp_path / "sweep").glob("*")))), summary)
    return path


def test_sweep_checkpoints_are_loaded_and_analysed(tmp_path: Path) -> None:
    (tmp_path / "sweep").mkdir()
    paths = {name: _checkpoint(tmp_path, name) for name in ("linear", "softmax", "rela")}
    found = analyze.checkpoints_of_sweep(tmp_path / "sweep", ["linear", "rela"])
    assert found == [paths["linear"], paths["rela"]]  # softmax was not asked for

    out = tmp_path / "out"
    analyze.main([str(tmp_path / "sweep"), "--size", str(SIDE), "--out", str(out)])  # positional: the callback's form
    with (out / "rank_table.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    trained = [r for r in rows if r["state"] == "trained"]
    assert {r["source"] for r in trained} == {str(paths["linear"]), str(paths["rela"])}
    assert {r["variant"] for r in rows if r["state"] == "untrained"} == {"linear", "rela"}
    for row in trained:
        if row["variant"] == "linear":
            assert int(row["rank_max"]) <= int(row["head_dim"])
    assert "| trained | rela | 1 |" in (out / "rank_table.md").read_text()
    assert (out / "rank_by_level.png").stat().st_size > 10_000


def test_a_sweep_without_the_requested_variants_is_an_error(tmp_path: Path) -> None:
    write_summary(tmp_path / "0", {"attention": "softmax", "last_checkpoint": "x.ckpt"})
    with pytest.raises(FileNotFoundError, match="trained one of the attentions"):
        analyze.checkpoints_of_sweep(tmp_path, ["linear", "rela"])


def test_a_sweep_of_seeds_gives_rows_per_network_and_a_per_seed_table(tmp_path: Path) -> None:
    (tmp_path / "sweep").mkdir()
    for seed in (1, 2):
        for attention in ("linear", "rela", "softmax"):
            _checkpoint(tmp_path, attention, seed=seed)
    found = analyze.sweep_checkpoints(tmp_path / "sweep", ["linear", "rela"])
    assert [labels for _, labels in found] == [{"task": "lowlight", "crop": 64, "seed": s} for s in (1, 1, 2, 2)]
    out = tmp_path / "out"
    analyze.main(["--sweep-dir", str(tmp_path / "sweep"), "--size", str(SIDE), "--out", str(out)])
    with (out / "rank_levels.csv").open(newline="") as handle:
        levels = list(csv.DictReader(handle))
    trained = [r for r in levels if r["state"] == "trained"]
    assert {(r["variant"], r["seed"], r["level"]) for r in trained} == {
        (v, s, lv) for v in ("linear", "rela") for s in ("1", "2") for lv in ("1", "2", "3", "4")
    }
    assert all(r["task"] == "lowlight" and r["crop"] == "64" and r["networks"] == "1" for r in trained)
    markdown = (out / "rank_table.md").read_text()
    assert "| trained | linear | lowlight | 64 | 1 | 2 | 6 |" in markdown  # seeds pooled: 2 networks, 6 heads
    assert "one row per seed" in markdown
    assert "| linear | lowlight | 64 | 1 | 3 |" in markdown and "| rela | lowlight | 64 | 2 | 3 |" in markdown


def test_a_checkpoint_that_is_gone_keeps_its_earlier_rows(tmp_path: Path) -> None:
    """A job restored from its records in a fresh checkout has no checkpoint: its rows come from the last table."""
    (tmp_path / "sweep").mkdir()
    paths = {name: _checkpoint(tmp_path, name, seed=1) for name in ("linear", "rela")}
    out = tmp_path / "out"
    analyze.main([str(tmp_path / "sweep"), "--size", str(SIDE), "--out", str(out)])
    before = (out / "rank_table.csv").read_text()
    assert set(analyze.earlier_rows(out / "rank_table.csv")) == {str(p) for p in paths.values()}

    paths["rela"].unlink()
    with pytest.raises(FileNotFoundError, match=r"is gone and no earlier rank table.*--earlier"):
        analyze.main([str(tmp_path / "sweep"), "--size", str(SIDE), "--out", str(tmp_path / "fresh")])
    assert not (tmp_path / "fresh").exists()  # refused before any work or any file
    analyze.main([str(tmp_path / "sweep"), "--size", str(SIDE), "--out", str(out)])  # the earlier table: --out's
    assert (out / "rank_table.csv").read_text() == before  # the same rows, read back and written again
    assert "| trained | rela | lowlight | 64 | 1 | 1 | 3 |" in (out / "rank_table.md").read_text()
