"""The LightningModule for every restoration task: a network, a loss, an optimiser, a scoring protocol.

It knows nothing of datasets: batches are ``{"input", "target", "name", "set"}`` dicts, and the scoring
protocol comes in from the config of whichever dataset is in use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torch.optim import Optimizer

from laformer.data.io import write_image
from laformer.inference import self_ensemble
from laformer.metrics import EvalProtocol, apply_size_policy, score
from laformer.training.losses import RestorationLoss


class NonFiniteLossError(FloatingPointError):
    """The training loss (or its gradients, or the weights about to be saved) became NaN or Inf."""


NONFINITE_POLICIES = ("stop", "skip")
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
FUSED_CHOICES = ("auto", True, False)


class RestorationModule(L.LightningModule):
    """Args:
    net: the restoration network (instantiated from config; not pickled into hyperparameters).
    optimizer: ``params -> Optimizer`` (a Hydra partial); AdamW by default in the configs.
    scheduler: ``(optimizer, total_steps) -> LRScheduler`` partial, stepped every step; or None.
    loss: training loss; Charbonnier by default.
    protocol: how validation and test images are scored.
    self_ensemble: x8 geometric self-ensemble at test time.
    image_dir: when set, test restorations are written there as ``<set>/<name>.png``.
    nonfinite: what a NaN or Inf training loss or gradient does: ``stop`` raises :class:`NonFiniteLossError`
        naming the step (the last good checkpoint stays); ``skip`` leaves weights and optimiser state
        untouched for that batch, counts it (``train/skipped_nonfinite``) and goes on. The batch still counts
        toward ``max_steps``.
    nonfinite_patience: with ``skip``, this many faulty batches in a row stop the run anyway.
    memory_format: ``contiguous`` or ``channels_last`` for the network and its training batches. A speed
        option only: the losses agree to float rounding (``experiments/throughput`` measures both).
    compile: train through ``torch.compile(net)`` (speed only; checkpoints keep the plain network's keys).
    fused_optimizer: the optimiser's fused kernel (AdamW, Adam, SGD: one call updates every parameter, x1.11 training
        images/s on the 2-core AVX2 EPYC, the same update to float rounding). ``auto`` takes it where the optimiser
        has one, the optimiser config names neither ``fused`` nor ``foreach``, and nothing refuses it: Lightning
        refuses gradient clipping with a fused optimiser under a mixed-precision plugin (``bf16-mixed``,
        ``16-mixed``), so such runs keep the plain kernel. ``true`` insists (and says why it cannot), ``false``
        never.
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
        nonfinite: str = "stop",
        nonfinite_patience: int = 20,
        memory_format: str = "contiguous",
        compile: bool = False,
        fused_optimizer: bool | str = "auto",
    ) -> None:
        super().__init__()
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"module.nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(f"module.memory_format must be one of {sorted(MEMORY_FORMATS)}, got {memory_format!r}")
        if fused_optimizer not in FUSED_CHOICES:
            raise ValueError(f"module.fused_optimizer must be auto, true or false, got {fused_optimizer!r}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "loss", "protocol"])
        self.net = net
        self.loss = loss if loss is not None else RestorationLoss()
        self.optimizer_factory = optimizer or (lambda params: torch.optim.AdamW(params, lr=3e-4))
        self.scheduler_factory = scheduler
        self.protocol = protocol or EvalProtocol()
        self.use_self_ensemble = self_ensemble
        self.image_dir = image_dir
        self.test_records: list[dict[str, Any]] = []
        self.nonfinite, self.nonfinite_patience = nonfinite, nonfinite_patience
        self.skipped_nonfinite = 0
        self._consecutive_skips = 0
        self._nonfinite_loss: float | None = None
        self.memory_format = MEMORY_FORMATS[memory_format]
        self.compile_net = compile
        self._train_forward: Callable[[Tensor], Tensor] | None = None  # not a submodule: state_dict keys stay
        self.fused_optimizer = fused_optimizer

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    # -- training -------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # Before the strategy wraps the model: DDP lays its gradient buckets out like the parameters at wrapping
        # time, so converting later (on_fit_start) made it warn "Grad strides do not match bucket view strides".
        if self.memory_format is torch.channels_last:
            self.net.to(memory_format=torch.channels_last)

    def on_fit_start(self) -> None:
        if self.compile_net and self._train_forward is None:
            self._train_forward = torch.compile(self.net)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        inputs = batch["input"].contiguous(memory_format=self.memory_format)
        forward = self._train_forward if self._train_forward is not None else self.net
        restored = forward(inputs)
        loss = self.loss(restored, batch["target"])
        # A fault is acted on in on_before_optimizer_step, once gradients exist: under DDP they are averaged
        # over all processes, so every process sees a fault on any one of them and all stop or skip together.
        if torch.isfinite(loss):
            self.log("train/loss", loss, prog_bar=True, batch_size=batch["input"].shape[0])
        else:
            self._nonfinite_loss = loss.item()
        return loss

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        # fp16's GradScaler expects inf gradients now and then and skips those steps itself.
        scaled = getattr(self.trainer.precision_plugin, "scaler", None) is not None
        finite_grads = torch.stack([p.grad.isfinite().all() for p in params]).all() if params else True
        grads_bad = not scaled and not bool(finite_grads)
        loss_value, self._nonfinite_loss = self._nonfinite_loss, None
        if loss_value is None and not grads_bad:
            self._consecutive_skips = 0
            return
        fault = f"training loss is {loss_value}" if loss_value is not None else "training gradients are not finite"
        folder = getattr(self.trainer.checkpoint_callback, "dirpath", None) or "the run's checkpoints folder"
        if self.nonfinite == "stop":
            raise NonFiniteLossError(
                f"{fault} at step {self.global_step}; the run stops and the last good checkpoint stays in {folder}. "
                "module.nonfinite=skip skips such batches instead"
            )
        self.skipped_nonfinite += 1
        self._consecutive_skips += 1
        if self._consecutive_skips > self.nonfinite_patience:
            raise NonFiniteLossError(
                f"{fault} at step {self.global_step}: {self._consecutive_skips} faulty batches in a row, more than "
                f"module.nonfinite_patience={self.nonfinite_patience}; the last good checkpoint stays in {folder}"
            )
        for p in params:
            p.grad = None  # the optimiser leaves parameters without a gradient, and their state, untouched
        rank_zero_warn(f"{fault} at step {self.global_step}: batch skipped ({self.skipped_nonfinite} so far)")

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.log("train/skipped_nonfinite", float(self.skipped_nonfinite), batch_size=batch["input"].shape[0])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bad = [name for name, p in self.named_parameters() if not p.isfinite().all()]
        if bad:
            raise NonFiniteLossError(
                f"weights {bad[:3]} are not finite at step {self.global_step}; refusing to save them over the "
                "last good checkpoint"
            )
        checkpoint["laformer_skipped_nonfinite"] = self.skipped_nonfinite

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_nonfinite = int(checkpoint.get("laformer_skipped_nonfinite", 0))

    def _kernel_chosen_by_config(self) -> bool:
        """Whether the optimiser config names ``fused`` or ``foreach`` itself (then it is left as it is)."""
        return bool(set(getattr(self.optimizer_factory, "keywords", None) or {}) & {"fused", "foreach"})

    def _fused_kernel_refusal(self) -> str | None:
        """Why the optimiser cannot take its fused kernel in this run, or None when it can."""
        target = getattr(self.optimizer_factory, "func", self.optimizer_factory)
        try:
            takes_fused = "fused" in inspect.signature(target).parameters
        except (TypeError, ValueError):
            takes_fused = False
        if not takes_fused:
            return f"{getattr(target, '__name__', target)!s} has no fused kernel"
        trainer = self._trainer
        clip = trainer is not None and bool(trainer.gradient_clip_val)
        if clip and isinstance(trainer.precision_plugin, MixedPrecision):
            return "Lightning refuses gradient clipping with a fused optimiser under mixed precision"
        if any(not p.is_floating_point() or p.device.type not in ("cpu", "cuda") for p in self.parameters()):
            return "a parameter is not a floating-point tensor on the CPU or a CUDA GPU"
        return None

    def configure_optimizers(self) -> Any:
        keywords: dict[str, bool] = {}
        if self.fused_optimizer is not False and not self._kernel_chosen_by_config():
            refusal = self._fused_kernel_refusal()
            if refusal is None:
                keywords["fused"] = True
            elif self.fused_optimizer is True:
                raise ValueError(f"module.fused_optimizer=true, but {refusal}; set module.fused_optimizer=auto")
            else:
                rank_zero_info(f"optimiser: plain kernel ({refusal})")
        optimizer = self.optimizer_factory(self.parameters(), **keywords)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- evaluation -----------------------------------------------------------------------------------
    def protocol_for(self, set_name: str | None) -> EvalProtocol:
        """The protocol of one test set: the data module may declare one per set (``protocols``, e.g. RealBlur's
        alignment among GoPro's test sets); any other set is scored by ``self.protocol``."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        table = getattr(datamodule, "protocols", None) or {}
        return table.get(set_name, self.protocol)

    def restore(self, x: Tensor, ensemble: bool = False) -> Tensor:
        """The network's restoration of a whole image (padding to its multiple happens inside the net)."""
        return self_ensemble(self.net, x) if ensemble else self.net(x)

    def _evaluate(
        self, batch: dict[str, Any], prefix: str, ensemble: bool, protocol: EvalProtocol | None = None
    ) -> dict[str, Tensor]:
        protocol = protocol or self.protocol
        inp, tgt = apply_size_policy(batch["input"], batch["target"], protocol)
        restored = self.restore(inp, ensemble).clamp(0, 1)
        scores = score(restored, tgt, protocol)
        scores["input_psnr"] = score(inp.clamp(0, 1), tgt, protocol)["psnr"]
        # A float count: at the epoch's end Lightning averages each process's image count in the count's own
        # type, and an integer one truncates when processes scored unequal numbers (3 images on 2: 1.5 -> 1).
        n = float(inp.shape[0])
        for key, values in scores.items():
            self.log(f"{prefix}/{key}", values.mean(), batch_size=n, sync_dist=True, add_dataloader_idx=False)
        return {"input": inp, "restored": restored, "target": tgt, **scores}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self._evaluate(batch, "val", ensemble=False)

    def on_test_epoch_start(self) -> None:
        self.test_records = []

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        set_name = batch["set"][0]
        out = self._evaluate(
            batch, f"test/{set_name}", ensemble=self.use_self_ensemble, protocol=self.protocol_for(set_name)
        )
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

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Restorations of inputs without ground truth (DND), for the data module to write in its layout."""
        restored = self.restore(batch["input"], self.use_self_ensemble).clamp(0, 1)
        return {"restored": restored.cpu(), "name": list(batch["name"]), "set": list(batch["set"])}
