"""Classical anchors beside the network's score: NL-means and BM3D on the very images the network restores.

:class:`ClassicalAnchors` takes, for each validation and test image of a Gaussian denoising set whose sigma is
known, the noisy input and the target the module scored (after its size policy), restores the input with each
classical method (``laformer.baselines``) and scores it under the same protocol. It logs
``val/<method>_psnr`` and ``val/<method>_ssim`` (``test/<set>/...`` in testing) next to the module's
``val/psnr`` and ``val/input_psnr``, so they reach every logger and ``summary.json``; it writes each image's
scores to ``<save_dir>/{val,test}_scores.csv``; and :class:`~laformer.training.callbacks.ValidationImageGrid`
shows each method as a column. Results are cached by exact input: a fixed, seeded set costs its anchors once.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from torch import Tensor

from laformer.baselines.classical import ANCHORS, AnchorCache, anchor_available
from laformer.data.degradations import known_noise_sigma
from laformer.metrics import EvalProtocol, score


def dataset_noise_sigma(dataset: Any) -> float | None:
    """The known Gaussian sigma (0-255) of an evaluation dataset's degradation, through wrappers; else None."""
    for _ in range(8):  # CenterCropped, Limited, ... hold the dataset they wrap as ``.dataset``
        degradation = getattr(dataset, "degradation", None)
        if degradation is not None:
            return known_noise_sigma(degradation)
        if not hasattr(dataset, "dataset"):
            return None
        dataset = dataset.dataset
    return None


class ClassicalAnchors(L.Callback):
    """Args:
    methods: classical denoisers to score, from ``laformer.baselines.ANCHORS`` (``nlmeans``, ``bm3d``);
        empty turns the callback off. A method whose package is missing is skipped with a note.
    cache_dir: folder that keeps computed anchors across runs; None keeps them in memory for this run only.
    save_dir: where ``val_scores.csv`` and ``test_scores.csv`` (one row per image) go; None writes none.
    """

    def __init__(
        self, methods: Sequence[str] = ("nlmeans", "bm3d"), cache_dir: str | None = None, save_dir: str | None = None
    ) -> None:
        self.methods = [str(m) for m in methods or ()]
        for method in self.methods:
            if method not in ANCHORS:
                raise ValueError(f"unknown classical anchor {method!r}; choose from {sorted(ANCHORS)}")
        self.skipped = {m: why for m in self.methods if (why := anchor_available(m)) is not None}
        self.active = [m for m in self.methods if m not in self.skipped]
        self.cache = AnchorCache(cache_dir)
        self.save_dir = save_dir
        # (set, image name) -> method -> (restored C x H x W, psnr): what the image grid shows
        self.results: dict[tuple[str, str], dict[str, tuple[Tensor, float]]] = {}
        self.records: dict[str, list[dict[str, Any]]] = {"val": [], "test": []}
        self.sigmas: dict[str, float] = {}
        self._warned = False

    # -- what others read --------------------------------------------------------------------------------
    def columns(self, set_name: str, name: str) -> list[tuple[str, Tensor, float]]:
        """(label, restored image, PSNR) of each method for one scored image, in ``methods`` order."""
        found = self.results.get((set_name, name), {})
        return [(ANCHORS[m][0], *found[m]) for m in self.active if m in found]

    def summary(self) -> dict[str, Any]:
        """For ``summary.json``: the methods scored and skipped (with why), the sigma per set, compute time."""
        return {
            "methods": list(self.active),
            "skipped": dict(self.skipped),
            "sigma": dict(self.sigmas),
            "compute_s": {m: round(s, 2) for m, s in self.cache.computed_s.items()},
        }

    # -- Lightning hooks ----------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.skipped and not self._warned:
            for method, why in self.skipped.items():
                rank_zero_warn(f"classical anchor {ANCHORS[method][0]} skipped: {why}")
            self._warned = True

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.records["val"] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.records["test"] = []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._score(trainer, pl_module, outputs, batch, "val", dataloader_idx)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._score(trainer, pl_module, outputs, batch, "test", dataloader_idx)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, "test")

    # -- the work -----------------------------------------------------------------------------------------
    def _sigma(self, trainer: L.Trainer, stage: str, dataloader_idx: int) -> float | None:
        loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
        if loaders is None:
            return None
        if not isinstance(loaders, (list, tuple)):
            loaders = [loaders]
        if dataloader_idx >= len(loaders):
            return None
        return dataset_noise_sigma(getattr(loaders[dataloader_idx], "dataset", None))

    def _score(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, stage: str, idx: int
    ) -> None:
        if not self.active or not isinstance(outputs, dict) or "input" not in outputs:
            return
        sigma = self._sigma(trainer, stage, idx)
        if sigma is None:
            return
        set_name = str(batch["set"][0])
        self.sigmas[set_name] = sigma
        if stage == "val":
            protocol, prefix = getattr(pl_module, "protocol", None) or EvalProtocol(), "val"
        else:
            protocol_for = getattr(pl_module, "protocol_for", None)
            protocol = protocol_for(set_name) if protocol_for else EvalProtocol()
            prefix = f"test/{set_name}"
        inputs, targets = outputs["input"].detach().cpu(), outputs["target"].detach().cpu()
        for i in range(inputs.shape[0]):
            name = str(batch["name"][i])
            record: dict[str, Any] = {
                "set": set_name,
                "name": name,
                "sigma": sigma,
                "input_psnr": float(outputs["input_psnr"][i]),
                "network_psnr": float(outputs["psnr"][i]),
                "network_ssim": float(outputs["ssim"][i]),
            }
            found = self.results.setdefault((set_name, name), {})
            for method in self.active:
                restored = self.cache.get(method, inputs[i], sigma).clamp(0, 1)
                scores = score(restored.unsqueeze(0), targets[i : i + 1], protocol)
                psnr, ssim = float(scores["psnr"][0]), float(scores["ssim"][0])
                found[method] = (restored, psnr)
                record[f"{method}_psnr"], record[f"{method}_ssim"] = psnr, ssim
                device = pl_module.device
                for metric, value in (("psnr", psnr), ("ssim", ssim)):
                    pl_module.log(
                        f"{prefix}/{method}_{metric}",
                        torch.tensor(value, device=device),
                        batch_size=1,
                        on_step=False,
                        on_epoch=True,
                        sync_dist=True,
                        add_dataloader_idx=False,
                    )
            self.records[stage].append(record)

    def _write(self, trainer: L.Trainer, stage: str) -> None:
        records = self.records[stage]
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[list[dict[str, Any]]] = [[] for _ in range(trainer.world_size)]
            torch.distributed.all_gather_object(gathered, records)
            records = [r for part in gathered for r in part]
        if not records or not self.save_dir or not trainer.is_global_zero:
            return
        path = Path(self.save_dir) / f"{stage}_scores.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = list(dict.fromkeys(key for r in records for key in r))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(records)
        if stage == "test":
            rank_zero_info(f"Per-image scores with classical anchors written to {path}")
