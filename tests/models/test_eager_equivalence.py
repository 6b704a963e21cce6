"""Issue 25's eager optimisations change speed only: outputs and gradients equal the previous code's to 1e-5.

The previous code is frozen in ``reference_laformer``; both networks get one state dict (so the keys and shapes of
checkpoints are unchanged too), for each attention variant, in both memory formats, on an odd-sized image (the
padding path), in training (gradients) and in inference, through the whole-map and the strip paths.
"""

from __future__ import annotations

import pytest
import torch

from laformer.models import LAformer
from laformer.models.blocks import ConvGatedFFN, GlobalPerception
from tests.models import reference_laformer as reference

SMALL = {"width": 8, "blocks": (1, 1, 1, 1), "refinement": 1, "heads": (1, 2, 4, 8)}
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _pair(attention: str, memory_format: str, **overrides: object) -> tuple[LAformer, reference.LAformer]:
    torch.manual_seed(0)
    net = LAformer(**{**SMALL, "attention": attention, **overrides})
    ref = reference.LAformer(**{**SMALL, "attention": attention, **overrides})
    ref.load_state_dict(net.state_dict(), strict=True)  # same keys and shapes: old checkpoints load as they did
    fmt = FORMATS[memory_format]
    return net.to(memory_format=fmt), ref.to(memory_format=fmt)


def _input(memory_format: str, height: int = 29, width: int = 35) -> torch.Tensor:
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    return x.contiguous(memory_format=FORMATS[memory_format])


@pytest.mark.parametrize("memory_format", sorted(FORMATS))
@pytest.mark.parametrize("attention", ["rela", "linear", "softmax"])
def test_outputs_and_gradients_equal_the_previous_code(attention: str, memory_format: str) -> None:
    net, ref = _pair(attention, memory_format)
    x = _input(memory_format)
    grad_out = torch.randn(2, 3, 29, 35, generator=torch.Generator().manual_seed(2))
    results = []
    for model in (net, ref):
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.backward(grad_out)
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        results.append((out.detach(), xi.grad.clone(), grads))
    (out, gx, grads), (ref_out, ref_gx, ref_grads) = results
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(gx, ref_gx, **TOL)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("memory_format", sorted(FORMATS))
@pytest.mark.parametrize("feature_map", ["elu", "relu"])
@pytest.mark.parametrize("attention", ["rela", "linear"])
def test_inference_and_strip_path_equal_the_previous_code(
    attention: str, feature_map: str, memory_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, ref = _pair(attention, memory_format, feature_map=feature_map)
    x = _input(memory_format, 45, 53)
    with torch.inference_mode():
        whole = net.eval()(x)
        torch.testing.assert_close(whole, ref.eval()(x), **TOL)
        for cls in (GlobalPerception, ConvGatedFFN, reference.GlobalPerception, reference.ConvGatedFFN):
            monkeypatch.setattr(cls, "strip_pixels", 200)  # strips of a few rows at every level
        torch.testing.assert_close(net(x), ref(x), **TOL)
        torch.testing.assert_close(net(x), whole, **TOL)


def test_state_dict_keys_and_shapes_are_unchanged() -> None:
    net = LAformer.from_preset("tiny")
    ref = reference.LAformer(**{**{"width": 16, "blocks": (1, 2, 2, 2), "refinement": 1, "heads": (1, 2, 4, 8)}})
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
