"""Packed stores: a paired dataset's decoded pixels in LitData chunks, so training stops paying for PNG decoding.

A store is a folder LitData's ``StreamingDataset`` reads as it is (``chunk-0-<k>.bin`` + ``index.json``), plus
``manifest.json``, our manifest: which dataset, split and layout it was packed from, the pixel policy
(dual-pixel views, targets centre-cropped to their inputs), the pair count, the smallest image, and each chunk's
pair count, size and SHA-256. Chunk ``k`` holds pairs ``k * chunk_pairs ...`` in the dataset's own order, so a
packed training set yields the same items as the image files for the same seed.

Packing is resumable: a chunk is written, checksummed and only then recorded in the manifest (an atomic
write). Stopped at any point (Ctrl-C, a kill, a full disk), the manifest lists the chunks that are whole; the same
command again deletes what a stopped write left and packs the rest. ``index.json`` is written last, so a store
LitData can open is a complete one. Every refusal is one line naming the store and the fix (:class:`StoreError`).

Why LitData chunks (see docs/datasets.md for the measurement): reading a decoded pair from a chunk costs about
what LMDB costs and 100x less than decoding the PNGs, and the same folder is what LitData streams to every rank of
a multi-node job, from local disk or object storage, with shuffling, rank sharding and resumable loader state.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from laformer.data.datasets import ImagePair, PairedImageDataset, _CroppingDataset, center_crop_array
from laformer.io_atomic import atomic_write_json

STORE_FORMAT = "laformer-packed-pairs/1"
MANIFEST = "manifest.json"
LITDATA_INDEX = "index.json"
DEFAULT_CHUNK_PAIRS = 8
REMOTE_PREFIXES = ("s3://", "gs://", "gcs://", "azure://", "r2://", "hf://")


class StoreError(ValueError):
    """A packed store that cannot be used as asked; the message names the store and the fix."""


def litdata() -> Any:
    """The ``litdata`` module, or one line saying how to install it (the ``stream`` extra, see pyproject.toml)."""
    try:
        import litdata as module
    except ImportError as exc:
        raise StoreError(
            f"packed stores need LitData, which is not installed ({exc}); install it with "
            "`pip install --no-deps 'litdata>=0.2,<0.3' && pip install boto3` (--no-deps keeps the CPU torch: "
            "LitData's metadata asks for torchvision, which would pull a CUDA torch)"
        ) from None
    return module


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an object-storage URL (LitData streams it; our manifest checks need a local folder)."""
    return str(path).startswith(REMOTE_PREFIXES)


def pack_command(dataset: str, store: str | Path) -> str:
    """The command that (re)packs ``store``, for the fix part of a refusal."""
    return f"laformer-data pack data={dataset} data.root=... --out {store}"


# -- what a store holds ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PixelPolicy:
    """What the packer did to the pixels, so a run can refuse a store made for another dataset or policy.

    ``target_crop``: ``center_crop_target`` where targets larger than their inputs were cut to them (RESIDE),
    ``none`` otherwise. ``min_height``/``min_width``: the smallest packed image, against the training patch.
    """

    dataset: str
    split: str
    dual_pixel: bool
    target_crop: str

    def describe(self) -> str:
        crop = "targets centre-cropped to their inputs" if self.target_crop != "none" else "targets as stored"
        views = ", dual-pixel views stacked" if self.dual_pixel else ""
        return f"data={self.dataset} ({self.split} split{views}, {crop})"


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def names_digest(names: Sequence[str]) -> str:
    """A fingerprint of the pair list (names, in order): a store packed from other pairs does not resume here."""
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


def read_manifest(store: Path) -> dict[str, Any] | None:
    """The store's manifest, or None where there is none (a damaged one is refused, naming the store)."""
    path = store / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StoreError(
            f"packed store {store}: its manifest {MANIFEST} is damaged (not JSON); delete the folder and pack it "
            "again with laformer-data pack"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        raise StoreError(f"{store} holds a {MANIFEST} of another format than {STORE_FORMAT}; pack a new store")
    return manifest


def policy_of(manifest: dict[str, Any]) -> PixelPolicy:
    """The pixel policy a store was packed with, to compare with the one a run asks for."""
    return PixelPolicy(manifest["dataset"], manifest["split"], bool(manifest["dual_pixel"]), manifest["target_crop"])


def check_store(
    store: str | Path, expected: PixelPolicy | None = None, min_side: int | None = None, checksums: bool = False
) -> dict[str, Any]:
    """The manifest of a complete store whose chunks match it, or :class:`StoreError` saying what is wrong.

    ``expected``: the dataset and pixel policy a run asks for. ``min_side``: the largest training patch (images
    smaller than it are refused, as the image-file path refuses them). ``checksums``: re-read every chunk (verify).
    """
    store = Path(store).expanduser()
    if not store.is_dir():
        dataset = expected.dataset if expected else "NAME"
        raise StoreError(f"packed store {store} does not exist; pack it first: {pack_command(dataset, store)}")
    manifest = read_manifest(store)
    if manifest is None:
        raise StoreError(
            f"{store} is not a packed store (no {MANIFEST}); point data.store_path at a folder written by "
            "laformer-data pack"
        )
    command = pack_command(manifest["dataset"], store)
    if manifest.get("status") != "complete":
        done = sum(chunk["pairs"] for chunk in manifest.get("chunks", {}).values())
        raise StoreError(
            f"packed store {store} is partial ({done} of {manifest['pairs']} pairs packed; the packing was stopped): "
            f"finish it with the same command, {command}"
        )
    if expected is not None and policy_of(manifest) != expected:
        raise StoreError(
            f"packed store {store} holds {policy_of(manifest).describe()} but this run asks for "
            f"{expected.describe()}; point data.store_path at a store packed for it, or pack one: "
            f"{pack_command(expected.dataset, '<new folder>')}"
        )
    smallest = min(manifest["min_height"], manifest["min_width"])
    if min_side is not None and smallest < min_side:
        raise StoreError(
            f"packed store {store} holds images as small as {manifest['min_height']}x{manifest['min_width']}, "
            f"smaller than the training patch {min_side}x{min_side}; lower data.patch_size or set "
            "data.small_image=pad"
        )
    _check_chunks(store, manifest, checksums, command)
    return manifest


def _check_chunks(store: Path, manifest: dict[str, Any], checksums: bool, command: str) -> None:
    chunks = _ordered(manifest)
    try:
        index = json.loads((store / LITDATA_INDEX).read_text(encoding="utf-8"))
        listed = [(c["filename"], c["chunk_size"]) for c in index["chunks"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise StoreError(
            f"packed store {store}: LitData's {LITDATA_INDEX} is missing or damaged; pack the store again: {command}"
        ) from None
    if listed != [(c["file"], c["pairs"]) for c in chunks] or sum(n for _, n in listed) != manifest["pairs"]:
        raise StoreError(
            f"packed store {store}: its manifest does not match its chunks ({LITDATA_INDEX} lists {len(listed)} "
            f"chunks of {sum(n for _, n in listed)} pairs, {MANIFEST} {len(chunks)} of {manifest['pairs']}); "
            f"the folder was changed after packing. Delete it and pack again: {command}"
        )
    for chunk in chunks:
        path = store / chunk["file"]
        if not path.is_file():
            raise StoreError(
                f"packed store {store}: chunk {chunk['file']} is missing; run the packing again to repack it: {command}"
            )
        size = path.stat().st_size
        if size != chunk["bytes"] or (checksums and _sha256(path) != chunk["sha256"]):
            what = f"{size} bytes, {chunk['bytes']} packed" if size != chunk["bytes"] else "its checksum differs"
            raise StoreError(
                f"packed store {store}: chunk {chunk['file']} does not match the manifest ({what}); run the packing "
                f"again to repack it: {command}"
            )


def _ordered(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [manifest["chunks"][key] for key in sorted(manifest["chunks"], key=int)]


# -- packing ----------------------------------------------------------------------------------------------------------
def _stacked(planes: list[np.ndarray]) -> np.ndarray:
    """Planes of one image (dual-pixel views) as one H x W x C array; a single plane unchanged."""
    if len(planes) == 1:
        return planes[0]
    return np.concatenate([p if p.ndim == 3 else p[..., None] for p in planes], axis=2)


def unstack(array: np.ndarray, planes: int) -> list[np.ndarray]:
    """The inverse of :func:`_stacked`: ``planes`` equal slices along the channel axis."""
    if planes == 1:
        return [array]
    return list(np.split(array, planes, axis=2))


def pair_record(pair: ImagePair, target_crop: str) -> dict[str, Any]:
    """One pair as stored: its name and decoded pixels (the target centre-cropped where the policy says so)."""
    inp, tgt = pair.input.planes(), pair.target.planes()
    if target_crop == "center_crop_target":
        tgt = [center_crop_array(plane, inp[0].shape[:2]) for plane in tgt]
    if inp[0].shape[:2] != tgt[0].shape[:2]:
        raise StoreError(
            f"input {pair.input} is {inp[0].shape[:2]} but its target {pair.target} is {tgt[0].shape[:2]} "
            "(height x width); a pair must have the same height and width (laformer-data verify lists such pairs)"
        )
    return {"name": pair.name, "input": _stacked(inp), "target": _stacked(tgt)}


def _source_bytes(pairs: Sequence[ImagePair]) -> int:
    total = 0
    for pair in pairs:
        for ref in (pair.input, pair.target):
            for part in getattr(ref, "parts", ()) or (ref,):
                if part.path is not None:
                    with contextlib.suppress(OSError):
                        total += part.path.stat().st_size
    return total


def _write_chunk(store: Path, records: list[dict[str, Any]], chunk_index: int) -> tuple[dict[str, Any], dict]:
    """Write one LitData chunk of ``records``; (its entry of LitData's index, LitData's config)."""
    litdata()
    from litdata.streaming.writer import BinaryWriter

    writer = BinaryWriter(str(store), chunk_size=len(records), chunk_index=chunk_index)
    worker_index = store / f"{writer.rank}.{LITDATA_INDEX}"
    try:
        for i, record in enumerate(records):
            writer.add_item(i, record)
        writer.done()
        written = json.loads(worker_index.read_text(encoding="utf-8"))
    finally:
        worker_index.unlink(missing_ok=True)
    (entry,) = written["chunks"]
    return entry, written["config"]


@dataclass
class PackResult:
    """What :func:`pack` did: the store, its pairs (and how many this call packed), its size against the files'."""

    store: Path
    pairs: int
    packed_now: int
    store_bytes: int
    source_bytes: int

    def report(self, title: str) -> str:
        ratio = self.store_bytes / self.source_bytes if self.source_bytes else float("nan")
        state = f"{self.packed_now} packed now" if self.packed_now < self.pairs else "all packed now"
        return (
            f"packed store {self.store}: {self.pairs} pairs of {title} ({state}); {human_bytes(self.store_bytes)} "
            f"on disk against {human_bytes(self.source_bytes)} of image files ({ratio:.2f}x)"
        )


def human_bytes(count: float) -> str:
    """``count`` bytes in binary units (``3.2 GiB``), for the size report of ``pack`` and ``verify``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"


def pack(
    pairs: Sequence[ImagePair],
    store: str | Path,
    policy: PixelPolicy,
    source: str = "",
    layout: str = "",
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
    progress: Callable[[int, int], None] | None = None,
) -> PackResult:
    """Pack ``pairs`` (a dataset's split, in its order) into ``store``; resume a stopped packing of the same pairs.

    ``progress(done, total)`` is called after each chunk. Raises :class:`StoreError` when ``store`` holds something
    else (another dataset, other pairs, a non-empty folder that is no store).
    """
    store = Path(store).expanduser()
    if is_remote(store):
        raise StoreError(
            f"cannot pack into {store}: packing writes a local folder; pack locally, then copy the folder to object "
            "storage (every file of it) and give its URL as data.store_path"
        )
    if not pairs:
        raise StoreError(f"no pairs to pack into {store}")
    names = [pair.name for pair in pairs]
    planes = len(getattr(pairs[0].input, "parts", ())) or 1  # dual-pixel inputs stack their views
    fresh = {
        "format": STORE_FORMAT,
        "status": "packing",
        **asdict(policy),
        "source": source,
        "layout": layout,
        "pairs": len(pairs),
        "names_sha256": names_digest(names),
        "input_planes": planes,
        "chunk_pairs": chunk_pairs,
        "chunks": {},
        "min_height": None,
        "min_width": None,
        "dtype": None,
        "source_bytes": _source_bytes(pairs),
    }
    manifest = _resumable_manifest(store, fresh, policy)
    chunk_pairs = manifest["chunk_pairs"]
    total_chunks = -(-len(pairs) // chunk_pairs)
    _remove_strays(store, manifest)
    packed_now, done = 0, sum(c["pairs"] for c in manifest["chunks"].values())
    if progress is not None:
        progress(done, len(pairs))
    for k in range(total_chunks):
        if str(k) in manifest["chunks"]:
            continue
        part = pairs[k * chunk_pairs : (k + 1) * chunk_pairs]
        records = [pair_record(pair, policy.target_crop) for pair in part]
        for record in records:
            _note_pixels(manifest, record, store)
        try:
            entry, config = _write_chunk(store, records, k)
        except BaseException:
            for stray in store.glob(f"chunk-*-{k}.bin"):  # half a chunk is never kept
                stray.unlink(missing_ok=True)
            raise
        path = store / entry["filename"]
        manifest["chunks"][str(k)] = {
            "file": entry["filename"],
            "pairs": len(records),
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
            "litdata": entry,
        }
        manifest["litdata_config"] = config
        atomic_write_json(store / MANIFEST, manifest)
        packed_now += len(records)
        done += len(records)
        if progress is not None:
            progress(done, len(pairs))
    chunks = _ordered(manifest)
    index = {"chunks": [c["litdata"] for c in chunks], "config": manifest["litdata_config"]}
    atomic_write_json(store / LITDATA_INDEX, index)
    manifest["status"] = "complete"
    manifest["store_bytes"] = sum(c["bytes"] for c in chunks)
    atomic_write_json(store / MANIFEST, manifest)
    return PackResult(store, len(pairs), packed_now, manifest["store_bytes"], manifest["source_bytes"])


def _note_pixels(manifest: dict[str, Any], record: dict[str, Any], store: Path) -> None:
    """Track the smallest image and refuse a mix of bit depths (one store holds one pixel type)."""
    height, width = record["input"].shape[:2]
    manifest["min_height"] = min(height, manifest["min_height"] or height)
    manifest["min_width"] = min(width, manifest["min_width"] or width)
    dtype = str(record["input"].dtype)
    if manifest["dtype"] not in (None, dtype) or str(record["target"].dtype) != dtype:
        raise StoreError(
            f"pair {record['name']} mixes {dtype} and {record['target'].dtype} pixels with the {manifest['dtype']} "
            f"of the pairs before it; a packed store ({store}) holds one bit depth: convert the odd files"
        )
    manifest["dtype"] = dtype


def _resumable_manifest(store: Path, fresh: dict[str, Any], policy: PixelPolicy) -> dict[str, Any]:
    """The manifest to continue: a stopped packing of the same pairs (bad chunks dropped), or a fresh one."""
    existing = read_manifest(store) if store.is_dir() else None
    if existing is None:
        if store.is_dir() and any(store.iterdir()):
            raise StoreError(
                f"cannot pack into {store}: the folder holds other files and no {MANIFEST}; give --out an empty or "
                "new folder"
            )
        store.mkdir(parents=True, exist_ok=True)
        return fresh
    same = (
        policy_of(existing) == policy
        and existing["pairs"] == fresh["pairs"]
        and existing["names_sha256"] == fresh["names_sha256"]
    )
    if not same:
        raise StoreError(
            f"packed store {store} holds {policy_of(existing).describe()} with {existing['pairs']} pairs, not the "
            f"{fresh['pairs']} pairs of {policy.describe()} asked now (the dataset changed or another one is named); "
            "give --out another folder, or delete this one to pack it again"
        )
    # Keep the chunks that are whole; drop (and repack) missing or damaged ones.
    kept = {}
    for key, chunk in existing["chunks"].items():
        path = store / chunk["file"]
        if path.is_file() and path.stat().st_size == chunk["bytes"] and _sha256(path) == chunk["sha256"]:
            kept[key] = chunk
    if len(kept) != len(existing["chunks"]):
        (store / LITDATA_INDEX).unlink(missing_ok=True)
        existing["status"] = "packing"
    existing["chunks"] = kept
    existing["source_bytes"] = fresh["source_bytes"]
    return existing


def _remove_strays(store: Path, manifest: dict[str, Any]) -> None:
    """Delete chunk files the manifest does not list (a write stopped by a kill or a full disk) and temp files."""
    listed = {chunk["file"] for chunk in manifest["chunks"].values()}
    for path in store.glob("chunk-*.bin"):
        if path.name not in listed:
            path.unlink(missing_ok=True)
    for path in [*store.glob("*.tmp"), *store.glob(f"*.{LITDATA_INDEX}")]:
        if path.name != LITDATA_INDEX:
            path.unlink(missing_ok=True)


# -- reading ----------------------------------------------------------------------------------------------------------
class PackedPairDataset(PairedImageDataset):
    """A packed store read by index: the items :class:`PairedImageDataset` would give for the same pairs.

    Crops, their random draws, the float conversion and ``repeat`` are the image-file path's own code
    (``pair_item``); only where the pixels come from differs. Targets were centre-cropped when packing, so no
    size policy applies here. LitData reads each pair from its chunk, one reader per (worker) process.
    """

    def __init__(
        self,
        store: str | Path,
        manifest: dict[str, Any],
        set_name: str,
        patch_size: int | None = None,
        small_image: str = "error",
        repeat: int = 1,
        channels: int | None = None,
    ) -> None:
        # The image-file dataset's crop settings without its list of files: the store holds the pairs.
        _CroppingDataset.__init__(self, set_name, patch_size, small_image, repeat, channels)
        self.store, self.manifest, self.size_mismatch = Path(store), manifest, "error"
        self.planes = int(manifest["input_planes"])
        self._reader: Any = None
        self._reader_pid: int | None = None

    @property
    def num_images(self) -> int:
        return int(self.manifest["pairs"])

    def _dataset(self) -> Any:
        if self._reader is None or self._reader_pid != os.getpid():  # one reader per (worker) process
            self._reader, self._reader_pid = litdata().StreamingDataset(str(self.store)), os.getpid()
        return self._reader

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None, "_reader_pid": None}

    def __getitem__(self, index: int) -> dict:
        position = index % self.num_images
        record = self._dataset()[position]
        where = f"{self.store} pair {position} ({record['name']})"
        inp, tgt = unstack(record["input"], self.planes), [record["target"]]
        return self.pair_item(inp, tgt, record["name"], where, where)


def streaming_dataset_class() -> type:
    """:class:`StreamingPairs`, built on first use so that importing this module does not import LitData."""
    global _StreamingPairs
    if _StreamingPairs is None:
        _StreamingPairs = _make_streaming_class()
    return _StreamingPairs


_StreamingPairs: type | None = None
_SEED_BOUND = 2**62


def streaming_sample_seed(seed: int, epoch: int, index: int) -> int:
    """A streamed sample's seed, a function of the run's seed, the epoch and the pair's index in the store.

    The crop is drawn from it (and the batch augmentation from :func:`~laformer.data.sampling.augment_seed` of
    it), so a resumed run crops and flips the remaining samples as the uninterrupted run did.
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % _SEED_BOUND)
    offset = int(torch.randint(0, _SEED_BOUND, (1,), generator=generator))
    return (offset + index * 0x9E3779B97F4A7C15) % _SEED_BOUND


def _make_streaming_class() -> type:
    StreamingDataset = litdata().StreamingDataset
    from litdata.streaming.sampler import ChunkedIndex

    class StreamingPairs(StreamingDataset):
        """LitData's streaming dataset over a packed store, yielding training items (crops in float).

        LitData shards chunks over ranks and workers, shuffles them per epoch from ``seed`` and keeps its position
        in the loader's state (saved in Lightning's checkpoints). Each item is cropped by the image-file path's
        own code (``pairs.pair_item``) with torch's generator seeded by :func:`streaming_sample_seed`.
        """

        def __init__(self, input_dir: str, pairs: PackedPairDataset | None, seed: int, **kwargs: Any) -> None:
            super().__init__(input_dir, shuffle=True, drop_last=True, seed=seed, **kwargs)
            self.pairs, self.run_seed = pairs, seed

        def __getitem__(self, index: Any) -> Any:
            record = super().__getitem__(index)
            if self.pairs is None:
                return record
            position = index.index if isinstance(index, ChunkedIndex) else int(index)
            sample_seed = streaming_sample_seed(self.run_seed, int(self.current_epoch), position)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                where = f"{self.input_dir.url or self.input_dir.path} pair {position} ({record['name']})"
                inp = unstack(record["input"], self.pairs.planes)
                item = self.pairs.pair_item(inp, [record["target"]], record["name"], where, where)
            return {**item, "seed": sample_seed}

    return StreamingPairs
