"""The spatial attention variants against explicit N x N reference computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from laformer.models import (
    ATTENTIONS,
    GlobalPerception,
    LinearAttention,
    RankEnhancedLinearAttention,
    SoftmaxAttention,
    build_attention,
)
from laformer.models.attention import heads_to_map

EPS = 1e-6  # the implementation's guard on the normaliser
B, HEADS, H, W, D_QK, D_V = 2, 3, 5, 7, 4, 6
N = H * W


def _phi_reference(x: torch.Tensor, feature_map: str) -> torch.Tensor:
    if feature_map == "elu":  # ELU + 1, written out
        return torch.where(x > 0, x + 1.0, torch.exp(x))
    return torch.where(x > 0, x, torch.zeros_like(x))


def _linear_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, feature_map: str) -> torch.Tensor:
    """``diag(1/z) A V`` with the explicit N x N map ``A = phi(Q) phi(K)^T / N`` and ``z = A 1 + eps``.

    The 1/N scale cancels in the ratio except against eps, so it is kept to account for eps identically.
    """
    n = q.shape[-2]
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=v.dtype)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            fq, fk = _phi_reference(q[b, h], feature_map), _phi_reference(k[b, h], feature_map)
            attention_map = (fq[:, None, :] * fk[None, :, :]).sum(-1) / n  # (N, N): A_ij = phi(q_i).phi(k_j) / N
            z = attention_map.sum(dim=1, keepdim=True) + EPS
            out[b, h] = (attention_map / z) @ v[b, h]
    return out


def _softmax_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


def _qkv(dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, HEADS, N, D_QK, generator=gen, dtype=dtype)
    k = torch.randn(B, HEADS, N, D_QK, generator=gen, dtype=dtype)
    v = torch.randn(B, HEADS, N, D_V, generator=gen, dtype=dtype)
    return q, k, v


# --- linear attention ---------------------------------------------------------------------------


@pytest.mark.parametrize("feature_map", ["elu", "relu"])
def test_linear_term_equals_explicit_map(feature_map: str) -> None:
    q, k, v = _qkv()
    attn = LinearAttention(HEADS * D_V, HEADS, feature_map=feature_map)
    out = attn.linear_term(q, k, v)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _linear_reference(q, k, v, feature_map), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("feature_map", ["elu", "relu"])
def test_linear_forward_equals_explicit_map(feature_map: str) -> None:
    q, k, v = _qkv(seed=1)
    attn = build_attention("linear", HEADS * D_V, HEADS, feature_map=feature_map)
    out = attn(q, k, v, (H, W))
    assert out.shape == (B, HEADS * D_V, H, W)
    expected = heads_to_map(_linear_reference(q, k, v, feature_map), (H, W))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_relu_normaliser_eps_guards_dead_queries() -> None:
    """A query whose ReLU features are all zero has z = 0: the output row must be 0, not NaN."""
    q, k, v = _qkv(seed=2)
    q[0, 0, :3] = -q[0, 0, :3].abs() - 0.1  # three dead queries in head 0
    k[1, 2] = -k[1, 2].abs() - 0.1  # every key of a head dead: its whole map is zero
    attn = LinearAttention(HEADS * D_V, HEADS, feature_map="relu")
    out = attn.linear_term(q, k, v)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0, 0, :3], torch.zeros(3, D_V, dtype=out.dtype))
    assert torch.equal(out[1, 2], torch.zeros(N, D_V, dtype=out.dtype))
    torch.testing.assert_close(out, _linear_reference(q, k, v, "relu"), rtol=1e-12, atol=1e-12)


def test_linear_attention_rows_are_convex_combinations() -> None:
    """With ELU+1 the map is positive and rows sum to ~1: constant values pass through unchanged."""
    q, k, _ = _qkv(seed=3)
    v = torch.full((B, HEADS, N, D_V), 2.5, dtype=torch.float64)
    out = LinearAttention(HEADS * D_V, HEADS).linear_term(q, k, v)
    torch.testing.assert_close(out, v, rtol=1e-5, atol=1e-5)


def test_linear_term_keeps_half_precision_sums_from_overflowing() -> None:
    """Sums over ~1M pixels exceed float16's range (65504); the fp32 reductions must keep them finite."""
    n = 2**20
    q = torch.full((1, 1, n, 2), 1.0, dtype=torch.float16)
    k = torch.full((1, 1, n, 2), 1.0, dtype=torch.float16)
    v = torch.full((1, 1, n, 2), 3.0, dtype=torch.float16)
    out = LinearAttention(2, 1).linear_term(q, k, v)
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), torch.full((1, 1, n, 2), 3.0), rtol=1e-3, atol=1e-3)


def test_linear_term_under_bf16_autocast_matches_fp32() -> None:
    q, k, v = _qkv(dtype=torch.float32, seed=4)
    attn = LinearAttention(HEADS * D_V, HEADS)
    reference = attn.linear_term(q, k, v)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = attn.linear_term(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, rtol=0.05, atol=0.05)


# --- RELA ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_rela_is_linear_plus_depthwise_conv_on_values(kernel_size: int) -> None:
    q, k, v = _qkv(seed=5)
    rela = RankEnhancedLinearAttention(HEADS * D_V, HEADS, kernel_size=kernel_size).double()
    assert rela.dwconv.bias is None
    assert rela.dwconv.groups == HEADS * D_V
    out = rela(q, k, v, (H, W))
    v_map = v.permute(0, 1, 3, 2).reshape(B, HEADS * D_V, H, W)  # channel = head * D_V + e
    conv = F.conv2d(v_map, rela.dwconv.weight, padding=kernel_size // 2, groups=HEADS * D_V)
    expected = heads_to_map(_linear_reference(q, k, v, "elu"), (H, W)) + conv
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_rela_with_zero_depthwise_equals_linear_module() -> None:
    q, k, v = _qkv(seed=6)
    rela = RankEnhancedLinearAttention(HEADS * D_V, HEADS).double()
    linear = LinearAttention(HEADS * D_V, HEADS)
    assert not torch.allclose(rela(q, k, v, (H, W)), linear(q, k, v, (H, W)))
    with torch.no_grad():
        rela.dwconv.weight.zero_()
    assert torch.equal(rela(q, k, v, (H, W)), linear(q, k, v, (H, W)))


# --- softmax ------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_scores", [SoftmaxAttention.max_scores, B * HEADS * N * 4, B * HEADS * N * 7, 1])
def test_softmax_equals_matmul_reference(monkeypatch: pytest.MonkeyPatch, max_scores: int) -> None:
    q, k, v = _qkv(seed=7)
    attn = SoftmaxAttention(HEADS * D_V, HEADS)
    attn.max_scores = max_scores
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting_sdpa(query, *args, **kwargs):
        calls.append(query.shape[2])
        return sdpa(query, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting_sdpa)
    out = attn(q, k, v, (H, W))
    expected_chunk = max(1, max_scores // (B * HEADS * N))
    assert len(calls) == math.ceil(N / expected_chunk)
    assert max(calls) * B * HEADS * N <= max(max_scores, B * HEADS * N)  # never more scores than allowed
    assert sum(calls) == N
    assert out.shape == (B, HEADS * D_V, H, W)
    expected = heads_to_map(_softmax_reference(q, k, v), (H, W))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_softmax_chunking_kicks_in_and_class_default_is_untouched() -> None:
    q, k, v = _qkv(seed=8)
    attn = SoftmaxAttention(HEADS * D_V, HEADS)
    full = attn(q, k, v, (H, W))
    attn.max_scores = B * HEADS * N * 3  # chunks of 3 queries; 35 = 11 * 3 + 2
    chunked = attn(q, k, v, (H, W))
    assert SoftmaxAttention.max_scores == 2**26
    torch.testing.assert_close(chunked, full, rtol=1e-12, atol=1e-12)


# --- registry and GlobalPerception ---------------------------------------------------------------


def test_registry_and_build_attention() -> None:
    assert set(ATTENTIONS) == {"rela", "linear", "softmax"}
    for name, cls in ATTENTIONS.items():
        module = build_attention(name, 16, 2, feature_map="relu", kernel_size=3)
        assert type(module) is cls
    with pytest.raises(ValueError, match=r"unknown attention 'nope'.*\['linear', 'rela', 'softmax'\]"):
        build_attention("nope", 16, 2)
    with pytest.raises(ValueError, match=r"unknown feature_map 'tanh'.*\['elu', 'relu'\]"):
        build_attention("rela", 16, 2, feature_map="tanh")


@pytest.mark.parametrize("attention", ["rela", "linear", "softmax"])
def test_global_perception_head_shapes(attention: str) -> None:
    block = GlobalPerception(32, 4, attention=attention, qk_ratio=0.5)
    x = torch.rand(2, 32, 9, 11)
    q, k, v = block.qkv_heads(x)
    assert q.shape == k.shape == (2, 4, 99, 4)
    assert v.shape == (2, 4, 99, 8)
    y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_global_perception_rejects_indivisible_widths() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        GlobalPerception(30, 4)
    with pytest.raises(ValueError, match="not divisible"):
        GlobalPerception(16, 4, qk_ratio=0.125)  # query/key width 2 over 4 heads
