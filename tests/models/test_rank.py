"""The attention-rank analysis: vanilla linear attention is low-rank, RELA is not, and the maps are the real ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from laformer.models import LAformer, LinearAttention, RankEnhancedLinearAttention, SoftmaxAttention
from laformer.models.attention import heads_to_map
from laformer.models.rank import (
    CapturedAttention,
    attention_rank_report,
    capture_attention_inputs,
    depthwise_conv_matrices,
    effective_attention_maps,
    energy_rank,
    global_attention_maps,
    numerical_rank,
)

SIDE = 16  # full-resolution grid of N = 256 tokens; the levels below have 64, 16 and 4
TINY_BLOCKS = 2 * (1 + 2 + 2) + 2 + 1  # encoders + decoders, latent, refinement


def _models(seed: int = 0) -> tuple[LAformer, LAformer]:
    """A float64 RELA model and a linear one with identical shared weights (so their q, k, v agree)."""
    torch.manual_seed(seed)
    rela = LAformer.from_preset("tiny", attention="rela").double().eval()
    linear = LAformer.from_preset("tiny", attention="linear").double().eval()
    state = {key: value for key, value in rela.state_dict().items() if ".spatial.dwconv." not in key}
    linear.load_state_dict(state, strict=True)
    return rela, linear


def _input(seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _ranks_by_layer(rows: list[dict]) -> dict[tuple[str, int], dict]:
    return {(row["layer"], row["head"]): row for row in rows}


def test_numerical_rank_on_known_matrices() -> None:
    diag = torch.diag(torch.tensor([3.0, 2.0, 1.0, 1e-9, 0.0], dtype=torch.float64))
    assert int(numerical_rank(diag)) == 3  # 1e-9 / 3 is below the default relative tolerance
    assert int(numerical_rank(diag, rtol=1e-12)) == 4
    gen = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(40, 5, generator=gen, dtype=torch.float64),
        torch.randn(5, 40, generator=gen, dtype=torch.float64),
    )
    stack = torch.stack([a @ b, torch.eye(40, dtype=torch.float64)])
    assert numerical_rank(stack).tolist() == [5, 40]


def test_energy_rank_counts_the_singular_values_that_carry_the_weight() -> None:
    singular = torch.tensor([[10.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    # 100 of 102 is 98 %: the first value alone misses 99 %, two values (101 / 102) reach it.
    assert energy_rank(singular).tolist() == [2, 4]
    assert energy_rank(singular, energy=0.98).tolist() == [1, 4]
    assert energy_rank(singular, energy=0.5).tolist() == [1, 2]
    assert energy_rank(singular, energy=1.0).tolist() == [3, 4]
    with pytest.raises(ValueError, match="energy"):
        energy_rank(singular, energy=0.0)


def test_a_weak_banded_term_lifts_the_numerical_rank_but_not_the_energy_rank() -> None:
    """Why both counts are reported: rank 2 plus a 1e-3 identity is full rank, yet two directions hold the weight."""
    factor = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lifted = factor @ factor.T + 1e-3 * torch.eye(64, dtype=torch.float64)  # singular values: 2 large, 62 of 1e-3
    singular = torch.linalg.svdvals(lifted)
    assert int(numerical_rank(lifted)) == 64
    assert int(energy_rank(singular)) <= 2


def test_capture_records_every_attention_module() -> None:
    rela, _ = _models()
    captured = capture_attention_inputs(rela, _input())
    assert len(captured) == TINY_BLOCKS
    assert all(isinstance(c.module, RankEnhancedLinearAttention) for c in captured)
    first = captured[0]
    assert first.name == "encoders.0.0.perception.spatial"
    assert first.size == (SIDE, SIDE)
    assert first.q.shape == first.k.shape == (1, 1, SIDE * SIDE, 8)  # width 16, q/k half as wide, 1 head
    assert {c.size for c in captured} == {(16, 16), (8, 8), (4, 4), (2, 2)}
    assert not any(module._forward_pre_hooks for module in rela.modules())  # hooks removed afterwards


def test_depthwise_conv_matrices_reproduce_the_convolution() -> None:
    conv = torch.nn.Conv2d(3, 3, 5, padding=2, groups=3, bias=False).double()
    x = torch.randn(1, 3, 6, 7, dtype=torch.float64)
    mats = depthwise_conv_matrices(conv, (6, 7))
    assert mats.shape == (3, 42, 42)
    expected = conv(x).reshape(3, 42)
    actual = torch.einsum("cij,cj->ci", mats, x.reshape(3, 42))
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_linear_attention_map_rank_is_bounded_by_head_dim() -> None:
    _, linear = _models()
    rows = attention_rank_report(linear, _input())
    assert len(rows) == sum(m.num_heads for m in linear.modules() if isinstance(m, LinearAttention))
    for row in rows:
        assert row["attention"] == "LinearAttention"
        assert row["rank_max"] <= min(row["head_dim"], row["tokens"]), row
        assert row["rank_min"] == row["rank_max"]  # one map shared by every channel of the head
    full_res = [row for row in rows if row["tokens"] == SIDE * SIDE]
    assert full_res and all(row["rank_max"] == row["head_dim"] == 8 for row in full_res)


def test_rela_map_rank_far_exceeds_linear_on_the_same_input() -> None:
    rela, linear = _models()
    x = _input()
    rela_rows = _ranks_by_layer(attention_rank_report(rela, x))
    linear_rows = _ranks_by_layer(attention_rank_report(linear, x))
    assert rela_rows.keys() == linear_rows.keys()

    # The first block sees identical q, k, v in both models: the only difference is the depthwise term.
    first_rela, first_linear = rela_rows[("encoders.0.0", 0)], linear_rows[("encoders.0.0", 0)]
    assert first_linear["rank_max"] <= first_linear["head_dim"]
    assert first_rela["rank_min"] >= 4 * first_rela["head_dim"]
    assert first_rela["rank_min"] >= 0.9 * first_rela["tokens"]  # close to full rank N = 256

    for key, row in rela_rows.items():
        if row["tokens"] > row["head_dim"]:
            assert row["rank_min"] > linear_rows[key]["rank_max"], key


def test_rela_with_zero_depthwise_has_linear_rank() -> None:
    rela, _ = _models()
    with torch.no_grad():
        for module in rela.modules():
            if isinstance(module, RankEnhancedLinearAttention):
                module.dwconv.weight.zero_()
    for row in attention_rank_report(rela, _input()):
        assert row["rank_max"] <= row["head_dim"], row


def _capture_values_and_outputs(model: torch.nn.Module) -> tuple[dict[str, tuple], list]:
    records: dict[str, tuple] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (LinearAttention, SoftmaxAttention)):

            def hook(mod, args, output, name=name):
                records[name] = (args[2].detach(), output.detach())

            handles.append(module.register_forward_hook(hook))
    return records, handles


@pytest.mark.parametrize("attention", ["linear", "rela", "softmax"])
def test_effective_map_times_values_reproduces_module_output(attention: str) -> None:
    """The analysed N x N maps are the computation: map @ V equals what each module actually returned."""
    torch.manual_seed(0)
    model = LAformer.from_preset("tiny", attention=attention).double().eval()
    records, handles = _capture_values_and_outputs(model)
    try:
        captured = capture_attention_inputs(model, _input())
    finally:
        for handle in handles:
            handle.remove()
    assert len(captured) == len(records) == TINY_BLOCKS

    for item in captured:
        v, output = records[item.name]
        v0 = v[0]  # (heads, N, d_v): the maps describe batch element 0
        heads, n, d_v = v0.shape
        maps = effective_attention_maps(item)
        assert maps.dtype == torch.float64
        assert maps.shape == (heads, d_v if attention == "rela" else 1, n, n)
        maps = maps.expand(heads, d_v, n, n)
        reconstructed = torch.einsum("hcnm,hmc->hnc", maps, v0)  # channel c of head h sees its own map
        torch.testing.assert_close(
            heads_to_map(reconstructed.unsqueeze(0), item.size), output[:1], rtol=1e-10, atol=1e-10
        )


def test_effective_linear_map_rows_are_normalised() -> None:
    _, linear = _models()
    item = capture_attention_inputs(linear, _input())[0]
    maps = effective_attention_maps(item)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum(-1), torch.ones_like(maps.sum(-1)), rtol=1e-5, atol=1e-5)


def test_softmax_map_is_full_rank_and_stochastic() -> None:
    torch.manual_seed(0)
    model = LAformer.from_preset("tiny", attention="softmax").double().eval()
    item = capture_attention_inputs(model, _input())[0]
    maps = effective_attention_maps(item)
    expected = torch.softmax(item.q[0] @ item.k[0].transpose(-1, -2) / item.q.shape[-1] ** 0.5, dim=-1)
    torch.testing.assert_close(maps[:, 0], expected.double(), rtol=1e-12, atol=1e-12)
    assert F.relu(-maps).sum() == 0
    assert int(numerical_rank(maps).min()) > 8


def test_global_map_norm_is_one_for_uniform_averaging_and_grows_with_concentration() -> None:
    """A row-stochastic map has Frobenius norm >= 1, with 1 exactly for uniform rows: the report's ``global_norm``."""
    module = LinearAttention(8, 1)
    q = torch.rand(1, 1, 64, 8, dtype=torch.float64)
    uniform = global_attention_maps(CapturedAttention("x", module, q, torch.zeros(1, 1, 64, 8), (8, 8)))
    assert float(torch.linalg.matrix_norm(uniform[0, 0])) == pytest.approx(1.0, abs=1e-5)
    peaked_keys = torch.zeros(1, 1, 64, 8, dtype=torch.float64)
    peaked_keys[..., 0, :] = 20.0  # ELU + 1: every query weighs this key 21 times each of the 63 others
    peaked = global_attention_maps(CapturedAttention("x", module, q, peaked_keys, (8, 8)))
    row_norm = (21.0**2 + 63) ** 0.5 / (21 + 63)  # each row is (21, 1, ..., 1) / 84
    assert float(torch.linalg.matrix_norm(peaked[0, 0])) == pytest.approx(64**0.5 * row_norm, rel=1e-5)


def test_report_norms_separate_the_global_map_from_relas_local_term() -> None:
    rela, linear = _models()
    rela_rows, linear_rows = attention_rank_report(rela, _input()), attention_rank_report(linear, _input())
    for rela_row, linear_row in zip(rela_rows, linear_rows):
        assert linear_row["local_norm"] == 0 and rela_row["local_norm"] > 0
        assert linear_row["global_norm"] >= 1 - 1e-6
        # Shared weights: the first block's global maps are the same in both variants.
    assert rela_rows[0]["global_norm"] == pytest.approx(linear_rows[0]["global_norm"], rel=1e-9)
