"""The restoration loss terms and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from laformer.training.losses import RestorationLoss
from laformer.training.schedules import warmup_cosine


def _pair(seed: int = 0, shape: tuple[int, ...] = (2, 3, 16, 20)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)


@pytest.mark.parametrize("eps", [1e-3, 0.1])
def test_charbonnier_is_the_mean_of_sqrt_d2_eps2(eps: float) -> None:
    pred, target = _pair()
    loss = RestorationLoss("charbonnier", eps=eps)(pred, target)
    d = (pred.double() - target.double()).numpy()
    expected = float(((d**2 + eps**2) ** 0.5).mean())
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert loss.ndim == 0


def test_charbonnier_of_equal_images_is_eps() -> None:
    pred, _ = _pair()
    assert RestorationLoss("charbonnier", eps=1e-3)(pred, pred.clone()).item() == pytest.approx(1e-3, rel=1e-5)


def test_l1_is_the_mean_absolute_difference() -> None:
    pred, target = _pair(1)
    loss = RestorationLoss("l1")(pred, target)
    expected = float((pred.double() - target.double()).abs().mean())
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert RestorationLoss("l1")(pred, pred.clone()).item() == 0.0


def test_losses_accept_half_precision_and_give_float32() -> None:
    pred, target = _pair(2)
    loss = RestorationLoss("l1")(pred.half(), target.half())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(float((pred.half().float() - target.half().float()).abs().mean()), rel=1e-6)


@pytest.mark.parametrize("pixel", ["charbonnier", "l1"])
def test_fft_term_adds_only_when_images_differ(pixel: str) -> None:
    pred, target = _pair(3)
    plain = RestorationLoss(pixel)(pred, target)
    with_fft = RestorationLoss(pixel, fft_weight=0.1)(pred, target)
    assert with_fft.item() > plain.item() + 1e-4
    # the added term is fft_weight * mean |re, im| of the rfft2 difference, computed independently with numpy
    spectrum = torch.fft.rfft2(pred.double()) - torch.fft.rfft2(target.double())
    expected_term = 0.1 * float(torch.cat([spectrum.real.abs().flatten(), spectrum.imag.abs().flatten()]).mean())
    assert with_fft.item() - plain.item() == pytest.approx(expected_term, rel=1e-4)
    same = pred.clone()
    assert RestorationLoss(pixel, fft_weight=0.1)(pred, same).item() == pytest.approx(
        RestorationLoss(pixel)(pred, same).item(), abs=1e-7
    )


def test_fft_term_sees_lost_high_frequencies() -> None:
    """A blurred prediction with the right mean: the FFT term grows with the lost detail."""
    _, target = _pair(4, (1, 1, 32, 32))
    blurred = torch.nn.functional.avg_pool2d(target, 3, stride=1, padding=1, count_include_pad=False)
    term = RestorationLoss("l1", fft_weight=1.0)(blurred, target) - RestorationLoss("l1")(blurred, target)
    assert term.item() > 0.01


def test_loss_is_differentiable() -> None:
    pred, target = _pair(5)
    pred.requires_grad_(True)
    RestorationLoss("charbonnier", fft_weight=0.05)(pred, target).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["l2", "mse", "Charbonnier", ""])
def test_unknown_pixel_loss_raises(name: str) -> None:
    with pytest.raises(ValueError, match="unknown pixel loss"):
        RestorationLoss(name)


# -- warmup_cosine -----------------------------------------------------------------------------------------

BASE_LR = 2e-3


def _lrs(total: int, warmup: int, min_ratio: float = 1e-3, extra: int = 0) -> list[float]:
    """Learning rate in force at steps 0 .. total + extra - 1, stepping a real optimizer."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=BASE_LR)
    scheduler = warmup_cosine(optimizer, total_steps=total, warmup_steps=warmup, min_lr_ratio=min_ratio)
    lrs = []
    for _ in range(total + extra + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_rises_linearly_to_the_base_rate() -> None:
    warmup = 10
    lrs = _lrs(total=100, warmup=warmup)
    for step in range(warmup):
        assert lrs[step] == pytest.approx(BASE_LR * (step + 1) / warmup, rel=1e-9)
    increments = [b - a for a, b in itertools.pairwise(lrs[:warmup])]
    assert all(inc == pytest.approx(BASE_LR / warmup, rel=1e-6) for inc in increments)
    assert 0 < lrs[0] < BASE_LR / 5
    assert max(lrs) == pytest.approx(BASE_LR, rel=1e-12)
    assert lrs[warmup] == pytest.approx(BASE_LR, rel=1e-12)


@pytest.mark.parametrize(("total", "warmup", "ratio"), [(100, 10, 1e-3), (50, 0, 0.1), (37, 5, 0.0)])
def test_cosine_decays_monotonically_to_the_minimum(total: int, warmup: int, ratio: float) -> None:
    lrs = _lrs(total=total, warmup=warmup, min_ratio=ratio, extra=5)
    assert lrs[warmup] == pytest.approx(BASE_LR, rel=1e-12)
    after = lrs[warmup : total + 1]
    assert all(b < a for a, b in itertools.pairwise(after))  # strictly decreasing
    assert lrs[total] == pytest.approx(ratio * BASE_LR, abs=1e-15)
    # it stays at the floor past the planned end
    assert all(lr == pytest.approx(ratio * BASE_LR, abs=1e-15) for lr in lrs[total:])
    # the midpoint of the decay is halfway between the base rate and the floor
    if (total - warmup) % 2 == 0:
        mid = warmup + (total - warmup) // 2
        assert lrs[mid] == pytest.approx(BASE_LR * (ratio + (1 - ratio) * 0.5), rel=1e-9)


def test_cosine_formula_at_every_step() -> None:
    total, warmup, ratio = 40, 4, 0.05
    lrs = _lrs(total=total, warmup=warmup, min_ratio=ratio)
    for step in range(warmup, total + 1):
        progress = (step - warmup) / (total - warmup)
        expected = BASE_LR * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
        assert lrs[step] == pytest.approx(expected, rel=1e-9)


def test_degenerate_schedules() -> None:
    # warm-up as long as training: a linear rise to the base rate, the floor after the end
    # (not asserted: exactly at total_steps the schedule still gives the base rate when warmup == total)
    lrs = _lrs(total=5, warmup=5, min_ratio=0.1, extra=3)
    assert lrs[:5] == pytest.approx([BASE_LR * k / 5 for k in range(1, 6)])
    assert lrs[6:] == pytest.approx([0.1 * BASE_LR] * 3)
    # zero total steps does not divide by zero
    lrs = _lrs(total=0, warmup=0, min_ratio=0.2, extra=2)
    assert all(math.isfinite(lr) for lr in lrs)


def test_hold_keeps_the_base_rate_then_decays_over_the_rest() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=BASE_LR)
    total, warmup, hold, ratio = 60, 5, 15, 0.01
    scheduler = warmup_cosine(optimizer, total_steps=total, warmup_steps=warmup, hold_steps=hold, min_lr_ratio=ratio)
    lrs = []
    for _ in range(total + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[warmup - 1] == pytest.approx(BASE_LR, rel=1e-12)
    assert all(lr == pytest.approx(BASE_LR, rel=1e-12) for lr in lrs[warmup : warmup + hold + 1])
    assert lrs[warmup + hold + 1] < BASE_LR
    mid = warmup + hold + (total - warmup - hold) // 2
    assert lrs[mid] == pytest.approx(BASE_LR * (ratio + (1 - ratio) * 0.5), rel=1e-9)
    assert lrs[total] == pytest.approx(ratio * BASE_LR, abs=1e-15)
