"""The whole LAformer network: presets, shapes, gradients, residual, mixed precision, MAC counts."""

from __future__ import annotations

import pytest
import torch

from laformer.models import PRESETS, LAformer, RankEnhancedLinearAttention, SoftmaxAttention
from laformer.models.complexity import count_macs, count_parameters

ATTENTIONS = ("rela", "linear", "softmax")
PRESET_NAMES = ("tiny", "small", "base")


def _stage_depths(model: LAformer) -> dict[str, list[int]]:
    return {
        "encoders": [len(stage) for stage in model.encoders],
        "latent": [len(model.latent)],
        "decoders": [len(stage) for stage in model.decoders],
        "refinement": [len(model.refinement)],
    }


def _rela_to_linear_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in state.items() if ".spatial.dwconv." not in key}


# --- presets and configuration ------------------------------------------------------------------


def test_base_preset_matches_spec() -> None:
    model = LAformer.from_preset("base", attention="rela")
    assert model.embed.out_channels == 48
    assert _stage_depths(model) == {"encoders": [4, 6, 6], "latent": [8], "decoders": [6, 6, 4], "refinement": [4]}
    heads = [stage[0].perception.num_heads for stage in [*model.encoders, model.latent]]
    assert heads == [1, 2, 4, 8]
    assert [stage[0].perception.num_heads for stage in model.decoders] == [4, 2, 1]
    assert model.refinement[0].perception.num_heads == 1
    widths = [stage[0].norm1.norm.normalized_shape[0] for stage in [*model.encoders, model.latent]]
    assert widths == [48, 96, 192, 384]
    spatial = [m for m in model.modules() if isinstance(m, RankEnhancedLinearAttention)]
    assert len(spatial) == 2 * (4 + 6 + 6) + 8 + 4
    assert {m.kernel_size for m in spatial} == {5}
    assert {m.feature_map for m in spatial} == {"elu"}
    assert model.attention == "rela"


def test_default_attention_is_rela() -> None:
    model = LAformer.from_preset("tiny")
    assert model.attention == "rela"
    assert isinstance(model.encoders[0][0].perception.spatial, RankEnhancedLinearAttention)


def test_preset_overrides() -> None:
    base = LAformer.from_preset("base")
    narrow = LAformer.from_preset("base", attention="linear", width=32, refinement=2, kernel_size=3)
    assert narrow.embed.out_channels == 32
    assert len(narrow.refinement) == 2
    assert narrow.attention == "linear"
    assert _stage_depths(narrow)["encoders"] == [4, 6, 6]  # untouched keys keep the preset
    assert count_parameters(narrow) < count_parameters(base)
    rela_small_kernel = LAformer.from_preset("tiny", kernel_size=3)
    assert rela_small_kernel.encoders[0][0].perception.spatial.dwconv.kernel_size == (3, 3)
    assert PRESETS["base"]["width"] == 48  # overrides must not leak into the shared preset table


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"name": "huge"}, r"unknown preset 'huge'.*'base'.*'small'.*'tiny'"),
        ({"name": "tiny", "attention": "flash"}, r"unknown attention 'flash'.*'linear'.*'rela'.*'softmax'"),
        ({"name": "tiny", "feature_map": "softplus"}, r"unknown feature_map 'softplus'.*'elu'.*'relu'"),
        (
            {"name": "tiny", "attention": "linear", "feature_map": "softplus"},
            r"unknown feature_map 'softplus'.*'elu'.*'relu'",
        ),
        ({"name": "tiny", "fusion": "concat"}, r"unknown fusion 'concat'.*'gate'.*'sum'.*'sequence'"),
        ({"name": "tiny", "heads": (1, 2, 3, 8)}, r"not divisible by 3 heads"),
        ({"name": "tiny", "blocks": (1, 1, 1)}, r"4 entries"),
    ],
)
def test_invalid_configuration_raises(kwargs: dict, pattern: str) -> None:
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=pattern):
        LAformer.from_preset(name, **kwargs)


# --- forward / backward on every preset and variant -----------------------------------------------


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_forward_backward_odd_size(preset: str, attention: str) -> None:
    torch.manual_seed(0)
    model = LAformer.from_preset(preset, attention=attention)
    x = torch.rand(2, 3, 67, 45)
    y = model(x)
    assert y.shape == (2, 3, 67, 45)
    assert torch.isfinite(y).all()

    loss = (y - torch.rand_like(y)).square().mean()
    loss.backward()
    params = dict(model.named_parameters())
    assert params
    missing = [name for name, p in params.items() if p.grad is None]
    non_finite = [name for name, p in params.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
    all_zero = [name for name, p in params.items() if p.grad is not None and not p.grad.any()]
    assert not missing, f"no gradient: {missing[:5]}"
    assert not non_finite, f"non-finite gradient: {non_finite[:5]}"
    assert not all_zero, f"all-zero gradient: {all_zero[:5]}"


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize(("in_channels", "out_channels"), [(1, 1), (3, 1), (1, None)])
def test_channel_configurations(in_channels: int, out_channels: int | None, attention: str) -> None:
    model = LAformer.from_preset("tiny", attention=attention, in_channels=in_channels, out_channels=out_channels)
    x = torch.rand(2, in_channels, 37, 29)
    with torch.no_grad():
        y = model(x)
    expected_out = in_channels if out_channels is None else out_channels
    assert y.shape == (2, expected_out, 37, 29)
    assert torch.isfinite(y).all()
    assert model.in_channels == in_channels and model.out_channels == expected_out


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (7, 9), (8, 8), (17, 3), (33, 64)])
def test_any_size_including_tiny_images(size: tuple[int, int]) -> None:
    model = LAformer.from_preset("tiny")
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("fusion", ["gate", "sum", "sequence"])
@pytest.mark.parametrize("feature_map", ["elu", "relu"])
def test_fusion_and_feature_map_options(fusion: str, feature_map: str) -> None:
    model = LAformer.from_preset("tiny", fusion=fusion, feature_map=feature_map)
    assert {m.perception.fusion for m in model.modules() if hasattr(m, "perception")} == {fusion}
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_fusion_modes_compute_different_functions() -> None:
    x = torch.rand(1, 3, 16, 16)
    outputs = []
    for fusion in ("gate", "sum", "sequence"):
        torch.manual_seed(0)
        model = LAformer.from_preset("tiny", fusion=fusion)
        with torch.no_grad():
            outputs.append(model(x))
    assert not torch.allclose(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


# --- global residual and the crop back to the input size ------------------------------------------


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_zero_output_layer_gives_identity(attention: str) -> None:
    """With the last conv zeroed, the network is exactly its global residual: the (padded, cropped) input."""
    model = LAformer.from_preset("tiny", attention=attention)
    torch.nn.init.zeros_(model.output.weight)
    torch.nn.init.zeros_(model.output.bias)
    x = torch.rand(2, 3, 21, 13)
    with torch.no_grad():
        y = model(x)
    assert torch.equal(y, x)


def test_no_residual_when_channels_differ() -> None:
    model = LAformer.from_preset("tiny", in_channels=3, out_channels=1)
    torch.nn.init.zeros_(model.output.weight)
    torch.nn.init.zeros_(model.output.bias)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 20, 12))
    assert torch.equal(y, torch.zeros(1, 1, 20, 12))


def test_batch_elements_are_independent() -> None:
    """Global attention must not mix images of a batch (e.g. a reduction over the wrong axis)."""
    torch.manual_seed(0)
    for attention in ATTENTIONS:
        model = LAformer.from_preset("tiny", attention=attention).double()
        x = torch.rand(3, 3, 16, 24, dtype=torch.float64)
        with torch.no_grad():
            batched = model(x)
            single = torch.cat([model(x[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(batched, single, rtol=1e-10, atol=1e-10)


# --- RELA reduces to linear attention ---------------------------------------------------------


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_rela_with_zero_depthwise_weights_equals_linear(preset: str) -> None:
    torch.manual_seed(0)
    rela = LAformer.from_preset(preset, attention="rela")
    linear = LAformer.from_preset(preset, attention="linear")
    rela_state = rela.state_dict()
    dw_keys = [key for key in rela_state if key.endswith("spatial.dwconv.weight")]
    assert len(dw_keys) == sum(isinstance(m, RankEnhancedLinearAttention) for m in rela.modules()) > 0
    linear.load_state_dict(_rela_to_linear_state(rela_state), strict=True)

    x = torch.rand(2, 3, 35, 27)
    with torch.no_grad():
        assert not torch.allclose(rela(x), linear(x))  # the depthwise term matters while it is non-zero
        for name, param in rela.named_parameters():
            if name.endswith("spatial.dwconv.weight"):
                param.zero_()
        assert torch.equal(rela(x), linear(x))


# --- softmax: the query-chunked path is the same global attention ------------------------------


def test_softmax_chunked_model_matches_unchunked() -> None:
    torch.manual_seed(0)
    model = LAformer.from_preset("tiny", attention="softmax").double()
    x = torch.rand(1, 3, 24, 16, dtype=torch.float64)
    with torch.no_grad():
        reference = model(x)
        for module in model.modules():
            if isinstance(module, SoftmaxAttention):
                module.max_scores = 50  # a few queries per chunk at every level
        chunked = model(x)
    assert SoftmaxAttention.max_scores == 2**26  # patched on the instances only
    torch.testing.assert_close(chunked, reference, rtol=1e-12, atol=1e-12)


# --- mixed precision at high resolution ----------------------------------------------------------


@pytest.mark.parametrize("attention", ["rela", "linear"])
# 512² and 1024² are slow: on CPUs without AVX-512 bf16 oneDNN has no bf16 convolution and PyTorch takes its slow
# reference kernel (tiny on the AVX2-only EPYC, 2026-12-07: 11 s at 256², 56-59 s at 512²; 1024² 358-533 s under load).
@pytest.mark.parametrize("size", [256, *(pytest.param(side, marks=pytest.mark.slow) for side in (512, 1024))])
def test_bf16_autocast_large_input_is_finite(attention: str, size: int) -> None:
    torch.manual_seed(0)
    model = LAformer.from_preset("tiny", attention=attention).eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_bf16_autocast_close_to_fp32(attention: str) -> None:
    torch.manual_seed(0)
    model = LAformer.from_preset("tiny", attention=attention).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert torch.isfinite(low).all()
    assert (low.float() - reference).abs().mean() < 0.02 * reference.abs().mean()


# --- parameter and MAC counts ---------------------------------------------------------------


def test_count_parameters_matches_manual_sum() -> None:
    model = LAformer.from_preset("tiny")
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 0
    linear = LAformer.from_preset("tiny", attention="linear")
    dw = sum(m.dwconv.weight.numel() for m in model.modules() if isinstance(m, RankEnhancedLinearAttention))
    assert count_parameters(model) - count_parameters(linear) == dw


def test_macs_scale_quadratically_for_softmax_and_linearly_otherwise() -> None:
    macs = {
        attention: [count_macs(LAformer.from_preset("tiny", attention=attention), s, s) for s in (128, 256)]
        for attention in ATTENTIONS
    }
    growth = {attention: large / small for attention, (small, large) in macs.items()}
    assert growth["linear"] == pytest.approx(4.0, rel=0.01)
    assert growth["rela"] == pytest.approx(4.0, rel=0.01)
    assert growth["softmax"] / growth["linear"] > 3.5  # ~16x vs ~4x
    # The attention-only part (softmax minus linear, same other layers) grows exactly with N^2.
    attention_only = [s - lin for s, lin in zip(macs["softmax"], macs["linear"])]
    assert attention_only[1] / attention_only[0] == pytest.approx(16.0, rel=0.02)
    assert macs["rela"][0] > macs["linear"][0]  # the depthwise term costs something


def test_count_macs_leaves_the_model_alone() -> None:
    model = LAformer.from_preset("tiny", attention="softmax")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    macs = count_macs(model, 64, 48)
    assert macs > 0
    params = dict(model.named_parameters())
    assert all(p.device.type == "cpu" for p in params.values())
    assert all(torch.equal(params[name], value) for name, value in before.items())
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 3, 16, 16))).all()  # still usable on the CPU


def test_count_macs_channels_and_grayscale() -> None:
    rgb = count_macs(LAformer.from_preset("tiny"), 64, 64)
    gray = count_macs(LAformer.from_preset("tiny", in_channels=1), 64, 64)
    assert 0 < gray < rgb
