"""Whole-image vs tiled restoration of a 4K image: time, peak memory, and how far the tiled output drifts.

Each mode runs ``laformer.inference.restore_image`` once in a fresh process (this script re-invoked with a
hidden ``--worker`` flag), so its peak RSS (``ru_maxrss``: torch, the model, the image and every activation)
is its own. CUDA runs report ``torch.cuda.max_memory_allocated`` instead. The parent scores each output
against the clean image (PSNR in dB on [0, 1] images; the gap between the modes is what tiling costs), also
compares the tiled output with the one-pass one directly, and writes ``<csv>`` and ``<csv>.md``.

The input is ``--image`` (any PNG/JPEG/TIFF; resized to ``--size`` only if asked) or, by default, a mosaic of
the real photos bundled with scikit-image (each at its own scale, no upsampling beyond 1.5x) filling the frame,
with Gaussian noise of ``--sigma`` (the demo's task). The network is ``--ckpt`` (trained: the meaningful PSNR
comparison) or an untrained ``--preset`` (time and memory do not depend on the weights).

    python experiments/efficiency/restore_4k.py --ckpt outputs/.../last.ckpt --modes one-pass tiled
    python experiments/efficiency/restore_4k.py --preset tiny --size 512x288 --tile 128   # a quick smoke
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULT_PREFIX = "RESTORE_RESULT "
DEFAULT_DIR = Path(__file__).resolve().parent
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "hubble_deep_field", "immunohistochemistry")


def parse_size(text: str) -> tuple[int, int]:
    """``3840x2160`` (width x height) -> (3840, 2160); ``512`` -> (512, 512)."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height or width)


def photo_mosaic(width: int, height: int, row_height: int = 720) -> np.ndarray:
    """H x W x 3 uint8: rows of the bundled photos, each scaled to ``row_height`` (at most 1.5x), cycled."""
    import cv2

    from laformer.data.demo import load_demo_photo

    photos = []
    for name in PHOTOS:
        image = load_demo_photo(name)
        image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        rows = min(row_height, int(image.shape[0] * 1.5))
        cols = round(image.shape[1] * rows / image.shape[0])
        photos.append(cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA))
    canvas = np.zeros((height, width, 3), np.uint8)
    y, k = 0, 0
    while y < height:
        x, band = 0, 0
        while x < width:
            photo = photos[k % len(photos)][: height - y, : width - x]
            canvas[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
            x, band, k = x + photo.shape[1], max(band, photo.shape[0]), k + 1
        y += band
    return canvas


def make_input(args: argparse.Namespace, path: Path) -> np.ndarray:
    """Write the noisy input as a 16-bit PNG the workers read; return the clean image (C x H x W float)."""
    import torch

    from laformer.data.io import array_to_tensor, read_array, write_image

    width, height = parse_size(args.size)
    if args.image:
        image = array_to_tensor(read_array(args.image), 3)
        if args.resize:
            image = torch.nn.functional.interpolate(image[None], (height, width), mode="area")[0]
        clean = image
    else:
        clean = array_to_tensor(photo_mosaic(width, height))
    generator = torch.Generator().manual_seed(0)
    noisy = (clean + torch.randn(clean.shape, generator=generator) * args.sigma / 255).clamp(0, 1)
    write_image(path, noisy if args.sigma else clean, bit_depth=16)
    return clean.numpy()


def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024**2 if sys.platform == "darwin" else rss / 1024


def run_worker(spec: dict) -> dict:
    """Build the network, restore the image once, save the output; peak memory and time as a dict."""
    import torch

    from laformer.data.io import read_image
    from laformer.inference import restore_image
    from laformer.models import LAformer

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    if spec.get("ckpt"):
        from laformer.inference.checkpoint import load_network

        net, config = load_network(spec["ckpt"])
        name = f"{config.get('name')} {config.get('attention')} (checkpoint)"
    else:
        torch.manual_seed(0)
        net = LAformer.from_preset(spec["preset"], attention=spec["attention"]).eval()
        name = f"{spec['preset']} {spec['attention']} (untrained)"
    from laformer.inference.restore import is_out_of_memory, prepare_network

    net = prepare_network(net, device)
    image = read_image(spec["input"])
    baseline = _maxrss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result: dict = {"model": name, "baseline_mem_mb": baseline, "threads": torch.get_num_threads()}
    start = time.perf_counter()
    try:
        out = restore_image(
            net,
            image,
            tile=spec["tile"],
            overlap=spec["overlap"],
            precision=spec["precision"],
            tile_batch=1,
            reuse_freed_memory=spec.get("cpu_heap", "auto") == "auto",
        )
    except Exception as exc:  # out of memory is a result to record
        result.update(status="oom" if is_out_of_memory(exc) else "error", note=f"{type(exc).__name__}: {exc}"[:300])
        return result
    result["time_s"] = time.perf_counter() - start
    cuda = device.type == "cuda"
    result["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 1024**2 if cuda else _maxrss_mb()
    np.save(spec["output"], out.numpy())
    result["status"] = "ok"
    return result


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


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
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        print(RESULT_PREFIX + json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    source = args.work_dir / "input.png"
    clean = make_input(args, source)
    rows = []
    for mode in args.modes:
        spec = {
            "ckpt": str(args.ckpt) if args.ckpt else None,
            "preset": args.preset,
            "attention": args.attention,
            "input": str(source),
            "output": str(args.work_dir / f"{mode}.npy"),
            "tile": args.tile if mode == "tiled" else None,
            "overlap": args.tile_overlap,
            "precision": args.precision,
            "device": args.device,
            "threads": args.threads,
            "cpu_heap": args.cpu_heap,
        }
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
            lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
            if lines:
                result = json.loads(lines[-1][len(RESULT_PREFIX) :])
            elif proc.returncode == -9:
                result = {"status": "oom", "note": "worker killed by signal 9 (likely the OOM killer)"}
            else:
                result = {"status": "error", "note": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}
        except subprocess.TimeoutExpired:
            result = {"status": "timeout", "note": f"> {args.timeout:g} s"}
        result.update(mode=mode, size=args.size, precision=args.precision, wall_s=round(time.perf_counter() - start, 1))
        result["cpu_heap"] = args.cpu_heap
        result["tile"] = f"{args.tile}/{args.tile_overlap}" if mode == "tiled" else "-"
        rows.append(result)
        print(f"  {mode}: {json.dumps(result)}", flush=True)

    outputs = {r["mode"]: np.load(args.work_dir / f"{r['mode']}.npy") for r in rows if r["status"] == "ok"}
    for r in rows:
        if r["mode"] in outputs:
            r["psnr_vs_clean_db"] = round(psnr(outputs[r["mode"]], clean), 3)
    if len(outputs) == 2:
        tiled = next(r for r in rows if r["mode"] == "tiled")
        tiled["psnr_vs_one_pass_db"] = round(psnr(outputs["one-pass"], outputs["tiled"]), 2)
        one_pass = next(r for r in rows if r["mode"] == "one-pass")
        tiled["gap_db"] = round(one_pass["psnr_vs_clean_db"] - tiled["psnr_vs_clean_db"], 3)
    fields = ["mode", "size", "tile", "precision", "model", "status", "time_s", "peak_mem_mb", "baseline_mem_mb",
              "psnr_vs_clean_db", "gap_db", "psnr_vs_one_pass_db", "threads", "cpu_heap", "wall_s", "note"]  # fmt: skip
    with args.csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
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
