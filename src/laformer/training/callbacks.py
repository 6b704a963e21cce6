"""Callbacks: validation image grids, the network config stored inside every checkpoint, training throughput, and
the CPU heap policy of a training process."""

from __future__ import annotations

import contextlib
import resource
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from laformer.inference.checkpoint import NET_CONFIG_KEY
from laformer.inference.cpu_heap import reuse_freed_memory
from laformer.training.anchors import ClassicalAnchors
from laformer.visualize import Comparison, comparison_grid, save_comparison_figure


class ValidationImageGrid(L.Callback):
    """Keeps the first ``max_images`` validation images of each epoch and shows them as a grid.

    The grid goes to every logger that takes images (wandb, TensorBoard) and, on rank 0, to
    ``<save_dir>/val_grid.png`` with each image's input and restored PSNR. With a
    :class:`~laformer.training.anchors.ClassicalAnchors` callback in the trainer, each classical method scored on
    the image (NL-means, BM3D) gets a column between input and restored.
    """

    def __init__(self, max_images: int = 4, save_dir: str | None = None, max_side: int = 384) -> None:
        self.max_images, self.save_dir, self.max_side = max_images, save_dir, max_side
        self.rows: list[Comparison] = []
        self.sets: list[str] = []

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows, self.sets = [], []

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, *args
    ) -> None:
        if len(self.rows) >= self.max_images or not isinstance(outputs, dict):
            return
        self.sets.append(str(batch["set"][0]) if "set" in batch else "")
        self.rows.append(
            Comparison(
                name=str(batch["name"][0]),
                input=outputs["input"][0].detach().cpu(),
                restored=outputs["restored"][0].detach().cpu(),
                target=outputs["target"][0].detach().cpu(),
                input_psnr=float(outputs["input_psnr"][0]),
                restored_psnr=float(outputs["psnr"][0]),
            )
        )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.rows:
            return
        anchors = next((c for c in trainer.callbacks if isinstance(c, ClassicalAnchors)), None)
        labels: list[str] = []
        if anchors is not None:
            for row, set_name in zip(self.rows, self.sets):
                row.anchors = anchors.columns(set_name, row.name)
                labels = labels or [label for label, _, _ in row.anchors]
        grid = comparison_grid(self.rows, self.max_side)
        caption = " | ".join(["input", *labels, "restored", "target"])
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/images", [grid], step=trainer.global_step, caption=[caption])
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/images", grid, global_step=trainer.global_step)
        if self.save_dir and trainer.is_global_zero:
            title = f"step {trainer.global_step}: {caption}"
            if anchors is not None and anchors.skipped:
                title += " (skipped: " + ", ".join(sorted(anchors.skipped)) + ", not installed)"
            save_comparison_figure(self.rows, Path(self.save_dir) / "val_grid.png", title=title)


class StoreNetConfig(L.Callback):
    """Writes the network's config into each checkpoint, so ``--ckpt`` alone can rebuild the model."""

    KEY = NET_CONFIG_KEY  # owned by the loading door, which reads it back

    def __init__(self, net_config: dict[str, Any]) -> None:
        self.net_config = dict(net_config)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[self.KEY] = self.net_config


class TrainingThroughput(L.Callback):
    """Times the training steps alone (forward, backward, optimiser step), without data loading or validation,
    so runs at different precisions or with different attentions compare on compute speed.

    The first ``warmup`` batches (allocator and kernel warm-up) are timed but left out of the rates.
    """

    def __init__(self, warmup: int = 1) -> None:
        self.warmup = warmup
        self.durations: list[float] = []
        self.images: list[int] = []
        self._start = 0.0

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int):
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._sync(pl_module)
        self.durations.append(time.perf_counter() - self._start)
        self.images.append(int(batch["input"].shape[0]) if isinstance(batch, dict) else 0)

    def summary(self, world_size: int = 1) -> dict[str, float | int | None]:
        """Batches timed, their total seconds, and batches/s and images/s (all processes) after the warm-up."""
        skip = self.warmup if len(self.durations) > self.warmup else 0
        timed, images = sum(self.durations[skip:]), sum(self.images[skip:]) * world_size
        return {
            "batches": len(self.durations),
            "train_time_s": round(sum(self.durations), 3),
            "batches_per_s": round((len(self.durations) - skip) / timed, 4) if timed else None,
            "images_per_s": round(images / timed, 3) if timed else None,
        }


class CpuHeapReuse(L.Callback):
    """Keeps freed memory in the process while training on the CPU, where it fits (``laformer.inference.cpu_heap``).

    Every training step frees and reallocates the same activations; glibc serves the large ones with fresh ``mmap``
    pages, so the kernel faults and zeroes them again each step. On the 2-core AVX2 EPYC a demo step spent 130 ms of
    its 470 ms in the kernel that way; with freed blocks kept it spent 4 ms and took 370-410 ms, at the same peak
    memory (890 MiB). The decision waits for the first training step, whose peak (``ru_maxrss``) is the estimate:
    reuse goes on only where that peak, with the heap's fragmentation margin, fits the memory available and the CPU
    heap budget (``LAFORMER_CPU_HEAP_BUDGET_GB``, 4 GiB by default). glibc's defaults come back when fitting ends.
    Only the allocator's policy changes: the same numbers are computed.
    """

    def __init__(self) -> None:
        self.enabled: bool | None = None  # None: not decided yet
        self._policy = contextlib.ExitStack()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.enabled is not None:
            return
        self.enabled = False
        if pl_module.device.type != "cpu":
            return
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        self.enabled = self._policy.enter_context(reuse_freed_memory(peak))
        state = "kept in the process" if self.enabled else "returned to the system (glibc's default)"
        rank_zero_info(f"CPU heap: freed memory {state}; first step peaked at {peak / 2**30:.2f} GiB")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._policy.close()
            self.enabled = None
