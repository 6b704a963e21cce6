"""One LightningDataModule for every registered dataset: ``data=NAME`` picks its spec from the registry.

The module finds each split on disk (layout detection), pairs files by name, checks them before any step
runs, and builds the training, validation and test sets the spec declares. Test sets of other benchmarks
(GoPro -> HIDE, RealBlur; Rain13K -> its five test sets) are found under ``test_roots[name]`` or the same root.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from laformer.data.checks import CHECK_MODES, SplitStats, check_images, check_pairs
from laformer.data.datamodule import RestorationDataModule
from laformer.data.datasets import (
    CenterCropped,
    DegradedImageDataset,
    InputOnlyDataset,
    Limited,
    PairedImageDataset,
)
from laformer.data.degradations import GaussianNoise
from laformer.data.io import write_image
from laformer.data.layouts import SplitContent
from laformer.data.locate import DatasetNotFoundError, Found, locate
from laformer.data.mat_readers import write_dnd_submission
from laformer.data.registry import DatasetSpec, get_spec
from laformer.data.store import PackedPairDataset, PixelPolicy, StoreError, check_store, is_remote
from laformer.metrics.protocol import EvalProtocol

# What degrades ground-truth-only validation and test sets (``eval_degradation``).
EVAL_DEGRADATIONS = ("gaussian", "train")
# Where training pairs are read from (``store``): the image files, a packed store read by index, or the packed
# store streamed through LitData (sharded per rank, shuffled per epoch, its position kept in checkpoints).
STORES = ("files", "packed", "streaming")


class BenchmarkDataModule(RestorationDataModule):
    """Args (besides ``RestorationDataModule``'s):
    name: registry name (``gopro``, ``sidd``, ...); ``laformer-data list`` shows them all.
    root: the dataset's folder, or a folder holding it under one of its usual names (``GoPro``, ``GOPRO_Large``).
    test_sets: benchmarks to score at test time; default: the spec's task test sets.
    test_roots: ``{benchmark: folder}`` for test sets kept elsewhere; otherwise they are looked for under ``root``.
    val_limit: validate on the first N validation images only (declared, not hidden).
    channels: 3 or 1 converts every image; None keeps what the files hold.
    dual_pixel: DPDD: stack the left and right dual-pixel views as a 6-channel input.
    degradation: ``(clean_batch, generator) -> degraded`` for ground-truth-only training sets (DFWB).
    val_sigma / test_sigmas: Gaussian noise levels (0-255 scale) of ground-truth-only validation and test sets.
    eval_degradation: what degrades ground-truth-only validation and test sets: ``gaussian`` (default) is
        Gaussian noise at ``val_sigma`` / ``test_sigmas``, one test set per sigma (``CBSD68-s50``); ``train`` is
        the training ``degradation`` itself, seeded per image, one test set per benchmark (``CBSD68``): for a
        task that is not Gaussian noise (e.g. ``data/degradation=lowlight``).
    seed: first per-image seed of synthetic test degradations (image i uses seed + i).
    strict_pairs: unmatched inputs or targets raise (True) or are skipped with a warning (False).
    check: ``header`` (sizes and readable headers, at setup), ``full`` (decode every image), ``none``.
    store: where training pairs come from: ``files`` (the images under ``root``), ``packed`` (the store at
        ``store_path``, written by ``laformer-data pack``: the same items as the files, without decoding PNGs) or
        ``streaming`` (that store through LitData's StreamingDataset/StreamingDataLoader; ``store_path`` may be an
        ``s3://`` URL). Validation and test sets are always read from the files.
    store_path: the packed store's folder (or URL, for ``streaming``).
    store_cache: where LitData keeps chunks streamed from a URL (its default cache when None).
    """

    def __init__(
        self,
        name: str,
        root: str,
        test_sets: Sequence[str] | None = None,
        test_roots: Mapping[str, str] | None = None,
        val_limit: int | None = None,
        channels: int | None = None,
        dual_pixel: bool = False,
        degradation: Callable[..., Tensor] | None = None,
        val_sigma: float = 25.0,
        test_sigmas: Sequence[float] = (15.0, 25.0, 50.0),
        eval_degradation: str = "gaussian",
        seed: int = 0,
        strict_pairs: bool = True,
        check: str = "header",
        store: str = "files",
        store_path: str | None = None,
        store_cache: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.spec: DatasetSpec = get_spec(name)
        if kwargs.get("protocol") is None:
            kwargs["protocol"] = self.spec.protocol
        super().__init__(**kwargs)
        if check not in CHECK_MODES:
            raise ValueError(f"data.check must be one of {CHECK_MODES}, got {check!r}")
        self.root = Path(str(root)).expanduser()
        self.test_sets = tuple(test_sets) if test_sets is not None else (self.spec.tests or (self.spec.name,))
        for benchmark in self.test_sets:
            get_spec(benchmark)  # fail now on a typo, naming the known benchmarks
        self.test_roots = {k: v for k, v in dict(test_roots or {}).items() if v}
        self.val_limit, self.channels, self.dual_pixel = val_limit, channels, dual_pixel
        self.degradation, self.val_sigma = degradation, val_sigma
        self.test_sigmas, self.seed = tuple(float(s) for s in test_sigmas), seed
        if eval_degradation not in EVAL_DEGRADATIONS:
            raise ValueError(f"data.eval_degradation must be one of {EVAL_DEGRADATIONS}, got {eval_degradation!r}")
        if eval_degradation == "train" and degradation is None:
            raise ValueError("data.eval_degradation=train needs a training data.degradation to apply")
        self.eval_degradation = eval_degradation
        self.strict_pairs, self.check = strict_pairs, check
        if store not in STORES:
            raise ValueError(f"data.store must be one of {STORES}, got {store!r}")
        if store != "files" and not store_path:
            raise ValueError(
                f"data.store={store} needs data.store_path: the folder laformer-data pack wrote "
                f"(laformer-data pack data={name} data.root=... --out FOLDER)"
            )
        if store == "packed" and is_remote(str(store_path)):
            raise ValueError(
                f"data.store=packed reads a local folder, not {store_path}; stream a URL with data.store=streaming"
            )
        if store != "files" and self.spec.kind != "paired":
            raise ValueError(f"{self.spec.title} holds no stored pairs to pack; data.store={store} is for paired sets")
        self.store = store
        self.store_path = str(store_path).strip() if store_path else None
        self.store_cache = store_cache
        self._found: dict[tuple[str, str], tuple[Found, SplitContent]] = {}
        self._checked: dict[tuple[str, str], SplitStats] = {}
        self._predict: Dataset | None = None

    # -- finding and checking data ------------------------------------------------------------------------
    @property
    def prediction_only(self) -> bool:
        """No ground truth (DND): ``laformer-eval`` predicts and writes the submission instead of scoring."""
        return self.spec.kind == "predict"

    @property
    def max_patch(self) -> int:
        return max([self.patch_size, *(stage["patch_size"] for stage in self.progressive)])

    def roots_for(self, benchmark: str) -> list[Path]:
        extra = self.test_roots.get(benchmark) if benchmark != self.spec.name else None
        return [Path(str(extra)).expanduser(), self.root] if extra else [self.root]

    def content(self, benchmark: str, split: str) -> tuple[Found, SplitContent]:
        """Where ``benchmark``'s ``split`` is on disk and what it holds (pairs matched by name); cached."""
        key = (benchmark, split)
        if key not in self._found:
            spec = get_spec(benchmark)
            found = locate(spec, split, self.roots_for(benchmark))
            dual = self.dual_pixel and benchmark == self.spec.name
            self._found[key] = (found, found.source.collect(found.base, self.strict_pairs, dual))
        return self._found[key]

    def check_split(self, benchmark: str, split: str, mode: str | None = None) -> SplitStats:
        """Run the checks on a split once (training splits also against the largest training patch)."""
        mode = mode or self.check
        key = (benchmark, split, mode)
        if key not in self._checked:
            found, content = self.content(benchmark, split)
            spec = get_spec(benchmark)
            min_side = self.max_patch if split == "train" and self.small_image == "error" else None
            what = f"{spec.title} {split} split ({found.layout.name} layout at {found.base})"
            if content.pairs:
                stats = check_pairs(content.pairs, what, mode, min_side, spec.size_mismatch)
            else:
                refs = content.clean or [ref for _, ref in content.crops]
                stats = check_images(refs, what, mode, min_side)
            self._checked[key] = stats
        return self._checked[key]

    # -- datasets -----------------------------------------------------------------------------------------
    def store_policy(self, split: str = "train") -> PixelPolicy:
        """The pixel policy a store packed from this config's ``split`` has (and a run on a store asks for)."""
        crop = "center_crop_target" if self.spec.size_mismatch == "center_crop_target" else "none"
        return PixelPolicy(self.spec.name, split, self.dual_pixel, crop)

    def checked_store(self, checksums: bool = False) -> dict[str, Any] | None:
        """The packed store's manifest, checked against this config (None for a URL: LitData reads it there)."""
        if is_remote(self.store_path):
            return None
        min_side = self.max_patch if self.small_image == "error" else None
        return check_store(self.store_path, self.store_policy(), min_side, checksums)

    def packed_train_dataset(self) -> PackedPairDataset:
        """Training pairs from the packed store: the items the image files would give, read without decoding."""
        manifest = self.checked_store() or {"pairs": 1, "input_planes": 1}  # a URL: LitData knows its length
        return PackedPairDataset(
            self.store_path,
            manifest,
            set_name=f"{self.spec.title}-train",
            patch_size=self.patch_size,
            small_image=self.small_image,
            repeat=self.repeat,
            channels=self.channels,
        )

    def train_dataset(self) -> Dataset:
        if self.store != "files":
            return self.packed_train_dataset()
        _, content = self.content(self.spec.name, "train")
        self.check_split(self.spec.name, "train")
        common = dict(
            set_name=f"{self.spec.title}-train",
            patch_size=self.patch_size,
            small_image=self.small_image,
            repeat=self.repeat,
            channels=self.channels,
        )
        if self.spec.kind == "clean":
            if self.degradation is None:
                raise ValueError(
                    f"{self.spec.title} holds clean images only: set data.degradation (e.g. Gaussian noise) to "
                    "synthesise training inputs"
                )
            return DegradedImageDataset(content.clean, self.degradation, **common)
        return PairedImageDataset(content.pairs, size_mismatch=self.spec.size_mismatch, **common)

    def _whole_images(self, benchmark: str, split: str, set_name: str, sigma: float | None) -> Dataset:
        spec = get_spec(benchmark)
        _, content = self.content(benchmark, split)
        self.check_split(benchmark, split)
        if spec.kind == "clean":
            degrade = self.degradation if self.eval_degradation == "train" else GaussianNoise(sigma)
            return DegradedImageDataset(
                content.clean, degrade, set_name=set_name, seed=self.seed, channels=self.channels
            )
        return PairedImageDataset(
            content.pairs, set_name=set_name, channels=self.channels, size_mismatch=spec.size_mismatch
        )

    def val_dataset(self) -> Dataset:
        val = self.spec.val
        benchmark = val.benchmark or self.spec.name
        dataset = self._whole_images(benchmark, val.split, f"{get_spec(benchmark).title}-val", self.val_sigma)
        if val.center_crop:
            dataset = CenterCropped(dataset, val.center_crop)
        return Limited(dataset, self.val_limit) if self.val_limit else dataset

    def set_names(self, benchmark: str) -> list[str]:
        """The test-set names a benchmark contributes (one per noise level for ground-truth-only sets)."""
        spec = get_spec(benchmark)
        if spec.kind == "clean" and self.eval_degradation == "gaussian":
            return [f"{spec.title}-s{sigma:g}" for sigma in self.test_sigmas]
        return [spec.title]

    def test_datasets(self) -> dict[str, Dataset]:
        datasets: dict[str, Dataset] = {}
        for benchmark in self.test_sets:
            if get_spec(benchmark).kind == "predict":
                warnings.warn(f"{benchmark} has no ground truth; run laformer-eval data={benchmark}", stacklevel=2)
                continue
            gaussian = get_spec(benchmark).kind == "clean" and self.eval_degradation == "gaussian"
            sigmas = self.test_sigmas if gaussian else (None,)
            for set_name, sigma in zip(self.set_names(benchmark), sigmas):
                datasets[set_name] = self._whole_images(benchmark, "test", set_name, sigma)
        return datasets

    @property
    def protocols(self) -> dict[str, EvalProtocol]:
        """Scoring protocol per test set. Sets scored like this dataset follow ``data.protocol``; a benchmark
        with its own protocol (RealBlur's alignment) keeps it."""
        table = {}
        for benchmark in self.test_sets:
            spec = get_spec(benchmark)
            own = benchmark == self.spec.name or spec.protocol == self.spec.protocol
            for set_name in self.set_names(benchmark):
                table[set_name] = self.protocol if own else spec.protocol
        return table

    # -- Lightning hooks ----------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            _, content = self.content(self.spec.name, "test")
            self.check_split(self.spec.name, "test")
            if content.crops:
                self._predict = InputOnlyDataset([ref for _, ref in content.crops], self.spec.title, self.channels)
            else:
                refs = [pair.input for pair in content.pairs] or content.clean
                self._predict = InputOnlyDataset(refs, self.spec.title, self.channels)
            return
        if stage == "fit":
            self._warn_missing_test_sets()
        if self.prediction_only:
            raise ValueError(
                f"{self.spec.title} has no ground truth, so it cannot be trained on or scored here; "
                f"`laformer-eval data={self.spec.name} ckpt_path=...` writes its submission files instead"
            )
        super().setup(stage)

    def _warn_missing_test_sets(self) -> None:
        """Say at the start of training, not after it, which test sets cannot be found (for test_after_fit)."""
        for benchmark in self.test_sets:
            spec = get_spec(benchmark)
            if spec.kind == "predict":
                continue
            try:
                locate(spec, "test", self.roots_for(benchmark))
            except DatasetNotFoundError as error:
                warnings.warn(
                    f"test set {spec.title} is not on disk, so testing after training would fail: {error}\n"
                    f"Leave it out with data.test_sets=[...] or point data.test_roots.{benchmark} at it.",
                    stacklevel=2,
                )

    def train_dataloader(self) -> DataLoader:
        if self.store != "streaming":
            return super().train_dataloader()
        self._apply_stage()
        return self.streaming_loader(self.per_device_batch_size())

    def streaming_loader(self, batch_size: int) -> DataLoader:
        """LitData's StreamingDataLoader over the store: this rank's shard, shuffled for this epoch.

        Its state (epoch, samples yielded) is what Lightning saves in a checkpoint and gives back on resume, so a
        run stopped mid-epoch reads the remaining samples of that epoch. The crops are seeded per sample
        (:func:`laformer.data.store.streaming_sample_seed`), so they are the same ones too.
        """
        from laformer.data.store import litdata, streaming_dataset_class

        StreamingDataLoader = litdata().StreamingDataLoader

        dataset = streaming_dataset_class()(
            self.store_path, self._train, self.training_seed(), cache_dir=self.store_cache
        )
        loader = StreamingDataLoader(
            dataset, batch_size=batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory, drop_last=True
        )
        if len(loader) == 0:
            raise StoreError(
                f"packed store {self.store_path} gives no full batch of {batch_size} per process "
                f"on {self.world_size} processes; lower data.batch_size or pack more pairs"
            )
        # LitData counts epochs from 1 and adds one as iteration starts; a restored state replaces this.
        loader.current_epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return loader

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self._predict, 1, shuffle=False)

    def write_predictions(self, outputs: Sequence[Mapping[str, Any]], folder: str | Path) -> list[Path]:
        """Write ``predict_step`` outputs (``restored``, ``name``): DND's submission layout, else PNGs."""
        restored: dict[str, np.ndarray] = {}
        for batch in outputs:
            for name, image in zip(batch["name"], batch["restored"]):
                restored[name] = image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        if self.spec.name == "dnd":
            return write_dnd_submission(restored, Path(folder))
        paths = []
        for name, image in restored.items():
            path = Path(folder) / f"{name}.png"
            write_image(path, torch.from_numpy(image.transpose(2, 0, 1)))
            paths.append(path)
        return paths
