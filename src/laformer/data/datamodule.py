"""The LightningDataModule every restoration dataset builds on.

Subclasses say which datasets exist (``train_dataset``, ``val_dataset``, ``test_datasets``); this class
owns loaders, the global batch size, progressive-training stages and batch augmentation. Training order
and sample randomness are reproducible on resume and shard over DDP processes (``laformer.data.sampling``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from laformer.data.augment import random_dihedral
from laformer.data.sampling import EpochSampler, ResumableLoader, SeededItems, ShardSampler, augment_seed
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
        # Seeds the training order; saved in checkpoints (state_dict) so a resumed run keeps it.
        self.sampling_seed: int | None = None

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

    @property
    def rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def state_dict(self) -> dict[str, Any]:
        return {"sampling_seed": self.sampling_seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sampling_seed = state_dict.get("sampling_seed", self.sampling_seed)

    def _batches_done_this_epoch(self) -> int:
        """On a resume from a mid-epoch checkpoint, the batches of this epoch already trained on; else 0."""
        trainer = self.trainer
        if trainer is None or not trainer.fit_loop.restarting:
            return 0
        return trainer.fit_loop.epoch_loop.batch_progress.current.ready

    def training_seed(self) -> int:
        """The seed of the training order and of every sample's random draws, the same on every process.

        The run's seed (seed_everything sets torch's), broadcast from rank 0; kept in checkpoints (state_dict).
        """
        if self.sampling_seed is None:
            seed = torch.initial_seed() % 2**62
            self.sampling_seed = int(self.trainer.strategy.broadcast(seed)) if self.trainer is not None else seed
        return self.sampling_seed

    def _train_sampler(self, dataset: Dataset, batch_size: int) -> EpochSampler:
        self.training_seed()
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return EpochSampler(
            dataset, batch_size, self.sampling_seed, self.world_size, self.rank, epoch, self._batches_done_this_epoch()
        )

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        sampler: Sampler
        if shuffle:
            sampler, dataset = self._train_sampler(dataset, batch_size), SeededItems(dataset)
        else:
            if len(dataset) < self.world_size:
                name = getattr(dataset, "set_name", "evaluation")
                raise ValueError(
                    f"the {name} set has {len(dataset)} images, fewer than the {self.world_size} processes, and each "
                    "process scores at least one: evaluate on fewer devices (trainer.devices) or add images"
                )
            sampler = ShardSampler(dataset, self.world_size, self.rank)
        loader_class = ResumableLoader if shuffle else DataLoader
        return loader_class(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        self._apply_stage()
        batch = self.per_device_batch_size()
        if len(self._train) < self.batch_size:
            raise ValueError(
                f"the training set yields {len(self._train)} samples per epoch (images x data.repeat) but one "
                f"global batch takes {self.batch_size} ({batch} on each of {self.world_size} processes); "
                "raise data.repeat or lower data.batch_size"
            )
        return self._loader(self._train, batch, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        # Whole images of different sizes: one per batch.
        return self._loader(self._val, 1, shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(ds, 1, shuffle=False) for ds in self._tests.values()]

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        seeds = batch.pop("seed", None) if isinstance(batch, dict) else None
        if not (self.augment and self.trainer is not None and self.trainer.training):
            return batch
        if seeds is None:
            batch["input"], batch["target"] = random_dihedral(batch["input"], batch["target"])
            return batch
        # Each sample's flip/rotation is drawn from its own seed (offset from the one its crop and noise
        # used): a resumed run, or one on a different number of processes, augments as the original did.
        pairs = [
            random_dihedral(inp[None], tgt[None], generator=torch.Generator().manual_seed(augment_seed(int(seed))))
            for inp, tgt, seed in zip(batch["input"], batch["target"], seeds)
        ]
        batch["input"], batch["target"] = (torch.cat(parts) for parts in zip(*pairs))
        return batch
