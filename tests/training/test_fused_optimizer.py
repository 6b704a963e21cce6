"""``module.fused_optimizer``: AdamW's fused kernel where nothing refuses it, the plain one where Lightning would
refuse gradient clipping (a mixed-precision plugin), with real Trainers doing real steps."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from laformer.models import LAformer
from laformer.training import RestorationModule


class _Pairs(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        return {"input": torch.rand(3, 32, 32, generator=g), "target": torch.rand(3, 32, 32, generator=g)}


def _fit(tmp_path, precision: str, fused_optimizer, **optimizer_options) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    module = RestorationModule(
        LAformer.from_preset("tiny", width=8),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, **optimizer_options),
        fused_optimizer=fused_optimizer,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        precision=precision,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, DataLoader(_Pairs(), batch_size=2))
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
