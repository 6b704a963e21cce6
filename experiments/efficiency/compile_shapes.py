"""Which compiled graph serves photos of many sizes best (issue 25): one dynamic graph, one static graph per size, or
static graphs for padded size buckets (``laformer.inference.compiled``, ``--compile-shapes``).

Each shape mode runs in a fresh process (``laformer.benchmarks.worker.run_isolated``) with an empty compile cache
(a temporary ``LAFORMER_CACHE``), so each compilation is paid where it happens, as a user's first run pays it: the
tiny LAformer RELA of the frontier (untrained weights: neither the compilation nor the speed depends on them), fp32,
batch 1, channels-last, ``torch.inference_mode()``. The photos come in the order given; for each size the process
records the first call (which compiles when the mode needs a new graph), the median of ``--repeats`` later calls,
the eager median of the same size in the same process, and inductor's graph compilations so far.

Per mode the summary gives: compilations, the time to the first output, the cold cost of the whole set (the sum of
first calls) and the steady time per photo against eager. The outputs are compared with eager too: ``dynamic`` and
``static`` compute exactly the network's own result; ``buckets`` pads (reflect) up to a multiple of ``--bucket`` and
crops, and LAformer's attention is global, so every pixel moves a little (the largest difference is printed).

    python experiments/efficiency/compile_shapes.py                          # 3 sizes, the 3 modes (~20 min)
    python experiments/efficiency/compile_shapes.py --quick --out /tmp/cs    # smoke run for the tests

Run it alone on the machine (compilations are CPU-bound and take minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from laformer.benchmarks import parse_size, size_label, time_calls
from laformer.benchmarks.machine import cpu_name
from laformer.benchmarks.worker import run_isolated
from laformer.reports import markdown_table, write_csv

HERE = Path(__file__).resolve().parent
NETWORKS = HERE.parent / "frontier" / "networks.yaml"
SHAPES = ("dynamic", "static", "buckets")
SIZES = ("375x500", "360x480", "512x512")  # height x width: two 4:3 photos of one 128-bucket (384x512), a square
COLUMNS = {
    "shapes": "graph",
    "size": "size",
    "first_call_s": "first call (s)",
    "latency_s": "then (s)",
    "eager_s": "eager (s)",
    "compiled_over_eager": "compiled / eager",
    "compilations": "compilations so far",
    "max_abs_diff": "max |compiled - eager|",
}
FORMATS = {"first_call_s": ".2f", "latency_s": ".3f", "eager_s": ".3f", "compiled_over_eager": ".2f",
           "max_abs_diff": ".1e"}  # fmt: skip
SUMMARY_COLUMNS = {
    "shapes": "graph",
    "compilations": "compilations",
    "to_first_output_s": "to the first output (s)",
    "cold_set_s": "the set, cold (s)",
    "steady_over_eager": "steady / eager",
    "max_abs_diff": "max |compiled - eager|",
}
SUMMARY_FORMATS = {"to_first_output_s": ".1f", "cold_set_s": ".1f", "steady_over_eager": ".2f", "max_abs_diff": ".1e"}


def measure_mode(shapes: str, sizes: Sequence[str], repeats: int, bucket: int) -> list[dict[str, Any]]:
    """In a fresh process: the tiny LAformer compiled with ``shapes``, fed each size in turn (see the module doc)."""
    import time

    from laformer.benchmarks.networks import build
    from laformer.inference.compiled import compile_counters, compile_network

    torch.manual_seed(0)
    overrides = yaml.safe_load(NETWORKS.read_text())["points"]["tiny"]["laformer_rela"]
    net = build(overrides).eval().to(memory_format=torch.channels_last)
    compiled = compile_network(net, "on", shapes=shapes, bucket=bucket)
    rows, started = [], time.perf_counter()
    with torch.inference_mode():
        for size in sizes:
            height, width = parse_size(size)
            x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height * width))
            x = x.contiguous(memory_format=torch.channels_last)
            first = time_calls(lambda x=x: compiled(x), 1).times[0]
            since_start = time.perf_counter() - started
            steady = time_calls(lambda x=x: compiled(x), repeats).times
            eager = time_calls(lambda x=x: net(x), repeats, warmup=1).times
            diff = float((compiled(x) - net(x)).abs().max())
            row = {
                "shapes": shapes, "size": size_label(height, width), "first_call_s": first,
                "since_start_s": since_start, "latency_s": sorted(steady)[len(steady) // 2],
                "eager_s": sorted(eager)[len(eager) // 2], "compilations": compile_counters()["fxgraph_cache_miss"],
                "max_abs_diff": diff,
            }  # fmt: skip
            row["compiled_over_eager"] = row["latency_s"] / row["eager_s"]
            rows.append(row)
            print(f"{shapes} {size}: first call {first:.1f} s, then {row['latency_s']:.3f} s (eager "
                  f"{row['eager_s']:.3f} s), compilations {row['compilations']}", flush=True)  # fmt: skip
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per mode: compilations, time to the first output, the set's cold cost, steady time against eager."""
    summary = []
    for shapes in dict.fromkeys(r["shapes"] for r in rows):
        mine = [r for r in rows if r["shapes"] == shapes and "latency_s" in r]
        if not mine:
            continue
        summary.append({
            "shapes": shapes, "compilations": mine[-1]["compilations"], "to_first_output_s": mine[0]["since_start_s"],
            "cold_set_s": sum(r["first_call_s"] for r in mine),
            "steady_over_eager": sum(r["latency_s"] for r in mine) / sum(r["eager_s"] for r in mine),
            "max_abs_diff": max(r["max_abs_diff"] for r in mine),
        })  # fmt: skip
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="height x width, in the order met")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bucket", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per mode before its process is killed")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64x64 then 56x60 (one bucket of 64), 1 repeat")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.bucket = ["64x64", "56x60"], 1, 64
    rows: list[dict[str, Any]] = []
    for shapes in args.shapes:
        with tempfile.TemporaryDirectory() as cache:  # an empty compile cache: every compilation is paid here
            try:
                rows += run_isolated(measure_mode, shapes, args.sizes, args.repeats, args.bucket,
                                     timeout=args.timeout, env={"LAFORMER_CACHE": cache})  # fmt: skip
            except Exception as exc:  # a mode that fails is a row saying why, not the end of the benchmark
                rows.append({"shapes": shapes, "size": "-", "status": f"error: {str(exc).splitlines()[0][:160]}"})
                print(f"{shapes}: {rows[-1]['status']}", file=sys.stderr)
    summary = summarise(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "results_compile_shapes.csv")
    machine = f"{cpu_name()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, torch {torch.__version__}"
    text = (f"Tiny LAformer RELA compiled three ways, each mode in a fresh process with an empty compile cache; "
            f"fp32, batch 1, channels-last, bucket {args.bucket} ({machine}).\n\n"
            + markdown_table(summary, SUMMARY_COLUMNS, SUMMARY_FORMATS) + "\n\nPer size, in the order met:\n\n"
            + markdown_table(rows, COLUMNS, FORMATS) + "\n")  # fmt: skip
    (args.out / "results_compile_shapes.md").write_text(text)
    print(text)
    return 0 if summary else 1


if __name__ == "__main__":
    raise SystemExit(main())
