"""One seed, one start: the attention variants share every initial weight, so an ablation compares attentions.

RELA's depthwise weights once came from the global random stream and shifted every weight drawn after them; a
paired "RELA - linear" difference then also measured a new initial draw. These tests pin the fix.
"""

from __future__ import annotations

import math

import pytest
import torch

from laformer.models import LAformer, RankEnhancedLinearAttention

VARIANTS = ("linear", "rela", "softmax")


def _shared_state(net: LAformer) -> dict[str, torch.Tensor]:
    return {key: value for key, value in net.state_dict().items() if ".spatial.dwconv." not in key}


def _build(seed: int, attention: str, preset: str = "tiny") -> tuple[LAformer, torch.Tensor]:
    """The network built under ``seed`` and the next number of the global stream after building it."""
    torch.manual_seed(seed)
    net = LAformer.from_preset(preset, attention=attention)
    return net, torch.rand(4)


def _depthwise(net: LAformer) -> list[torch.Tensor]:
    return [m.dwconv.weight.detach().clone() for m in net.modules() if isinstance(m, RankEnhancedLinearAttention)]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_every_variant_starts_from_the_same_shared_weights(seed: int, preset: str) -> None:
    built = {attention: _build(seed, attention, preset) for attention in VARIANTS}
    reference, reference_next = built["linear"]
    for attention in ("rela", "softmax"):
        net, next_draw = built[attention]
        shared = _shared_state(net)
        assert shared.keys() == reference.state_dict().keys()
        unequal = [key for key, value in shared.items() if not torch.equal(value, reference.state_dict()[key])]
        assert unequal == [], f"{attention} starts from other weights than linear: {unequal[:3]}"
        # What is drawn after the network (dropout, data order from the global stream) is the same too.
        assert torch.equal(next_draw, reference_next)


def test_depthwise_weights_follow_the_seed_and_differ_between_layers() -> None:
    first = _depthwise(_build(1, "rela")[0])
    again = _depthwise(_build(1, "rela")[0])
    other_seed = _depthwise(_build(2, "rela")[0])
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(a, b) for a, b in zip(first, other_seed))
    same_width = [w for w in first if w.shape == first[1].shape]
    assert len(same_width) >= 2  # tiny has several RELA layers of one width: they must not share kernels
    assert not torch.equal(same_width[0], same_width[1])


def test_depthwise_weights_keep_pytorchs_default_conv_distribution() -> None:
    # Conv2d's default (Kaiming uniform with a = sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); a depthwise
    # 5 x 5 kernel has fan_in 25, so the bound is 0.2. A uniform draw fills most of the interval.
    net = LAformer.from_preset("small", attention="rela", kernel_size=5)
    weights = torch.cat([w.flatten() for w in _depthwise(net)])
    bound = 1 / math.sqrt(25)
    assert weights.abs().max() <= bound
    assert weights.abs().max() > 0.95 * bound
    assert abs(weights.std().item() - bound / math.sqrt(3)) < 0.01


def test_a_rela_layer_built_alone_leaves_the_global_stream_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    layer = RankEnhancedLinearAttention(dim=12, num_heads=2)
    assert torch.equal(torch.rand(3), expected)
    assert torch.isfinite(layer.dwconv.weight).all() and layer.dwconv.weight.abs().sum() > 0


def test_a_network_built_under_a_default_device_keeps_every_weight_there() -> None:
    with torch.device("meta"):
        net = LAformer.from_preset("tiny", attention="rela")
    assert {p.device.type for p in net.parameters()} == {"meta"}
    torch.manual_seed(3)
    expected = _depthwise(LAformer.from_preset("tiny", attention="rela"))
    torch.manual_seed(3)
    with torch.device("cpu"):
        assert all(torch.equal(a, b) for a, b in zip(_depthwise(LAformer.from_preset("tiny")), expected))
