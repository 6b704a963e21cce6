"""``laformer-restore --backend onnxruntime``: PyTorch's output on odd sizes, tiles and alpha kept, one export per
checkpoint (cached by content hash, opset and torch version)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from laformer.cli.restore import main
from laformer.data.io import read_array
from laformer.inference.backends import check_backend
from laformer.inference.checkpoint import load_network
from laformer.inference.onnx_runtime import cached_export, content_hash, onnx_cache_path, onnxruntime_network
from laformer.inference.restore import restore_image
from laformer.models.registry import network_info

pytest.importorskip("onnxruntime")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LAFORMER_CACHE", str(folder))
    return folder


def test_cache_key_follows_the_checkpoints_bytes_and_the_opset(tmp_path: Path, cache: Path) -> None:
    ckpt = tmp_path / "a.ckpt"
    ckpt.write_bytes(b"weights")
    first = onnx_cache_path(ckpt)
    assert first.parent == cache / "onnx" and f"torch{torch.__version__}".replace("+", "_") in first.name
    assert onnx_cache_path(ckpt, opset=18) != first
    ckpt.write_bytes(b"other weights")  # same path, new content: a new graph
    assert onnx_cache_path(ckpt) != first
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    assert len(content_hash(folder)) == 64


def test_backend_refusals() -> None:
    cpu = torch.device("cpu")
    check_backend("onnxruntime", cpu)
    with pytest.raises(ValueError, match="fp32"):
        check_backend("onnxruntime", cpu, precision="bf16")
    with pytest.raises(ValueError, match="--compile off"):
        check_backend("onnxruntime", cpu, compile="on")
    with pytest.raises(ValueError, match="unknown backend"):
        check_backend("tensorrt", cpu)


def test_onnxruntime_matches_pytorch_on_an_odd_sized_image_and_exports_once(trained_ckpt: Path, cache: Path) -> None:
    net, _ = load_network(trained_ckpt)
    net.eval()
    runtime = onnxruntime_network(net, trained_ckpt)
    assert network_info(runtime) == network_info(net)
    image = torch.rand(3, 37, 45, generator=torch.Generator().manual_seed(0))
    expected = restore_image(net, image)
    torch.testing.assert_close(restore_image(runtime, image), expected, rtol=1e-4, atol=1e-4)
    tiled = restore_image(runtime, image, tile=24, overlap=4)
    torch.testing.assert_close(tiled, restore_image(net, image, tile=24, overlap=4), rtol=1e-4, atol=1e-4)
    path, exported = cached_export(net, trained_ckpt)
    assert path == runtime.path and not exported  # the second request reads the cache
    assert [p.name for p in (cache / "onnx").iterdir()] == [path.name]  # no partial file left


def test_cli_backend_keeps_alpha_and_matches_torch(tmp_path: Path, trained_ckpt: Path, cache: Path) -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (33, 41, 4), dtype=np.uint8)
    source = tmp_path / "in" / "cutout.png"
    source.parent.mkdir()
    assert cv2.imwrite(str(source), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    common = [str(source), "--ckpt", str(trained_ckpt), "--device", "cpu", "--tile", "24"]
    assert main([*common, "-o", str(tmp_path / "torch")]) == 0
    assert main([*common, "-o", str(tmp_path / "ort"), "--backend", "onnxruntime"]) == 0
    ours = read_array(tmp_path / "ort" / "cutout.png", keep_alpha=True)
    reference = read_array(tmp_path / "torch" / "cutout.png", keep_alpha=True)
    assert ours.shape == (33, 41, 4)
    assert np.array_equal(ours[..., 3], rgba[..., 3])
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1


def test_the_app_takes_the_same_engine_options(trained_ckpt: Path, cache: Path) -> None:
    from laformer.app.service import RestoreOptions, Restorer
    from laformer.inference.onnx_runtime import OnnxRuntimeNetwork

    restorer = Restorer.from_path(trained_ckpt, RestoreOptions(device="cpu", backend="onnxruntime", compile="off"))
    assert isinstance(restorer.net, OnnxRuntimeNetwork)
    with pytest.raises(ValueError, match="fp32"):
        Restorer.from_path(trained_ckpt, RestoreOptions(device="cpu", backend="onnxruntime", precision="bf16"))
