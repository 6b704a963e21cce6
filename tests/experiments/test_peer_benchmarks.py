"""The efficiency benchmark and the complexity table on peer networks (the frontier study: test_frontier.py)."""

from __future__ import annotations

import pytest

from laformer.benchmarks.measure import forward_benchmark
from laformer.benchmarks.networks import cost, model_overrides, network_config
from laformer.models.peers import PeerUnavailableError, import_spandrel
from tests.experiments.scripts import load_script

try:
    import_spandrel()
except PeerUnavailableError as exc:  # the core suite works without the `peers` extra
    pytest.skip(str(exc), allow_module_level=True)

complexity = load_script("experiments/model_complexity.py", "model_complexity_for_peers")


def test_benchmark_worker_builds_a_peer_network() -> None:
    spec = {"config": network_config(model_overrides("restormer:tiny")), "width": 24, "height": 16,
            "precision": "fp32", "device": "cpu", "warmup": 0, "repeats": 1}  # fmt: skip
    result = forward_benchmark(spec)
    assert result["status"] == "ok", result
    assert len(result["times"]) == 1 and result["times"][0] > 0
    params_m, macs_g = cost(model_overrides("nafnet:small", "-"), 256, 256)
    assert params_m == pytest.approx(2.93, abs=0.01) and macs_g == pytest.approx(2.02, abs=0.01)


def test_model_complexity_lists_peer_networks() -> None:
    assert "swinir:base" in complexity.expand_models("all") and len(complexity.expand_models("all")) == 10
    rows = complexity.measure_peers(["nafnet:base", "drunet:small"], 256, 256)
    assert rows[0]["params_m"] == pytest.approx(29.16, abs=0.01) and rows[0]["macs_g"] == pytest.approx(16.05, abs=0.01)
    table = complexity.render_peers(rows, 256, 256)
    assert "| nafnet | base | 29.16 | 16.05 |" in table and "| drunet | small |" in table
