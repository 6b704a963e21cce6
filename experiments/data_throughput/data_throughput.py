"""Loader throughput: training pairs a second from the image files and from a packed store (issue 27).

Writes a GoPro-sized layout (1280 x 720 PNG pairs in GoPro's official folders, photo content with a horizontal
blur), packs it with ``laformer-data pack``, then measures, each in a fresh spawned process
(``laformer.benchmarks.run_isolated``), the training loader of ``data=gopro`` (256 x 256 crops, batch 8, the
batch flips/rotations training applies) with ``data.store=files`` and ``data.store=packed``:

- ``workers=0``: the loader in the measuring process itself: the pairs a second one worker (one core) yields;
- ``workers=N``: N DataLoader worker processes feeding the measuring process.

A second table times the read of one pair in each store format considered (PNG decode, a LitData chunk item, an
LMDB value, a NumPy memory map), each followed by the same 256 x 256 crop: the measurement behind the choice of
LitData chunks. Last, the CPU workers per GPU each path needs at a GPU's training rate (``--gpu-rate`` pairs a
second; the default is a stated estimate until ``experiments/gpu`` has measured LAformer-base at 256 x 256).

Run it alone on the machine (any other work steals the cores it measures):

    .venv/bin/python experiments/data_throughput/data_throughput.py            # about 5 minutes on 2 cores
    .venv/bin/python experiments/data_throughput/data_throughput.py --quick --out /tmp/dt   # seconds: a check
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The GPU training rate assumed until experiments/gpu measures it: "tens of pairs a second" for LAformer-base at
# 256 x 256 on one GPU (issue 27). Replace with the measured figure: --gpu-rate.
ESTIMATED_GPU_RATE = 40.0


@dataclass
class Setup:
    """What one run of the study measures; ``--quick`` shrinks every size so the code path runs in seconds."""

    pairs: int = 16
    height: int = 720
    width: int = 1280
    patch: int = 256
    batch: int = 8
    workers: list[int] = field(default_factory=lambda: [0, 1, 2])
    batches: int = 12  # timed batches per loader measurement (after warm-up)
    reads: int = 24  # timed single-pair reads per store format

    @classmethod
    def quick(cls) -> Setup:
        return cls(pairs=4, height=96, width=160, patch=32, batch=2, workers=[0, 1], batches=3, reads=3)


def write_layout(root: Path, setup: Setup) -> Path:
    """GoPro's official layout: ``GOPRO_Large/{train,test}/<scene>/{blur,sharp}/<frame>.png``, ``setup.pairs``
    training pairs of photo content (each a different window of the bundled photos' mosaic) and one test pair."""
    import cv2
    import numpy as np

    from laformer.benchmarks.inputs import photo_mosaic
    from laformer.data.io import write_array

    mosaic = photo_mosaic(setup.height * 2, setup.width * 2, row_height=max(setup.height // 2, 16))
    rng = np.random.default_rng(0)
    for split, count in (("train", setup.pairs), ("test", 1)):
        for i in range(count):
            top, left = int(rng.integers(0, setup.height)), int(rng.integers(0, setup.width))
            sharp = np.ascontiguousarray(mosaic[top : top + setup.height, left : left + setup.width])
            blur = cv2.blur(sharp, (15, 1))  # a horizontal motion blur: GoPro-like, compresses like it
            folder = root / "GOPRO_Large" / split / f"GOPR{i // 8:04d}_00"
            write_array(folder / "blur" / f"{i:06d}.png", blur)
            write_array(folder / "sharp" / f"{i:06d}.png", sharp)
    return root


def overrides(root: Path, store: Path, setup: Setup, path: str, workers: int) -> list[str]:
    return [
        "data=gopro",
        f"data.root={root}",
        "data.test_sets=[gopro]",
        f"data.patch_size={setup.patch}",
        f"data.batch_size={setup.batch}",
        f"data.num_workers={workers}",
        "data.pin_memory=false",
        "data.repeat=1000",  # an epoch never ends inside a measurement
        f"data.store={path}",
        *([f"data.store_path={store}"] if path != "files" else []),
    ]


def loader_rate(spec: dict[str, Any]) -> dict[str, Any]:
    """Pairs a second of one training loader (runs in a spawned worker): ``batches`` timed after a warm-up.

    The warm-up fills the workers' prefetch queues (2 batches each), so the timed batches are the steady rate.
    Each batch gets the flips/rotations training applies to it (``random_dihedral``) in this process.
    """
    import torch

    from laformer.benchmarks import PeakMemory, time_calls
    from laformer.cli.data import build_datamodule
    from laformer.data.augment import random_dihedral

    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = build_datamodule(spec["overrides"])
    module.setup("fit")
    batches = iter(module.train_dataloader())

    def one_batch() -> int:
        batch = next(batches)
        random_dihedral(batch["input"], batch["target"])
        return len(batch["name"])

    warmup = 1 + 2 * spec["workers"]
    with PeakMemory() as memory:
        timing = time_calls(one_batch, repeats=spec["batches"], warmup=warmup)
    return {
        "pairs_per_s": spec["batch"] * len(timing.times) / sum(timing.times),
        "peak_mem_mb": round(memory.peak_mb, 1),
    }


def format_reads(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Seconds to read one pair and crop it, per store format (runs in a spawned worker)."""
    import numpy as np

    from laformer.benchmarks import time_calls
    from laformer.data.io import read_array
    from laformer.data.store import litdata

    root, store, patch, reads = Path(spec["root"]), Path(spec["store"]), spec["patch"], spec["reads"]
    blur = sorted((root / "GOPRO_Large" / "train").glob("*/blur/*.png"))
    pairs = [(path, path.parent.parent / "sharp" / path.name) for path in blur]
    rng = np.random.default_rng(0)

    def crop(*frames: np.ndarray) -> list[np.ndarray]:
        h, w = frames[0].shape[:2]
        top, left = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        return [np.ascontiguousarray(f[top : top + patch, left : left + patch]) for f in frames]

    def pick() -> int:
        return int(rng.integers(0, len(pairs)))

    frames = [(read_array(a), read_array(b)) for a, b in pairs]
    chunks = litdata().StreamingDataset(str(store))
    readers: dict[str, Any] = {
        "PNG files (decode)": lambda: crop(*(read_array(p) for p in pairs[pick()])),
        "LitData chunk item": lambda: crop(*(lambda r: (r["input"], r["target"]))(chunks[pick()])),
    }
    work = Path(tempfile.mkdtemp(prefix="formats-"))
    try:
        try:
            import lmdb

            env = lmdb.open(str(work / "lmdb"), map_size=2 * sum(a.nbytes + b.nbytes for a, b in frames) + 2**20)
            with env.begin(write=True) as txn:
                for i, (a, b) in enumerate(frames):
                    txn.put(f"{i}/input".encode(), a.tobytes())
                    txn.put(f"{i}/target".encode(), b.tobytes())
            shape, dtype = frames[0][0].shape, frames[0][0].dtype

            def lmdb_read() -> list[np.ndarray]:
                i = pick()
                with env.begin() as txn:
                    values = [txn.get(f"{i}/{key}".encode()) for key in ("input", "target")]
                    return crop(*(np.frombuffer(value, dtype).reshape(shape) for value in values))

            readers["LMDB value (raw pixels)"] = lmdb_read
        except ImportError:
            pass
        np.save(work / "frames.npy", np.stack([np.stack(pair) for pair in frames]))
        memmap = np.load(work / "frames.npy", mmap_mode="r")
        readers["NumPy memory map"] = lambda: crop(*memmap[pick()])
        rows = []
        for name, read in readers.items():
            timing = time_calls(read, repeats=reads, warmup=2)
            rows.append({"format": name, "ms_per_pair": 1e3 * sum(timing.times) / len(timing.times)})
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def folder_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def study(setup: Setup, out: Path, gpu_rate: float, gpu_rate_source: str, work: Path) -> dict[str, Any]:
    from laformer.benchmarks import run_isolated, time_calls
    from laformer.benchmarks.machine import machine_facts
    from laformer.cli.data import main as data_main
    from laformer.reports import markdown_table, write_csv

    root, store = write_layout(work / "data", setup), work / "store"
    pack = ["pack", "data=gopro", f"data.root={root}", "data.test_sets=[gopro]", "--out", str(store)]
    packing = time_calls(lambda: data_main(pack), repeats=1)
    png_bytes, store_bytes = folder_bytes(root / "GOPRO_Large" / "train", "*.png"), folder_bytes(store, "*.bin")

    rows = []
    for path in ("files", "packed"):
        for workers in setup.workers:
            spec = {
                "overrides": overrides(root, store, setup, path, workers),
                "workers": workers,
                "batch": setup.batch,
                "batches": max(setup.batches, 4 * workers),
            }
            row = {"path": path, "workers": workers, **run_isolated(loader_rate, spec, env={"OMP_NUM_THREADS": "1"})}
            rows.append(row)
            print(f"{path}, {workers} workers: {row['pairs_per_s']:.1f} pairs/s", flush=True)
    per_worker = {r["path"]: r["pairs_per_s"] for r in rows if r["workers"] == 0}
    for row in rows:
        row["vs_files"] = row["pairs_per_s"] / next(
            r["pairs_per_s"] for r in rows if r["path"] == "files" and r["workers"] == row["workers"]
        )
    formats = run_isolated(
        format_reads, {"root": str(root), "store": str(store), "patch": setup.patch, "reads": setup.reads}
    )
    need = [
        {
            "path": path,
            "pairs_per_s_per_worker": rate,
            "gpu_pairs_per_s": gpu_rate,
            "workers_per_gpu": math.ceil(gpu_rate / rate),
            "gpu_rate_source": gpu_rate_source,
        }
        for path, rate in per_worker.items()
    ]
    write_csv(rows, out / "results.csv")
    write_csv(formats, out / "results_formats.csv")
    write_csv(need, out / "results_workers_per_gpu.csv")
    facts = machine_facts("cpu")
    header = [
        f"# Loader throughput ({'quick check, not a result' if setup.pairs < 16 else 'GoPro-sized layout'})",
        "",
        f"{setup.pairs} training pairs of {setup.width} x {setup.height} PNG, crops {setup.patch} x {setup.patch}, "
        f"batch {setup.batch}, flips and rotations; files in the page cache (warm).",
        "",
        *(f"- {key}: {value}" for key, value in facts.items()),
        f"- packing: {packing.times[0]:.1f} s; store {store_bytes / 2**20:.1f} MiB against "
        f"{png_bytes / 2**20:.1f} MiB of PNG ({store_bytes / png_bytes:.2f}x)",
        "",
        "## Pairs a second of the training loader",
        "",
        "",
    ]
    text = "\n".join(header) + markdown_table(
        rows,
        {"path": "path", "workers": "workers", "pairs_per_s": "pairs/s", "vs_files": "vs files", "peak_mem_mb": "MiB"},
        {"pairs_per_s": ".1f", "vs_files": ".1f"},
    )
    text += "\n## One pair read and cropped, per store format\n\n"
    text += markdown_table(formats, {"format": "format", "ms_per_pair": "ms per pair"}, {"ms_per_pair": ".3f"})
    text += f"\n## CPU workers per GPU at {gpu_rate:g} pairs/s per GPU ({gpu_rate_source})\n\n"
    text += markdown_table(
        need,
        {"path": "path", "pairs_per_s_per_worker": "pairs/s per worker", "workers_per_gpu": "workers per GPU"},
        {"pairs_per_s_per_worker": ".1f"},
    )
    (out / "results.md").write_text(text, encoding="utf-8")
    print(text, end="")
    return {"rows": rows, "formats": formats, "need": need, "store_bytes": store_bytes, "png_bytes": png_bytes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code path, measures nothing")
    parser.add_argument("--out", type=Path, default=HERE, help="where results*.csv and results.md go")
    parser.add_argument("--pairs", type=int, help="training pairs to generate (default 16)")
    parser.add_argument("--workers", type=int, nargs="+", help="loader worker counts (default 0 1 2)")
    parser.add_argument("--gpu-rate", type=float, help="pairs a second one GPU trains on (default: the estimate)")
    args = parser.parse_args(argv)
    setup = Setup.quick() if args.quick else Setup()
    setup.pairs = args.pairs or setup.pairs
    setup.workers = args.workers or setup.workers
    source = "measured, given with --gpu-rate" if args.gpu_rate else "an estimate: no GPU measurement yet"
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="data-throughput-") as work:
        study(setup, args.out, args.gpu_rate or ESTIMATED_GPU_RATE, source, Path(work))
    print(f"({time.perf_counter() - started:.0f} s; setup {asdict(setup)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
