"""Inference on large maps goes through the blocks in strips of rows: the result must equal the whole-map path."""

from __future__ import annotations

import pytest
import torch

from laformer.models import LAformer
from laformer.models.blocks import ConvGatedFFN, GlobalPerception


@pytest.mark.parametrize("shape", [(1, 16, 37, 29), (2, 16, 24, 50), (1, 16, 5, 300)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_strips_equal_the_whole_map(monkeypatch, shape, channels_last):
    torch.manual_seed(0)
    ffn = ConvGatedFFN(16).eval()
    x = torch.randn(shape)
    if channels_last:
        ffn, x = ffn.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    whole = ffn.ffn(x)
    monkeypatch.setattr(ConvGatedFFN, "strip_pixels", 100)  # strips of a few rows, 1 row for the 300-wide map
    with torch.no_grad():
        strips = ffn(x)
    torch.testing.assert_close(strips, whole, rtol=0, atol=1e-6)
    assert strips.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("attention", ["linear", "rela"])
def test_network_output_does_not_depend_on_the_path(monkeypatch, attention):
    torch.manual_seed(0)
    net = LAformer.from_preset("tiny", attention=attention).eval()
    x = torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        whole = net(x)
    monkeypatch.setattr(ConvGatedFFN, "strip_pixels", 64)
    monkeypatch.setattr(GlobalPerception, "strip_pixels", 100)
    with torch.no_grad():
        strips = net(x)
    torch.testing.assert_close(strips, whole, rtol=0, atol=1e-5)


def test_only_inference_takes_the_strip_path(monkeypatch):
    """With autograd on (training), one whole-map call; without, one call per strip of rows."""
    monkeypatch.setattr(ConvGatedFFN, "strip_pixels", 48)  # 4 rows of a 12-pixel-wide map
    ffn = ConvGatedFFN(8)
    calls = []
    whole_map = ffn.ffn
    monkeypatch.setattr(ffn, "ffn", lambda x: calls.append(x.shape[-2]) or whole_map(x))
    x = torch.randn(1, 8, 12, 12, requires_grad=True)
    ffn(x).sum().backward()
    assert calls == [12] and torch.isfinite(x.grad).all()
    calls.clear()
    with torch.no_grad():
        ffn(x)
    assert calls == [5, 6, 5]  # rows 0-3 (+1 halo), 4-7 (+2), 8-11 (+1)


@pytest.mark.parametrize("attention", ["linear", "rela"])
@pytest.mark.parametrize("fusion", ["gate", "sum", "sequence"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_perception_strips_equal_the_whole_map(monkeypatch, attention, fusion, channels_last):
    torch.manual_seed(0)
    block = GlobalPerception(16, 2, attention=attention, fusion=fusion).eval()
    x = torch.randn(2, 16, 23, 19)
    if channels_last:
        block, x = block.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    calls = []
    in_strips = block.forward_in_strips
    monkeypatch.setattr(block, "forward_in_strips", lambda x, spans: calls.append(x.shape) or in_strips(x, spans))
    with torch.no_grad():
        whole = block(x)
        monkeypatch.setattr(GlobalPerception, "strip_pixels", 40)  # strips of 2 rows: halos cross several strips
        strips = block(x)
    torch.testing.assert_close(strips, whole, rtol=1e-5, atol=1e-5)
    # "sequence" pools the attention output itself, so it needs the whole map and keeps the plain path.
    assert len(calls) == (0 if fusion == "sequence" else 1)
