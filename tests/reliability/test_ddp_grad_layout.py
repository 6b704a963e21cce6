"""DDP copies each gradient into a bucket laid out like its parameter and warns ("Grad strides do not match bucket
view strides") on every run where the two differ. LayerNorm2d used to hand its branch a channels-last view, so
every depthwise convolution's weight gradient came back with channels-last strides."""

from __future__ import annotations

import pytest
import torch

from laformer.models import LAformer
from laformer.models.blocks import LayerNorm2d
from tests.reliability.common import fast, run_cli

DDP_STRIDE_WARNING = "Grad strides do not match bucket view strides"


def odd_gradients(net: torch.nn.Module, x: torch.Tensor) -> list[str]:
    """Parameters whose raw gradient (as autograd hands it to DDP) has other strides than the parameter."""
    params = dict(net.named_parameters())
    grads = torch.autograd.grad(net(x).square().mean(), list(params.values()))
    return [
        f"{name}: grad {tuple(g.stride())}, parameter {tuple(p.stride())}"
        for (name, p), g in zip(params.items(), grads)
        if g.stride() != p.stride()
    ]


@pytest.mark.parametrize("attention", ["rela", "linear", "softmax"])
@pytest.mark.parametrize("fusion", ["gate", "sequence"])
def test_every_gradient_is_laid_out_as_its_parameter(attention: str, fusion: str) -> None:
    torch.manual_seed(0)
    net = LAformer.from_preset("tiny", attention=attention, fusion=fusion, width=8)
    assert odd_gradients(net, torch.rand(2, 3, 24, 32)) == []


def test_channels_last_training_keeps_the_layouts_matched() -> None:
    torch.manual_seed(0)
    net = LAformer.from_preset("tiny", width=8).to(memory_format=torch.channels_last)
    assert odd_gradients(net, torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)) == []


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_layer_norm_returns_its_inputs_memory_format_and_normalises_over_channels(memory_format) -> None:
    torch.manual_seed(0)
    norm = LayerNorm2d(6)
    x = torch.randn(2, 6, 5, 7).contiguous(memory_format=memory_format)
    out = norm(x)
    assert out.is_contiguous(memory_format=memory_format)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.norm.weight, norm.norm.bias, 1e-6)
    torch.testing.assert_close(out, expected.permute(0, 3, 1, 2), rtol=0, atol=0)


@pytest.mark.slow  # two gloo processes of the real laformer-train
@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])  # channels_last: the demo's
def test_two_process_ddp_run_does_not_warn_about_grad_strides(tmp_path, memory_format: str) -> None:
    overrides = fast(
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=2",
        f"module.memory_format={memory_format}",
    )  # fmt: skip
    output = run_cli(tmp_path / "ddp", [*overrides, "trainer.limit_val_batches=0", "test_after_fit=false"])
    assert "Starting with 2 processes" in output
    assert DDP_STRIDE_WARNING not in output
