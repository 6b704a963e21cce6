"""The LightningDataModule every restoration dataset builds on.

Subclasses say which datasets exist (``train_dataset``, ``val_dataset``, ``test_datasets``); this class
owns loaders, the global batch size, progressive-training stages and batch augmentation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from laformer.data.augment import random_dihedral
from laformer.metrics.protocol import EvalProtocol


class RestorationDataModule(L.LightningDataModule):
    """Args:
    batch_size: global training batch size, divided by the number of processes (world size).
    patch_size: side of the random training crops.
    num_workers / pin_memory: DataLoader settings.
    small_image: ``error`` (refuse, naming the file) or ``pad`` for images smaller than the patch.
    repeat: passes over the training images per epoch (epochs over a few large photos get short).
    augment: random flips and rotations of training batches.
    protocol: how this dataset's benchmarks are scored.
    progressive: optional stages ``[{steps, patch_size, batch_size}, ...]``; stage i runs until the global
        step passes the sum of ``steps`` so far (the last runs to the end). The train loader is rebuilt at
        every epoch (``reload_dataloaders_every_n_epochs=1``), so a stage starts at the next epoch boundary.
    """

    def __init__(
        self,
        batch_size: int = 8,
        patch_size: int = 128,
        num_workers: int = 2,
        pin_memory: bool = False,
        small_image: str = "error",
        repeat: int = 1,
        augment: bool = True,
        protocol: EvalProtocol | None = None,
        progressive: Sequence[Mapping[str, int]] | None = None,
    ) -> None:
        super().__init__()
        self.batch_size, self.patch_size = batch_size, patch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.small_image, self.repeat, self.augment = small_image, repeat, augment
        self.protocol = protocol or EvalProtocol()
        self.progressive = [dict(stage) for stage in progressive or []]
        for stage in self.progressive:
            if set(stage) != {"steps", "patch_size", "batch_size"}:
                raise ValueError(f"a progressive stage needs exactly steps, patch_size, batch_size; got {stage}")
        self._train: Dataset | None = None
        self._val: Dataset | None = None
        self._tests: dict[str, Dataset] | None = None

    # -- what subclasses provide -------------------------------------------------------------------
    def train_dataset(self) -> Dataset:
        raise NotImplementedError

    def val_dataset(self) -> Dataset:
        raise NotImplementedError

    def test_datasets(self) -> dict[str, Dataset]:
        """Benchmark name -> dataset; the default is the validation set."""
        return {"val": self.val_dataset()}

    # -- Lightning hooks ------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None):
            self._train = self.train_dataset()
        if stage in ("fit", "validate", None):
            self._val = self.val_dataset()
        if stage in ("test", None):
            self._tests = self.test_datasets()

    def stage_at(self, step: int) -> dict[str, int] | None:
        """The progressive stage in force at a global step, or None without a schedule."""
        end = 0
        for stage in self.progressive:
            end += stage["steps"]
            if step < end:
                return stage
        return self.progressive[-1] if self.progressive else None

    def _apply_stage(self) -> None:
        stage = self.stage_at(self.trainer.global_step if self.trainer is not None else 0)
        if stage and (stage["patch_size"], stage["batch_size"]) != (self.patch_size, self.batch_size):
            self.patch_size, self.batch_size = stage["patch_size"], stage["batch_size"]
            self._train = self.train_dataset()

    @property
    def world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def per_device_batch_size(self) -> int:
        if self.batch_size % self.world_size:
            raise ValueError(
                f"global batch_size {self.batch_size} is not divisible by the {self.world_size} processes; "
                "choose a multiple of the device count"
            )
        return self.batch_size // self.world_size

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        self._apply_stage()
        batch = self.per_device_batch_size()
        if len(self._train) < batch:
            raise ValueError(
                f"the training set yields {len(self._train)} samples per epoch (images x data.repeat) but each "
                f"process needs batches of {batch}; raise data.repeat or lower data.batch_size"
            )
        return self._loader(self._train, batch, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        # Whole images of different sizes: one per batch.
        return self._loader(self._val, 1, shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(ds, 1, shuffle=False) for ds in self._tests.values()]

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        if self.augment and self.trainer is not None and self.trainer.training:
            batch["input"], batch["target"] = random_dihedral(batch["input"], batch["target"])
        return batch
