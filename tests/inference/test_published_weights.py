"""Published checkpoints of the peer networks, as their authors lay them out, through the suite's own loaders.

Each file is built here: the spandrel class with a small config of the published architecture, its weights saved
in the authors' layout (NAFNet's and Restormer's ``{'params': ...}``, SwinIR's ``{'params', 'params_ema'}``,
DRUNet's and DnCNN's bare state dict) with ``torch.save``. Loading goes through ``load_network`` (weights-only
``torch.load``, then spandrel recognises the network from its tensors), and must give what spandrel's own model
gives on the same input.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from laformer.cli import export as export_cli
from laformer.cli import restore as restore_cli
from laformer.data.io import read_array, write_image
from laformer.inference.checkpoint import CheckpointError, load_network
from laformer.inference.restore import cpu_heap_reuse, restore_image
from laformer.models import build_network, network_info
from laformer.models.peers import PeerUnavailableError, _registry, build_peer, import_spandrel

try:
    import_spandrel()
except PeerUnavailableError as exc:  # the core suite works without the `peers` extra
    pytest.skip(str(exc), allow_module_level=True)

LAYOUTS = {"nafnet": "params", "swinir": "params_ema", "restormer": "params", "drunet": None, "dncnn": None}


def published_file(tmp_path: Path, arch: str, seed: int = 0) -> Path:
    """A weights file in the authors' layout, of a small network of ``arch`` with random (seeded) weights."""
    torch.manual_seed(seed)
    state = build_peer(arch, "tiny").model.state_dict()
    key = LAYOUTS[arch]
    if arch == "swinir":  # BasicSR files hold both; the EMA weights are the ones to evaluate
        torch.manual_seed(seed + 1)
        payload = {"params": build_peer(arch, "tiny").model.state_dict(), "params_ema": state}
    else:
        payload = {key: state} if key else dict(state)
    path = tmp_path / f"{arch}_published.pth"
    torch.save(payload, path)
    return path


def spandrel_model(path: Path):
    """spandrel's own descriptor for the file (loaded weights-only here, as spandrel's loader is not used)."""
    return _registry().load(torch.load(path, map_location="cpu", weights_only=True))


@pytest.mark.parametrize("arch", sorted(LAYOUTS))
def test_published_file_loads_and_matches_spandrels_model(tmp_path: Path, arch: str) -> None:
    path = published_file(tmp_path, arch)
    net, config = load_network(path)
    info = network_info(net)
    assert info.family == arch and not net.training and config["arch"] == arch
    reference = spandrel_model(path)
    for size in ((32, 48), (37, 45), (19, 23)):  # multiples, odd sides, and below SwinIR's minimum of 16 on one side
        x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            ours = net(x).clamp(0, 1)
        torch.testing.assert_close(ours, reference(x), rtol=0, atol=1e-6)
    # The config rebuilds the same network through the registry (what exports and fine-tuning rely on).
    rebuilt = build_network(config, source="config")
    rebuilt.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), net(x), rtol=0, atol=0)
    json.dumps(config)  # plain values only, as a model folder's config.json needs


def test_swinir_takes_the_ema_weights(tmp_path: Path) -> None:
    path = published_file(tmp_path, "swinir")
    net, _ = load_network(path)
    ema = torch.load(path, weights_only=True)["params_ema"]
    for name, value in net.model.state_dict().items():
        torch.testing.assert_close(value, ema[name], rtol=0, atol=0)


def test_weights_spandrel_does_not_know_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "mystery.pth"
    torch.save({"params": {"encoder.weight": torch.zeros(4, 3, 3, 3), "head.bias": torch.zeros(4)}}, path)
    with pytest.raises(CheckpointError, match=r"mystery\.pth is neither a laformer-train checkpoint nor a network"):
        load_network(path)
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 3, "note": "no weights"}, empty)
    with pytest.raises(CheckpointError, match=r"empty\.pth holds no state dict of tensors"):
        load_network(empty)


def test_published_safetensors_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = build_peer("nafnet", "tiny").model.state_dict()
    path = tmp_path / "NAFNet-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    net, _ = load_network(path)
    assert network_info(net).family == "nafnet"
    torch.testing.assert_close(net.model.intro.weight, state["intro.weight"], rtol=0, atol=0)


def test_laformer_restore_with_a_published_pth(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = published_file(tmp_path, "drunet")
    rng = np.random.default_rng(0)
    photo = tmp_path / "in" / "photo.png"
    write_image(photo, torch.from_numpy(rng.random((3, 37, 45), dtype=np.float32)))
    out = tmp_path / "out"
    assert restore_cli.main([str(photo), "-o", str(out), "--ckpt", str(path), "--device", "cpu"]) == 0
    assert "model drunet from" in capsys.readouterr().err
    restored = read_array(out / "photo.png")
    assert restored.shape == (37, 45, 3) and restored.dtype == np.uint8
    net, _ = load_network(path)
    expected = restore_image(net, torch.from_numpy(read_array(photo)).permute(2, 0, 1).float() / 255)
    assert np.abs(restored.astype(float) - np.round(expected.permute(1, 2, 0).numpy() * 255)).max() <= 1
    # Tiles must start on the network's multiple (4 for this two-level NAFNet): refused before any image is read.
    nafnet = published_file(tmp_path, "nafnet")
    assert restore_cli.main([str(photo), "-o", str(tmp_path / "o2"), "--ckpt", str(nafnet), "--tile", "18"]) == 2
    assert "--tile must be a positive multiple of 4 for this nafnet network" in capsys.readouterr().err


def test_tiles_and_heap_reuse_follow_the_descriptor(tmp_path: Path) -> None:
    net, _ = load_network(published_file(tmp_path, "nafnet"))
    image = torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(0))
    whole, tiled = restore_image(net, image), restore_image(net, image, tile=32, overlap=8)
    assert tiled.shape == whole.shape and (tiled - whole).abs().mean() < 0.02
    with cpu_heap_reuse(net, image[None], None, 1) as enabled:
        assert not enabled  # no memory figure for this network: glibc's default allocator is kept


@pytest.mark.parametrize("arch", ["nafnet", "drunet"])
def test_onnx_export_of_a_published_file(tmp_path: Path, arch: str, capsys: pytest.CaptureFixture) -> None:
    path = published_file(tmp_path, arch)
    onnx = tmp_path / f"{arch}.onnx"
    assert export_cli.main(["--ckpt", str(path), "--format", "onnx", "-o", str(onnx), "--check"]) == 0
    printed = capsys.readouterr().out
    difference = float(printed.split("max abs difference ")[1].split()[0])
    assert difference < 1e-4 and f"({arch}" in printed


def test_export_refuses_a_network_that_cannot_trace_and_says_why(tmp_path: Path) -> None:
    net = build_peer("dncnn", "tiny")
    net._info = dataclasses.replace(net.info, export_blocker="its window mask is built in Python per input size")
    with pytest.raises(export_cli.ExportError, match=r"dncnn cannot be exported .* window mask is built in Python"):
        export_cli.export_onnx(net, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_published_file_to_model_folder_and_back(tmp_path: Path) -> None:
    path = published_file(tmp_path, "restormer")
    folder = tmp_path / "restormer_model"
    assert export_cli.main(["--ckpt", str(path), "--format", "safetensors", "-o", str(folder)]) == 0
    net, _ = load_network(path)
    again, config = load_network(folder)
    assert network_info(again).family == "restormer" and config["arch"] == "restormer"
    x = torch.rand(1, 3, 29, 35)
    with torch.no_grad():
        torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)


def test_precisions_follow_the_descriptor(tmp_path: Path) -> None:
    net, _ = load_network(published_file(tmp_path, "restormer"))
    image = torch.rand(3, 24, 40, generator=torch.Generator().manual_seed(0))
    bf16 = restore_image(net, image, precision="bf16")  # spandrel marks Restormer bf16-capable
    assert (bf16 - restore_image(net, image)).abs().max() < 0.1
    net._info = dataclasses.replace(net.info, supports_bf16=False)
    with pytest.raises(ValueError, match="restormer is not known to stay finite in bf16"):
        restore_image(net, image, precision="bf16")
