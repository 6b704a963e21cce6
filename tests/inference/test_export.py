"""``laformer-export``: an ONNX model with dynamic height and width that matches PyTorch in onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from laformer.cli.export import main
from laformer.inference.checkpoint import load_network


def test_onnx_export_matches_pytorch_at_several_sizes(tmp_path: Path, trained_ckpt: Path, capsys) -> None:
    path = tmp_path / "model.onnx"
    assert main(["--ckpt", str(trained_ckpt), "--format", "onnx", "-o", str(path), "--check"]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime vs PyTorch: max abs difference" in printed

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]

    net, _ = load_network(trained_ckpt)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(7)
    for shape in [(1, 3, 40, 56), (1, 3, 64, 48), (2, 3, 33, 71), (1, 3, 8, 8)]:
        x = torch.rand(*shape, generator=generator)
        (got,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            expected = net(x).numpy()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_default_output_path_and_missing_checkpoint(tmp_path: Path, trained_ckpt: Path, capsys) -> None:
    ckpt = tmp_path / "copy.ckpt"
    ckpt.write_bytes(trained_ckpt.read_bytes())
    assert main(["--ckpt", str(ckpt)]) == 0
    assert (tmp_path / "copy.onnx").is_file()
    assert main(["--ckpt", str(tmp_path / "none.ckpt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--ckpt", str(ckpt), "--format", "tflite"])
