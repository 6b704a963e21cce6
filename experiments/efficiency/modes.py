"""LAformer against NAFNet at the frontier's two cost points, in one process, per inference mode (issue 25).

For each point of ``experiments/frontier/networks.yaml`` (``tiny``: LAformer RELA tiny vs NAFNet width 16;
``small``: LAformer small vs NAFNet width 36) and each mode (``eager``: PyTorch, channels-last; ``compiled``:
``torch.compile`` through ``laformer.inference.compiled``; ``onnxruntime``: the exported graph in ONNX Runtime through
``laformer.inference.onnx_runtime``), the two networks of the point run *in the same mode*, pass by pass in
alternation (A B B A A B ...), so a load that changes during the run weighs on both alike. Each row: median latency
(``laformer.benchmarks.time_calls``, one call per turn), MACs at that size (counted, ``benchmarks.networks.cost``),
GMAC/s, and the LAformer / NAFNet latency ratio of the point and mode. ``--per-pixel`` adds each network's eager time
per megapixel from 512² to 2048², and its ratio to the time per megapixel at the smallest size.

``--cpu-heap on off`` measures each mode under both of glibc's policies for large blocks, the pair always under the
same one: ``on`` keeps freed memory in the process (``laformer.inference.cpu_heap``, what ``laformer-restore`` switches
on where the pass fits), ``off`` is glibc's default, which page-faults and zeroes every map above 32 MiB anew. ONNX
Runtime keeps its own memory arena, so it runs once, under the first policy given.

Compiling and exporting happen before timing (their cost is not in the latency; ``--compile-shapes`` picks the
graph). fp32, batch 1, ``torch.inference_mode()``. Run it alone on the machine (the figures are only as clean as the
machine is idle); ``--quick`` is a smoke run for the tests, not a measurement.

    python experiments/efficiency/modes.py                                   # both points, 3 modes, 512²
    python experiments/efficiency/modes.py --per-pixel                       # + per-pixel time 512² .. 2048²
    python experiments/efficiency/modes.py --quick --out /tmp/modes          # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from laformer.benchmarks import parse_size, size_label, time_calls
from laformer.benchmarks.machine import cpu_name
from laformer.benchmarks.networks import build, cost
from laformer.reports import markdown_table, write_csv

HERE = Path(__file__).resolve().parent
NETWORKS = HERE.parent / "frontier" / "networks.yaml"
MODES = ("eager", "compiled", "onnxruntime")
PAIR = ("laformer_rela", "nafnet")
PER_PIXEL_SIZES = ("512", "1024", "1536", "2048")
HEAP_POLICIES = ("on", "off")
COLUMNS = {
    "point": "point",
    "mode": "mode",
    "cpu_heap": "freed memory kept",
    "network": "network",
    "size": "size",
    "macs_g": "GMACs",
    "latency_s": "latency (s)",
    "gmac_per_s": "GMAC/s",
    "laformer_over_nafnet": "LAformer / NAFNet",
    "status": "status",
}
FORMATS = {"macs_g": ".2f", "latency_s": ".3f", "gmac_per_s": ".1f", "laformer_over_nafnet": ".2f"}
PIXEL_COLUMNS = {
    "cpu_heap": "freed memory kept",
    "network": "network",
    "size": "size",
    "latency_s": "latency (s)",
    "s_per_megapixel": "s / Mpx",
    "vs_smallest": "vs smallest size",
}
PIXEL_FORMATS = {"latency_s": ".3f", "s_per_megapixel": ".3f", "vs_smallest": ".2f"}


def frontier_pairs(points: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """``{point: {"laformer_rela": overrides, "nafnet": overrides}}`` from the frontier's networks file."""
    table = yaml.safe_load(NETWORKS.read_text())["points"]
    return {point: {name: list(table[point][name]) for name in PAIR} for point in points}


def runner(net: nn.Module, mode: str, shapes: str, workdir: Path, name: str) -> Callable[[torch.Tensor], Any]:
    """``net`` (eval, channels-last) behind ``mode``: the callable that is timed."""
    if mode == "eager":
        return net
    if mode == "compiled":
        from laformer.inference.compiled import compile_network

        return compile_network(net, "on", shapes=shapes)
    from laformer.inference.onnx_export import export_onnx
    from laformer.inference.onnx_runtime import OnnxRuntimeNetwork
    from laformer.models.registry import network_info

    path = export_onnx(net, workdir / f"{name}.onnx")
    return OnnxRuntimeNetwork(path, network_info(net))


def heap_policy(setting: str) -> contextlib.AbstractContextManager:
    """``on``: freed memory kept in the process for the block (as ``laformer-restore`` runs a pass that fits);
    ``off``: glibc's default."""
    if setting == "on":
        from laformer.inference.cpu_heap import reuse_freed_memory

        return reuse_freed_memory(0)  # nothing to fit: the benchmark's maps are small beside the machine's memory
    return contextlib.nullcontext(False)


def mode_policies(mode: str, policies: Sequence[str]) -> list[str]:
    """The heap policies a mode is measured under: ONNX Runtime allocates from its own arena, so once."""
    return list(policies[:1]) if mode == "onnxruntime" else list(policies)


def alternate(runners: dict[str, Callable], x: torch.Tensor, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Times of each runner on ``x``, one call per turn, the order flipped every round (A B, B A, ...)."""
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for name in names:
            for _ in range(warmup):
                runners[name](x)
        for round_ in range(repeats):
            for name in names if round_ % 2 == 0 else names[::-1]:
                times[name] += time_calls(lambda n=name: runners[n](x), 1).times
    return times


def measure_modes(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    height, width = parse_size(args.size)
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    for point, pair in frontier_pairs(args.points).items():
        nets = {name: build(overrides).eval().to(memory_format=torch.channels_last) for name, overrides in pair.items()}
        macs = {name: cost(overrides, height, width)[1] for name, overrides in pair.items()}
        for mode in args.modes:
            try:
                runners = {
                    name: runner(net, mode, args.compile_shapes, workdir, f"{point}_{name}")
                    for name, net in nets.items()
                }
            except Exception as exc:  # a mode that cannot run is a row saying why, not the end of the study
                base = {"point": point, "mode": mode, "size": size_label(height, width)}
                rows += [
                    {**base, "network": name, "status": f"error: {str(exc).splitlines()[0][:160]}"} for name in nets
                ]
                continue
            for setting in mode_policies(mode, args.cpu_heap):
                base = {"point": point, "mode": mode, "cpu_heap": setting, "size": size_label(height, width)}
                try:
                    with heap_policy(setting):
                        times = alternate(runners, x, args.repeats, args.warmup)
                except Exception as exc:
                    rows += [
                        {**base, "network": name, "status": f"error: {str(exc).splitlines()[0][:160]}"} for name in nets
                    ]
                    continue
                latency = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
                ratio = latency["laformer_rela"] / latency["nafnet"]
                for name in nets:
                    rows.append(
                        {
                            **base,
                            "network": name,
                            "macs_g": macs[name],
                            "latency_s": latency[name],
                            "gmac_per_s": macs[name] / latency[name],
                            "laformer_over_nafnet": ratio if name == "laformer_rela" else None,
                            "times_s": ";".join(f"{t:.4f}" for t in times[name]),
                            "status": "ok",
                        }
                    )
                summary = ", ".join(f"{n} {latency[n]:.3f} s" for n in nets)
                print(f"{point} {mode} (freed memory kept: {setting}): {summary}; ratio {ratio:.2f}", flush=True)
    return rows


def measure_per_pixel(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Eager time per megapixel of each network of the first point, smallest size first (alternating the pair)."""
    rows = []
    point, pair = next(iter(frontier_pairs(args.points[:1]).items()))
    nets = {name: build(overrides).eval().to(memory_format=torch.channels_last) for name, overrides in pair.items()}
    for setting in args.cpu_heap:
        smallest: dict[str, float] = {}
        for size in args.pixel_sizes:
            height, width = parse_size(size)
            x = torch.rand(1, 3, height, width).contiguous(memory_format=torch.channels_last)
            with heap_policy(setting):
                times = alternate(dict(nets), x, args.repeats, args.warmup)
            for name, t in times.items():
                latency = sorted(t)[len(t) // 2]
                per_mpx = latency / (height * width / 1e6)
                smallest.setdefault(name, per_mpx)
                rows.append(
                    {
                        "point": point,
                        "cpu_heap": setting,
                        "network": name,
                        "size": size_label(height, width),
                        "latency_s": latency,
                        "s_per_megapixel": per_mpx,
                        "vs_smallest": per_mpx / smallest[name],
                    }
                )
            report = ", ".join(f"{r['network']} {r['s_per_megapixel']:.3f} s/Mpx" for r in rows[-2:])
            print(f"per pixel {size} (freed memory kept: {setting}): {report}", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", nargs="+", choices=("tiny", "small"), default=["tiny", "small"])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--size", default="512")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile-shapes", choices=("dynamic", "static", "buckets"), default="static")
    parser.add_argument("--cpu-heap", nargs="+", choices=HEAP_POLICIES, default=["on"],
                        help="keep freed memory in the process (on, as laformer-restore does where it fits) or "
                        "glibc's default (off); both: --cpu-heap on off")  # fmt: skip
    parser.add_argument("--per-pixel", action="store_true", help="also eager time per megapixel, 512² to 2048²")
    parser.add_argument("--pixel-sizes", nargs="+", default=list(PER_PIXEL_SIZES))
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny point, 64², eager + onnxruntime, 1 pass")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.size, args.repeats, args.warmup = ["tiny"], "64", 1, 1
        args.modes = [m for m in args.modes if m != "compiled"] if len(args.modes) == len(MODES) else args.modes
        args.pixel_sizes = ["64", "96"]
    machine = f"{cpu_name()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, torch {torch.__version__}"
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure_modes(args, Path(tmp))
    write_csv(rows, args.out / "results_modes.csv")
    text = f"fp32, batch 1, channels-last, alternating the pair pass by pass ({machine}).\n\n"
    text += markdown_table(rows, COLUMNS, FORMATS)
    if args.per_pixel:
        pixel_rows = measure_per_pixel(args)
        write_csv(pixel_rows, args.out / "results_per_pixel.csv")
        text += "\n\nEager time per megapixel:\n\n" + markdown_table(pixel_rows, PIXEL_COLUMNS, PIXEL_FORMATS)
    (args.out / "results_modes.md").write_text(text + "\n")
    print(text)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
