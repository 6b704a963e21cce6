"""Whole-image vs tiled restoration of a 4K image: time, peak memory, and how far the tiled output drifts.

Each mode runs ``laformer.inference.restore_image`` once in a fresh spawned process (``laformer.benchmarks``:
``run_isolated`` of ``measure.restore_once``), so its peak memory (the resident set sampled by psutil from after the
network and image are loaded; ``torch.cuda.max_memory_allocated`` on a GPU) is its own. The parent scores each output
against the clean image (PSNR in dB on [0, 1] images; the gap between the modes is what tiling costs), also
compares the tiled output with the one-pass one directly, and writes ``<csv>`` and ``<csv>.md``.

The input is ``--image`` (any PNG/JPEG/TIFF; resized to ``--size`` only if asked) or, by default, a mosaic of
the real photos bundled with scikit-image (each at its own scale, no upsampling beyond 1.5x) filling the frame,
with Gaussian noise of ``--sigma`` (the demo's task). The network is ``--ckpt`` (trained: the meaningful PSNR
comparison) or an untrained ``--preset`` (time and memory do not depend on the weights).

    python experiments/efficiency/restore_4k.py --ckpt outputs/.../last.ckpt --modes one-pass tiled
    python experiments/efficiency/restore_4k.py --preset tiny --size 512x288 --tile 128   # a quick smoke
    python experiments/efficiency/restore_4k.py --quick --csv /tmp/r4k.csv                # the same, as tests run it
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from laformer.benchmarks import WorkerCrashed, WorkerTimeout, parse_size, run_isolated
from laformer.benchmarks.inputs import add_noise, photo_mosaic
from laformer.benchmarks.measure import restore_once
from laformer.benchmarks.networks import model_overrides, network_config
from laformer.metrics.image_metrics import psnr
from laformer.reports import write_csv

DEFAULT_DIR = Path(__file__).resolve().parent
FIELDS = ["mode", "size", "tile", "precision", "model", "status", "time_s", "peak_mem_mb", "baseline_mem_mb",
          "psnr_vs_clean_db", "gap_db", "psnr_vs_one_pass_db", "threads", "cpu_heap", "wall_s", "note"]  # fmt: skip


def make_input(args: argparse.Namespace, path: Path) -> torch.Tensor:
    """Write the noisy input as a 16-bit PNG the workers read; return the clean image (C x H x W float)."""
    from laformer.data.io import array_to_tensor, read_array, write_image

    height, width = parse_size(args.size)
    if args.image:
        clean = array_to_tensor(read_array(args.image), 3)
        if args.resize:
            clean = torch.nn.functional.interpolate(clean[None], (height, width), mode="area")[0]
    else:
        clean = array_to_tensor(photo_mosaic(height, width))
    write_image(path, add_noise(clean, args.sigma) if args.sigma else clean, bit_depth=16)
    return clean


def db(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """PSNR in dB of two [0, 1] images (C x H x W), in float64."""
    a, b = (torch.as_tensor(x, dtype=torch.float64)[None] for x in (a, b))
    return float(psnr(a, b)[0])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="One-pass vs tiled restoration of a 4K image, each in a fresh process."
    )
    parser.add_argument("--ckpt", type=Path, default=None, help="laformer-train checkpoint (else an untrained preset)")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--attention", default="rela")
    parser.add_argument("--image", type=Path, default=None, help="input photo (default: a mosaic of bundled photos)")
    parser.add_argument("--resize", action="store_true", help="resize --image to --size")
    parser.add_argument("--size", default="3840x2160", help="WIDTHxHEIGHT of the generated input")
    parser.add_argument("--sigma", type=float, default=25.0, help="Gaussian noise added to the input (0: none)")
    parser.add_argument("--modes", nargs="+", choices=("one-pass", "tiled"), default=["one-pass", "tiled"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--tile-overlap", type=int, default=32)
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--cpu-heap",
        choices=("auto", "off"),
        default="auto",
        help="auto: restore_image keeps freed memory for the pass where it fits (laformer.inference.cpu_heap); "
        "off: glibc's default",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per mode")
    parser.add_argument("--csv", type=Path, default=DEFAULT_DIR / "results_restore_4k.csv")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/laformer_restore_4k"), help="input and outputs")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run for the tests: tiny, 512x288, 128-px tiles (not a measurement)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.preset, args.size, args.tile, args.tile_overlap = "tiny", "512x288", 128, 16
    args.work_dir.mkdir(parents=True, exist_ok=True)
    source = args.work_dir / "input.png"
    clean = make_input(args, source)
    config = None if args.ckpt else network_config(model_overrides(args.preset, args.attention))
    rows = []
    for mode in args.modes:
        spec = {
            "ckpt": str(args.ckpt) if args.ckpt else None,
            "config": config,
            "input": str(source),
            "output": str(args.work_dir / f"{mode}.npy"),
            "tile": args.tile if mode == "tiled" else None,
            "overlap": args.tile_overlap,
            "precision": args.precision,
            "device": args.device,
            "threads": args.threads,
            "cpu_heap": args.cpu_heap,
        }
        start = time.perf_counter()
        try:
            result = run_isolated(restore_once, spec, timeout=args.timeout)
        except WorkerCrashed as exc:
            result = {"status": "oom" if exc.out_of_memory else "error", "note": str(exc)}
        except WorkerTimeout:
            result = {"status": "timeout", "note": f"> {args.timeout:g} s"}
        result.update(mode=mode, size=args.size, precision=args.precision, wall_s=round(time.perf_counter() - start, 1))
        result["cpu_heap"] = args.cpu_heap
        result["tile"] = f"{args.tile}/{args.tile_overlap}" if mode == "tiled" else "-"
        rows.append(result)
        print(f"  {mode}: {json.dumps(result)}", flush=True)

    outputs = {r["mode"]: np.load(args.work_dir / f"{r['mode']}.npy") for r in rows if r["status"] == "ok"}
    for r in rows:
        if r["mode"] in outputs:
            r["psnr_vs_clean_db"] = round(db(outputs[r["mode"]], clean), 3)
    if len(outputs) == 2:
        tiled = next(r for r in rows if r["mode"] == "tiled")
        tiled["psnr_vs_one_pass_db"] = round(db(outputs["one-pass"], outputs["tiled"]), 2)
        one_pass = next(r for r in rows if r["mode"] == "one-pass")
        tiled["gap_db"] = round(one_pass["psnr_vs_clean_db"] - tiled["psnr_vs_clean_db"], 3)
    write_csv(rows, args.csv, columns=FIELDS)
    table = ["| mode | size | tile/overlap | precision | cpu heap | model | status | time (s) | peak mem (GiB) "
             "| PSNR vs clean (dB) | one pass - tiled (dB) | PSNR tiled vs one pass (dB) |",
             "|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        time_s = f"{r['time_s']:.1f}" if "time_s" in r else "-"
        peak = f"{r['peak_mem_mb'] / 1024:.2f}" if "peak_mem_mb" in r else "-"
        table.append(
            f"| {r['mode']} | {r['size']} | {r['tile']} | {r['precision']} | {r['cpu_heap']} | {r.get('model', '-')} "
            f"| {r['status']} "
            f"| {time_s} | {peak} | {r.get('psnr_vs_clean_db', '-')} | {r.get('gap_db', '-')} "
            f"| {r.get('psnr_vs_one_pass_db', '-')} |"
        )
    text = "\n".join(table)
    args.csv.with_suffix(".md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nCSV: {args.csv}\nTable: {args.csv.with_suffix('.md')}")


if __name__ == "__main__":
    main()
