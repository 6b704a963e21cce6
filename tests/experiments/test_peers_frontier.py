"""The quality-versus-cost study (experiments/peers/frontier.py) at toy sizes, and the benchmarks on peer networks."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from laformer.models.peers import PeerUnavailableError, import_spandrel
from tests.experiments.scripts import load_script

try:
    import_spandrel()
except PeerUnavailableError as exc:  # the core suite works without the `peers` extra
    pytest.skip(str(exc), allow_module_level=True)

frontier = load_script("experiments/peers/frontier.py", "peers_frontier")
benchmark = load_script("experiments/efficiency/benchmark.py", "efficiency_benchmark_for_peers")
complexity = load_script("experiments/model_complexity.py", "model_complexity_for_peers")

# Training overrides that make each network's job take seconds: small crops, one validation and one test photo,
# both cropped to odd sides, NL-means as the classical anchor.
TOY = [
    "data.patch_size=32",
    "data.batch_size=2",
    "data.repeat=1",
    "data.val_photos=[coffee]",
    "data.val_crop=45",
    "data.test_photos=[camera]",
    "data.test_crop=37",
    "callbacks.anchors.methods=[nlmeans]",
    "callbacks.image_grid=null",
    "callbacks.progress_bar=null",
]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_network_names_map_to_train_and_benchmark_names() -> None:
    assert frontier.model_overrides("laformer:tiny") == ["model=tiny"]
    assert frontier.model_overrides("nafnet:small") == ["model=nafnet", "model.preset=small"]
    assert frontier.benchmark_name("laformer:small") == ("small", "rela")
    assert frontier.benchmark_name("swinir:small") == ("swinir:small", "-")
    with pytest.raises(SystemExit, match="FAMILY:PRESET"):
        frontier.parse_network("nafnet")


def test_toy_study_writes_table_and_plot_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "study"
    argv = ["--networks", "dncnn:tiny", "--steps", "2", "--timing", "none", "--out", str(out), *TOY]
    rows = frontier.main(argv)
    for name in ("results.csv", "results.md", "frontier.png"):
        assert (out / name).is_file()
    by_name = {row["network"]: row for row in _read(out / "results.csv")}
    network, noisy, anchor = by_name["dncnn_tiny"], by_name["noisy input"], by_name["nlmeans"]
    assert network["status"] == "ok" and network["steps"] == "2" and float(network["macs_g"]) > 0
    assert float(network["test_psnr"]) > 0 and float(noisy["test_psnr"]) > 0 and float(anchor["test_psnr"]) > 0
    assert "| dncnn_tiny |" in (out / "results.md").read_text()
    assert [r["network"] for r in rows] == ["dncnn_tiny", "noisy input", "nlmeans"]

    summary = out / "runs" / "dncnn_tiny" / "summary.json"
    written = summary.stat().st_mtime_ns
    capsys.readouterr()
    frontier.main(argv)  # a finished network is not trained again
    assert "dncnn_tiny: finished earlier" in capsys.readouterr().out
    assert summary.stat().st_mtime_ns == written
    with pytest.raises(SystemExit, match="not --steps 3"):
        frontier.main([*argv[:3], "3", *argv[4:]])


@pytest.mark.slow  # two trainings and four timing workers, each a fresh process: ~1-2 minutes on 2 cores
def test_toy_study_with_timing(tmp_path: Path) -> None:
    out = tmp_path / "study"
    frontier.main(
        ["--networks", "laformer:tiny,nafnet:tiny", "--steps", "2", "--out", str(out), "--sizes", "32", "48",
         "--repeats", "1", "--warmup", "0", "--threads", "1", *TOY]
    )  # fmt: skip
    by_name = {row["network"]: row for row in _read(out / "results.csv")}
    for name in ("laformer_tiny", "nafnet_tiny"):
        assert float(by_name[name]["latency_48_s"]) > 0, by_name[name]
    timing = _read(out / "timing.csv")
    assert {(r["preset"], r["attention"]) for r in timing} == {("tiny", "rela"), ("nafnet:tiny", "-")}


def test_benchmark_worker_builds_a_peer_network() -> None:
    spec = {"preset": "restormer:tiny", "attention": "-", "width": 24, "height": 16, "precision": "fp32",
            "device": "cpu", "warmup": 0, "repeats": 1}  # fmt: skip
    result = benchmark.run_worker(spec)
    assert result["status"] == "ok", result
    assert len(result["times"]) == 1 and result["times"][0] > 0
    params_m, macs_g = benchmark._count("nafnet:small", "-", 256, 256, {})
    assert params_m == pytest.approx(2.93, abs=0.01) and macs_g == pytest.approx(2.02, abs=0.01)


def test_model_complexity_lists_peer_networks() -> None:
    assert "swinir:base" in complexity.expand_models("all") and len(complexity.expand_models("all")) == 10
    rows = complexity.measure_peers(["nafnet:base", "drunet:small"], 256, 256)
    assert rows[0]["params_m"] == pytest.approx(29.16, abs=0.01) and rows[0]["macs_g"] == pytest.approx(16.05, abs=0.01)
    table = complexity.render_peers(rows, 256, 256)
    assert "| nafnet | base | 29.16 | 16.05 |" in table and "| drunet | small |" in table
