"""``module.fused_optimizer``: AdamW's fused kernel where nothing refuses it, the plain one where Lightning would
refuse gradient clipping (a mixed-precision plugin), with real Trainers doing real steps."""

from __future__ import annotations

import functools

import pytest
import torch
from torch.utils.data import DataLoader

from laformer.models import LAformer
from laformer.training import RestorationModule
from tests.training.quiet import quiet_cpu_trainer, random_pairs


def _fit(tmp_path, precision: str, fused_optimizer, **optimizer_options) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    module = RestorationModule(
        LAformer.from_preset("tiny", width=8),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, **optimizer_options),
        fused_optimizer=fused_optimizer,
    )
    trainer = quiet_cpu_trainer(max_steps=2, precision=precision, gradient_clip_val=1.0, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(random_pairs(4), batch_size=2))
    assert trainer.global_step == 2
    return trainer.optimizers[0]


def test_auto_takes_the_fused_kernel_in_full_precision_with_clipping(tmp_path) -> None:
    assert _fit(tmp_path, "32-true", "auto").defaults["fused"] is True


def test_auto_keeps_the_plain_kernel_where_lightning_refuses_clipping(tmp_path) -> None:
    """bf16-mixed with gradient clipping: the fused kernel made Lightning raise at the first step."""
    assert not _fit(tmp_path, "bf16-mixed", "auto").defaults["fused"]


def test_insisting_on_the_fused_kernel_there_says_why_and_the_fix(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"fused_optimizer=true.*clipping.*fused_optimizer=auto"):
        _fit(tmp_path, "bf16-mixed", True)


def test_false_and_an_explicit_optimiser_choice_keep_the_plain_kernel(tmp_path) -> None:
    assert not _fit(tmp_path, "32-true", False).defaults["fused"]
    chosen = _fit(tmp_path, "32-true", "auto", foreach=True).defaults
    assert chosen["foreach"] is True and not chosen["fused"]


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"module\.fused_optimizer"):
        RestorationModule(LAformer.from_preset("tiny", width=8), fused_optimizer="yes")
