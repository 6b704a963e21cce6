"""Compiled inference: the same output as eager on an odd-sized image, and a second process reuses the disk cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from laformer.inference.compiled import (
    CompiledNetwork,
    cache_root,
    compile_cache_dir,
    compile_network,
    resolve_compile,
)
from laformer.models import LAformer
from laformer.models.registry import network_info

TOY = "torch.manual_seed(0); net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.GELU())"
CHILD = f"""
import json, torch
from laformer.inference.compiled import compile_counters, compile_network
{TOY}
out = compile_network(net.eval(), "on")(torch.rand(1, 3, 21, 27))
print(json.dumps(compile_counters()))
"""


def test_cache_folder_follows_laformer_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAFORMER_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    assert compile_cache_dir() == tmp_path / "torch-compile" / f"torch-{torch.__version__}"
    monkeypatch.delenv("LAFORMER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "laformer"


def test_compile_modes() -> None:
    assert resolve_compile("on") and not resolve_compile("off") and not resolve_compile("auto")
    net = nn.Conv2d(3, 3, 1)
    assert compile_network(net, "off") is net
    with pytest.raises(ValueError, match="compile mode"):
        resolve_compile("yes")


def test_compiled_network_keeps_the_descriptor_and_parameters() -> None:
    net = LAformer.from_preset("tiny", width=8)
    wrapped = CompiledNetwork(net)  # compiles lazily, on the first call
    assert network_info(wrapped) == network_info(net)
    assert next(wrapped.parameters()) is next(net.parameters())


def _child(cache: Path) -> dict[str, int]:
    env = {**os.environ, "LAFORMER_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    for variable in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        env.pop(variable, None)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_loads_the_compiled_graph_from_the_cache(tmp_path: Path) -> None:
    first = _child(tmp_path)
    assert first["fxgraph_cache_miss"] >= 1 and first["fxgraph_cache_hit"] == 0
    inductor = tmp_path / "torch-compile" / f"torch-{torch.__version__}" / "inductor"
    assert any(inductor.rglob("*")), "the first process wrote nothing into the project's cache folder"
    second = _child(tmp_path)
    assert second["fxgraph_cache_hit"] >= 1 and second["fxgraph_cache_miss"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("shapes", ["dynamic", "static"])
def test_compiled_laformer_equals_eager_on_an_odd_sized_image(shapes: str, tmp_path: Path) -> None:
    os.environ.setdefault("LAFORMER_CACHE", str(tmp_path))
    torch.manual_seed(0)
    net = LAformer(width=8, blocks=(1, 1, 1, 1), refinement=1, heads=(1, 2, 4, 8)).eval()
    net = net.to(memory_format=torch.channels_last)
    compiled = compile_network(net, "on", shapes=shapes)
    with torch.no_grad():
        for height, width in ((37, 45), (29, 51)):  # two sizes: the dynamic graph takes both
            x = torch.rand(1, 3, height, width).contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(compiled(x), net(x), rtol=1e-4, atol=1e-4)
