"""Geometric self-ensemble: exact for equivariant restorations, an average of 8 different views otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from laformer.inference import self_ensemble


def _image(h: int = 12, w: int = 12, b: int = 2, c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("shape", [(12, 12), (7, 13), (16, 5)])
def test_identity_is_kept(shape: tuple[int, int]) -> None:
    x = _image(*shape)
    out = self_ensemble(lambda t: t, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("shape", [(12, 12), (9, 14)])
def test_pointwise_function_is_unchanged(shape: tuple[int, int]) -> None:
    x = _image(*shape)

    def restore(t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(3 * t) ** 2 + t.sqrt()

    torch.testing.assert_close(self_ensemble(restore, x), restore(x), atol=1e-12, rtol=0)


def test_isotropic_filter_is_unchanged() -> None:
    """A symmetric 3 x 3 filter commutes with every flip and rotation (the kernel is dihedral-invariant)."""
    x = _image(10, 15, c=1)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=torch.float64) / 16

    def restore(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (1, 1, 1, 1), mode="reflect"), kernel.view(1, 1, 3, 3))

    torch.testing.assert_close(self_ensemble(restore, x), restore(x), atol=1e-12, rtol=0)


def test_each_transform_is_undone() -> None:
    """A restoration that marks one absolute corner (top-left of what it sees): the ensemble puts one eighth of
    the mark on each of the four corners of the original frame, twice each."""
    x = torch.zeros(1, 1, 6, 9, dtype=torch.float64)

    def mark_top_left(t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        out[..., 0, 0] += 8.0
        return out

    out = self_ensemble(mark_top_left, x)
    expected = torch.zeros_like(x)
    for r, c in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        expected[..., r, c] = 2.0
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("shape", [(8, 8), (6, 11)])
def test_non_equivariant_function_differs(shape: tuple[int, int]) -> None:
    x = _image(*shape)

    def shift(t: torch.Tensor) -> torch.Tensor:
        return torch.roll(t, shifts=1, dims=-1)

    out = self_ensemble(shift, x)
    assert out.shape == x.shape
    assert not torch.allclose(out, shift(x), atol=1e-3)
    # the average of a roll right, a roll left, a roll down and a roll up (each twice)
    expected = (torch.roll(x, 1, -1) + torch.roll(x, -1, -1) + torch.roll(x, 1, -2) + torch.roll(x, -1, -2)) / 4
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_non_square_inputs_reach_the_restoration_in_both_orientations() -> None:
    x = _image(5, 8)
    seen = []

    def record(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return t * 2

    out = self_ensemble(record, x)
    torch.testing.assert_close(out, x * 2)
    assert sorted(seen) == sorted([(5, 8)] * 4 + [(8, 5)] * 4)


def test_works_with_a_module_and_keeps_dtype() -> None:
    net = torch.nn.Conv2d(3, 3, 1).double()
    x = _image(7, 10)
    with torch.no_grad():
        out = self_ensemble(net, x)
        torch.testing.assert_close(out, net(x))  # a 1 x 1 convolution is pointwise
    assert out.dtype == x.dtype
