"""Sampling that a resumed or multi-process run can reproduce.

Training order and every random draw made while loading a training sample (crop, synthetic noise) are
functions of ``(seed, epoch, position in the epoch)``, not of a global random state: a run resumed from a
checkpoint taken mid-epoch skips the batches it already trained on and then sees exactly the batches the
uninterrupted run saw. Both samplers are ``DistributedSampler`` subclasses that shard by themselves, so
Lightning leaves them in place under DDP instead of swapping in its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

_SEED_BOUND = 2**62
_AUGMENT_OFFSET = 0x1F3D5B79A2C4E6F8  # separates a sample's augmentation stream from its loading stream


def augment_seed(sample_seed: int) -> int:
    """The seed of a training sample's batch augmentation, derived from its loading seed."""
    return (sample_seed ^ _AUGMENT_OFFSET) % _SEED_BOUND


class EpochSampler(DistributedSampler):
    """Training order: a permutation drawn from ``(seed, epoch)`` and a seed per position.

    Each global batch of ``batch_size * num_replicas`` positions is split into contiguous per-process
    chunks, so the samples of a global batch do not depend on the process count. Yields
    ``(index, sample_seed)`` for :class:`SeededItems`. ``skip_batches`` starts the epoch that many batches
    in (a mid-epoch resume); the length stays that of a whole epoch, as Lightning counts from there.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        epoch: int = 0,
        skip_batches: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.batches = len(dataset) // (batch_size * num_replicas)
        self.epoch = epoch
        self.skip_batches = skip_batches if 0 < skip_batches < self.batches else 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.skip_batches = epoch, 0

    def __len__(self) -> int:
        return self.batches * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % _SEED_BOUND)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        seeds = torch.randint(0, _SEED_BOUND, (len(order),), generator=generator).tolist()
        global_batch = self.batch_size * self.num_replicas
        for b in range(self.skip_batches, self.batches):
            start = b * global_batch + self.rank * self.batch_size
            for position in range(start, start + self.batch_size):
                yield order[position], seeds[position]


class ShardSampler(DistributedSampler):
    """Evaluation order: process ``rank`` takes items ``rank, rank + n, ...``, with no padding.

    Lightning's default pads an uneven set by repeating items, which biases the mean; here each image is
    scored once and the per-process sums are combined by ``self.log(..., sync_dist=True)``.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))


class SeededItems(Dataset):
    """Loads item ``index`` with torch's, NumPy's and Python's random state seeded by ``sample_seed``.

    Keys are ``(index, sample_seed)`` pairs from :class:`EpochSampler`; the seed rides along in the item as
    ``"seed"``. A plain integer key (a sampler Lightning substituted, e.g. for ``overfit_batches``) loads the
    item without seeding. The global random states are restored afterwards.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                # The CPU generator only: items are drawn on the CPU, and torch.manual_seed would also reseed every
                # accelerator's generator (outside what fork_rng restores) and queue a lazy call for each, with a
                # formatted stack: 0.8 ms an item, a quarter of the demo's data time.
                torch.random.default_generator.manual_seed(seed)
                np.random.seed(seed % 2**32)
                random.seed(seed)
                item = self.dataset[index]
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return {**item, "seed": seed}


class ResumableLoader(DataLoader):
    """A training DataLoader that tells Lightning it resumes mid-epoch correctly (no spurious warning).

    Nothing needs restoring here: the order comes from the sampler's seed and epoch, and the position from
    the trainer's own progress counters (see ``RestorationDataModule``).
    """

    def state_dict(self) -> dict[str, Any]:
        sampler = self.sampler
        return {"epoch": getattr(sampler, "epoch", None), "seed": getattr(sampler, "seed", None)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass
