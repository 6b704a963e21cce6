"""The LightningModule for every restoration task: a network, a loss, an optimiser, a scoring protocol.

It knows nothing of datasets: batches are ``{"input", "target", "name", "set"}`` dicts, and the scoring
protocol comes in from the config of whichever dataset is in use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from laformer.data.io import write_image
from laformer.inference import self_ensemble
from laformer.metrics import EvalProtocol, score
from laformer.training.losses import RestorationLoss


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf."""


class RestorationModule(L.LightningModule):
    """Args:
    net: the restoration network (instantiated from config; not pickled into hyperparameters).
    optimizer: ``params -> Optimizer`` (a Hydra partial); AdamW by default in the configs.
    scheduler: ``(optimizer, total_steps) -> LRScheduler`` partial, stepped every step; or None.
    loss: training loss; Charbonnier by default.
    protocol: how validation and test images are scored.
    self_ensemble: x8 geometric self-ensemble at test time.
    image_dir: when set, test restorations are written there as ``<set>/<name>.png``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        protocol: EvalProtocol | None = None,
        self_ensemble: bool = False,
        image_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "loss", "protocol"])
        self.net = net
        self.loss = loss if loss is not None else RestorationLoss()
        self.optimizer_factory = optimizer or (lambda params: torch.optim.AdamW(params, lr=3e-4))
        self.scheduler_factory = scheduler
        self.protocol = protocol or EvalProtocol()
        self.use_self_ensemble = self_ensemble
        self.image_dir = image_dir
        self.test_records: list[dict[str, Any]] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    # -- training -------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        restored = self.net(batch["input"])
        loss = self.loss(restored, batch["target"])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at step {self.global_step} (batch {batch_idx}); "
                "the last good checkpoint is kept in the run's checkpoints folder"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input"].shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- evaluation -----------------------------------------------------------------------------------
    def _fit_size_policy(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        inp, tgt = batch["input"], batch["target"]
        if self.protocol.size_policy == "crop":
            m = self.protocol.size_multiple
            h, w = (inp.shape[-2] // m) * m, (inp.shape[-1] // m) * m
            inp, tgt = inp[..., :h, :w], tgt[..., :h, :w]
        return inp, tgt

    def restore(self, x: Tensor, ensemble: bool = False) -> Tensor:
        """The network's restoration of a whole image (padding to its multiple happens inside the net)."""
        return self_ensemble(self.net, x) if ensemble else self.net(x)

    def _evaluate(self, batch: dict[str, Any], prefix: str, ensemble: bool) -> dict[str, Tensor]:
        inp, tgt = self._fit_size_policy(batch)
        restored = self.restore(inp, ensemble).clamp(0, 1)
        scores = score(restored, tgt, self.protocol)
        scores["input_psnr"] = score(inp.clamp(0, 1), tgt, self.protocol)["psnr"]
        n = inp.shape[0]
        for key, values in scores.items():
            self.log(f"{prefix}/{key}", values.mean(), batch_size=n, sync_dist=True, add_dataloader_idx=False)
        return {"input": inp, "restored": restored, "target": tgt, **scores}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "val", ensemble=False)

    def on_test_epoch_start(self) -> None:
        self.test_records = []

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        set_name = batch["set"][0]
        out = self._evaluate(batch, f"test/{set_name}", ensemble=self.use_self_ensemble)
        for i, name in enumerate(batch["name"]):
            self.test_records.append(
                {
                    "set": batch["set"][i],
                    "name": name,
                    "psnr": float(out["psnr"][i]),
                    "ssim": float(out["ssim"][i]),
                    "input_psnr": float(out["input_psnr"][i]),
                }
            )
            if self.image_dir:
                write_image(Path(self.image_dir) / batch["set"][i] / f"{name}.png", out["restored"][i])
        return out
