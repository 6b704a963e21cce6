"""Forward latency and peak memory of LAformer presets and attention variants, and of peer networks, across
resolutions.

``--presets`` names LAformer presets (each run with every ``--attention``); ``--models`` names peer networks as
``FAMILY:PRESET`` (``nafnet:small``, ``restormer:base``, ...; ``laformer.models.peers``, needs spandrel), which
appear in the table with that name as their preset and ``-`` as their attention.

Every (preset, attention, size) runs in a fresh spawned process (``laformer.benchmarks``: ``run_isolated`` of
``measure.forward_benchmark``), so one measurement's peak memory cannot pollute the next. Memory is the peak
(``PeakMemory``: the resident set sampled by psutil on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU) and
the peak minus the baseline taken right after the network is built (``delta``: input, activations and workspace of
the forward pass); latency is the median of ``--repeats`` timed forward passes after ``--warmup`` untimed ones,
batch 1, under ``torch.inference_mode()`` (and ``torch.autocast`` for ``--precision bf16``). Networks are built
from their ``model=`` configs (``laformer.benchmarks.networks``).

A measurement that runs out of memory (``MemoryError``, ``torch.OutOfMemoryError``, a RuntimeError saying
"out of memory" / "can't allocate memory", or a worker killed by signal 9) or past ``--timeout`` is recorded as
``oom`` / ``timeout`` and the larger sizes of that (preset, attention) pair are recorded as ``skipped``. The
worker's address space is capped by ``--memory-limit-gb`` so that an out-of-memory case fails inside the
worker instead of waking the kernel's OOM killer on a shared machine.

Two cases are not run at all, and say so with an estimate extrapolated from the largest size measured for the
same pair (time by the ratio of MACs, memory as baseline + forward memory x the ratio of pixels):

- ``oom-predicted``: the estimated peak exceeds ``--max-mem-gb`` (default: the machine's RAM, or the GPU's);
- ``skipped (quadratic)``: softmax attention above ``--softmax-max-pixels``, whose time grows with pixels^2.

Params and MACs (counted on the meta device) are recorded for every row, whatever its status. The table and
the scaling ratios (each size over the one below) are printed and written beside the CSV as Markdown;
``--plot`` also draws time and memory against megapixels (``plot.py``).

    python experiments/efficiency/benchmark.py --presets tiny base --attention rela linear softmax \\
        --sizes 256 512 1024 2048 3840x2160 --csv experiments/efficiency/results_cpu.csv --plot
    python experiments/efficiency/benchmark.py --device cuda --precision bf16 --sizes 512 1024 2048 3840x2160
    python experiments/efficiency/benchmark.py --presets base --attention rela --models nafnet:base restormer:base \
        --sizes 256 512 --csv experiments/efficiency/results_peers_cpu.csv
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import psutil

from laformer.benchmarks import WorkerCrashed, WorkerTimeout, parse_size, run_isolated, size_label
from laformer.benchmarks.machine import device_name
from laformer.benchmarks.measure import forward_benchmark
from laformer.benchmarks.networks import PEER_ATTENTION, cost, model_overrides, network_config
from laformer.reports import read_dataclass_rows
from laformer.reports import write_csv as write_records

DEFAULT_DIR = Path(__file__).resolve().parent
DEFAULT_SIZES = ("256", "512", "1024", "2048", "3840x2160")
RESUMABLE = ("ok", "oom", "timeout")


@dataclass
class Row:
    preset: str
    attention: str
    size: str
    width: int
    height: int
    pixels: int
    precision: str
    device: str
    status: str = "pending"  # ok | oom | oom-predicted | timeout | skipped | skipped (quadratic) | error
    params_m: float = 0.0
    macs_g: float = 0.0
    time_median_s: float | None = None
    time_min_s: float | None = None
    times_s: str = ""
    peak_mem_mb: float | None = None
    baseline_mem_mb: float | None = None
    delta_mem_mb: float | None = None
    wall_s: float | None = None
    threads: int | None = None
    rss_reset: bool | None = None  # CPU: whether the peak was measured from the baseline (not the process start)
    worker_env: str = ""  # the worker's OMP wait policy and malloc setting
    load_before: float | None = None
    load_after: float | None = None
    est_time_s: float | None = None  # oom-predicted / skipped (quadratic): extrapolated, not measured
    est_peak_mem_mb: float | None = None
    note: str = ""


CSV_FIELDS = [f.name for f in fields(Row)]


# --- schedule, collect, report ------------------------------------------------------------------------


def measure(row: Row, args: argparse.Namespace) -> None:
    """Measure ``row`` in a fresh worker process and fill in its status, times and memory."""
    spec = {
        "config": network_config(model_overrides(row.preset, row.attention)),
        "height": row.height,
        "width": row.width,
        "precision": row.precision,
        "device": row.device,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "threads": args.threads,
        "channels_last": args.memory_format == "channels_last",
        "memory_limit_gb": args.memory_limit_gb if row.device == "cpu" else None,
        "deadline_s": max(1.0, args.timeout - 5.0),  # the margin covers the worker's start-up
    }
    env = {} if args.omp_wait_policy == "default" else {"OMP_WAIT_POLICY": args.omp_wait_policy.upper()}
    if args.malloc == "heap":
        env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(2**40))
    row.worker_env = f"omp_wait_policy={args.omp_wait_policy};malloc={args.malloc};memory_format={args.memory_format}"
    row.load_before = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    try:
        result = run_isolated(forward_benchmark, spec, timeout=args.timeout, env=env)
    except WorkerTimeout:
        row.status, row.note = "timeout", f"> {args.timeout:g} s (warmup {args.warmup} + repeats {args.repeats})"
        return
    except WorkerCrashed as exc:
        row.status, row.note = ("oom" if exc.out_of_memory else "error"), str(exc)
        return
    finally:
        row.wall_s = round(time.perf_counter() - start, 2)
        row.load_after = round(os.getloadavg()[0], 2)
    row.status, row.note, row.threads = result["status"], result.get("note", ""), result.get("threads")
    row.rss_reset = result.get("rss_reset")
    if row.status == "ok":
        row.time_median_s, row.time_min_s = statistics.median(result["times"]), min(result["times"])
        row.times_s = ";".join(f"{t:.4f}" for t in result["times"])
        row.peak_mem_mb, row.baseline_mem_mb = result["peak_mem_mb"], result["baseline_mem_mb"]
        row.delta_mem_mb = result["delta_mem_mb"]


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_table(rows: list[Row]) -> str:
    header = (
        "| preset | attention | size | precision | status | params (M) | MACs (G) | time median (s) "
        "| peak mem (MiB) | delta mem (MiB) | load |"
    )
    lines = [header, "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        load = "-" if r.load_before is None else f"{r.load_before:.1f}/{r.load_after:.1f}"
        time_cell = _fmt(r.time_median_s, ".3f") if r.est_time_s is None else f"~{r.est_time_s:.0f} (est.)"
        mem_cell = _fmt(r.peak_mem_mb, ".0f") if r.est_peak_mem_mb is None else f"~{r.est_peak_mem_mb:.0f} (est.)"
        lines.append(
            f"| {r.preset} | {r.attention} | {r.size} | {r.precision} | {r.status} | {r.params_m:.2f} "
            f"| {r.macs_g:.1f} | {time_cell} | {mem_cell} | {_fmt(r.delta_mem_mb, '.0f')} | {load} |"
        )
    return "\n".join(lines)


def scaling_ratios(rows: list[Row]) -> list[dict]:
    """Each size over the previous one of the same (preset, attention): pixels, MACs, time, memory."""
    ratios = []
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.preset, r.attention), []).append(r)
    for (preset, attention), group in groups.items():
        group = sorted(group, key=lambda r: r.pixels)
        for prev, cur in itertools.pairwise(group):
            if prev.status != "ok" or cur.status != "ok":
                continue
            ratios.append(
                {
                    "preset": preset,
                    "attention": attention,
                    "step": f"{prev.size}->{cur.size}",
                    "pixels": cur.pixels / prev.pixels,
                    "macs": cur.macs_g / prev.macs_g,
                    "time": cur.time_median_s / prev.time_median_s,
                    "delta_mem": cur.delta_mem_mb / prev.delta_mem_mb if prev.delta_mem_mb else None,
                    "peak_mem": cur.peak_mem_mb / prev.peak_mem_mb,
                }
            )
    return ratios


def render_ratios(ratios: list[dict]) -> str:
    lines = [
        "| preset | attention | step | pixels x | MACs x | time x | delta mem x | peak mem x |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in ratios:
        lines.append(
            f"| {r['preset']} | {r['attention']} | {r['step']} | {r['pixels']:.2f} | {r['macs']:.2f} "
            f"| {r['time']:.2f} | {_fmt(r['delta_mem'], '.2f')} | {r['peak_mem']:.2f} |"
        )
    return "\n".join(lines)


def write_csv(rows: list[Row], path: Path) -> None:
    write_records([asdict(r) for r in rows], path, columns=CSV_FIELDS)


def read_csv(path: Path) -> list[Row]:
    """Rows of an earlier run (``--resume``), with their types restored."""
    return read_dataclass_rows(path, Row)


def _physical_memory_gb() -> float:
    return psutil.virtual_memory().total / 1024**3


def _default_memory_limit_gb() -> float:
    return round(0.75 * _physical_memory_gb(), 1)


def estimate(reference: Row | None, row: Row) -> tuple[float | None, float | None]:
    """``row``'s time and peak memory extrapolated from a measured smaller size of the same pair.

    Time scales with the MACs (quadratic for softmax, linear otherwise); memory is the reference's baseline
    (model and runtime) plus its forward-pass memory scaled by the pixels (softmax runs its queries in
    fixed-size chunks, so its memory grows linearly too).
    """
    if reference is None or reference.status != "ok" or not reference.macs_g or not reference.pixels:
        return None, None
    est_time = reference.time_median_s * row.macs_g / reference.macs_g
    est_mem = reference.baseline_mem_mb + reference.delta_mem_mb * row.pixels / reference.pixels
    return est_time, est_mem


def plan(row: Row, reference: Row | None, args: argparse.Namespace) -> str | None:
    """Why ``row`` is not worth running (sets its status, estimates and note), or None to measure it."""
    est_time, est_mem = estimate(reference, row)
    source = f"extrapolated from {reference.size}" if est_time is not None else "no smaller size measured"
    if row.attention == "softmax" and row.pixels > args.softmax_max_pixels:
        row.status, row.est_time_s, row.est_peak_mem_mb = "skipped (quadratic)", est_time, est_mem
        row.note = f"softmax above {args.softmax_max_pixels} pixels (--softmax-max-pixels); {source}"
        return row.status
    if est_mem is not None and args.max_mem_gb and est_mem > args.max_mem_gb * 1024:
        row.status, row.est_time_s, row.est_peak_mem_mb = "oom-predicted", est_time, est_mem
        row.note = f"estimated peak {est_mem / 1024:.1f} GiB > --max-mem-gb {args.max_mem_gb:g}; {source}"
        return row.status
    return None


def _split(values: list[str]) -> list[str]:
    """``["tiny,base", "small"]`` -> ``["tiny", "base", "small"]``: lists given with spaces, commas or both."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Forward latency and peak memory of LAformer (and peer networks), one fresh process per "
        "measurement."
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "base"], help="LAformer presets (tiny small base)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=[],
        help="peer networks as FAMILY:PRESET, e.g. nafnet:small swinir:base restormer:base drunet:small dncnn:base",
    )
    parser.add_argument("--attention", nargs="+", default=["rela", "linear", "softmax"], help="attention variants")
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="square sides or WIDTHxHEIGHT, e.g. 256 512 3840x2160 (default: %(default)s)",
    )
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present")
    parser.add_argument("--repeats", type=int, default=3, help="timed forward passes (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forward passes before timing")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement (whole worker)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the worker")
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=_default_memory_limit_gb(),
        help="address-space cap of a CPU worker (0: none); default 75%% of physical memory",
    )
    parser.add_argument(
        "--max-mem-gb",
        type=float,
        default=None,
        help="record 'oom-predicted' without running when the extrapolated peak exceeds this (0: never); "
        "default the machine's RAM (CPU) or the GPU's memory",
    )
    parser.add_argument(
        "--softmax-max-pixels",
        type=int,
        default=256 * 256,
        help="softmax attention above this many pixels is recorded as 'skipped (quadratic)' with an estimate",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=("passive", "active", "default"),
        default="passive",
        help="OMP_WAIT_POLICY of the worker (default passive: OpenMP threads that spin while another process "
        "holds the cores slow a shared machine's measurements several-fold; 'default' leaves the environment)",
    )
    parser.add_argument(
        "--malloc",
        choices=("default", "heap"),
        default="default",
        help="glibc malloc of the worker. default: tensors above 32 MiB get fresh mmap pages, page-faulted "
        "anew on every forward pass (large inputs pay it as system time). heap: MALLOC_MMAP_MAX_=0 and no "
        "trimming, so freed memory is reused; faster at large sizes, with a higher (fragmented) peak RSS",
    )
    parser.add_argument(
        "--memory-format",
        choices=("channels_last", "contiguous"),
        default="channels_last",
        help="memory layout of weights and input. channels_last (default, as laformer-restore uses on the CPU): "
        "the per-block LayerNorm over channels needs no transposed copy; about 1.5x faster on the CPU",
    )
    parser.add_argument("--csv", type=Path, default=None, help="default experiments/efficiency/results_<device>.csv")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the ok/oom/timeout rows already in --csv (same precision and device) and measure only the rest",
    )
    parser.add_argument("--plot", action="store_true", help="also draw the CSV as <csv>.png (plot.py)")
    return parser


def write_report(rows: list[Row], path: Path, header: str) -> str:
    """The results table and scaling ratios as Markdown, printed and written to ``path``."""
    text = (
        f"{header}\n\n{render_table(rows)}\n\n"
        "Scaling: each size over the previous one (linear in pixels: time x and memory x close to pixels x)\n\n"
        f"{render_ratios(scaling_ratios(rows))}\n"
    )
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here")
    if args.repeats < 1 or args.warmup < 0:
        sys.exit("--repeats must be >= 1 and --warmup >= 0")
    if args.max_mem_gb is None:
        cuda_gb = torch.cuda.get_device_properties(0).total_memory / 1024**3 if args.device == "cuda" else None
        args.max_mem_gb = round(cuda_gb or _physical_memory_gb(), 1)
    csv_path = args.csv or DEFAULT_DIR / f"results_{args.device}.csv"
    presets, attentions = _split(args.presets), _split(args.attention)
    # (preset, attention) pairs: every LAformer preset with every attention, then each peer network once
    pairs = [(p, a) for p in presets for a in attentions] + [(m, PEER_ATTENTION) for m in _split(args.models)]
    sizes = sorted((parse_size(s) for s in _split(args.sizes)), key=lambda hw: hw[0] * hw[1])

    header = (
        f"# Forward benchmark: device {args.device} ({device_name(args.device)}, {os.cpu_count()} cores), "
        f"torch {torch.__version__}, {args.precision}, batch 1, median of {args.repeats} after {args.warmup} "
        f"warmup, timeout {args.timeout:g} s, max mem {args.max_mem_gb:g} GiB, OMP_WAIT_POLICY "
        f"{args.omp_wait_policy}, malloc {args.malloc}, {args.memory_format}"
    )
    print(header, flush=True)
    rows: list[Row] = []
    done: dict[tuple, Row] = {}
    others: list[Row] = []  # earlier rows outside this run's grid: kept in the CSV as they are
    if args.resume and csv_path.exists():
        grid = {(p, a, size_label(h, w)) for p, a in pairs for h, w in sizes}
        for old in read_csv(csv_path):
            same_setting = (old.precision, old.device) == (args.precision, args.device)
            if not same_setting or (old.preset, old.attention, old.size) not in grid:
                others.append(old)
            elif old.status in RESUMABLE:
                done[(old.preset, old.attention, old.size)] = old
        print(f"resuming: {len(done)} measurements kept from {csv_path}", flush=True)
    for preset, attention in pairs:
        failed = None
        reference: Row | None = None  # the largest size measured so far for this pair
        for height, width in sizes:
            row = Row(
                preset=preset,
                attention=attention,
                size=size_label(height, width),
                width=width,
                height=height,
                pixels=width * height,
                precision=args.precision,
                device=args.device,
            )
            row.params_m, row.macs_g = cost(model_overrides(preset, attention), height, width)
            if attention == "softmax" and plan(row, reference, args):
                pass  # recorded as skipped (quadratic), with an estimate
            elif failed is not None:
                row.status, row.note = "skipped", f"a smaller size ended in {failed}"
            elif (preset, attention, row.size) in done:
                row = done[(preset, attention, row.size)]
                if row.status in ("oom", "timeout"):
                    failed = row.status
            elif plan(row, reference, args):
                failed = row.status
            else:
                measure(row, args)
                if row.status in ("oom", "timeout"):
                    failed = row.status
            if row.status == "ok":
                reference = row
            rows.append(row)
            write_csv(others + rows, csv_path)  # partial results survive an interrupted run
            estimated = "" if row.est_time_s is None else f" est. time {row.est_time_s:.0f} s,"
            estimated += "" if row.est_peak_mem_mb is None else f" est. peak {row.est_peak_mem_mb:.0f} MiB,"
            print(
                f"  {preset:5s} {attention:8s} {row.size:>9s}: {row.status:8s} "
                f"time {_fmt(row.time_median_s, '.3f')} s, peak {_fmt(row.peak_mem_mb, '.0f')} MiB, "
                f"delta {_fmt(row.delta_mem_mb, '.0f')} MiB, wall {_fmt(row.wall_s, '.1f')} s,{estimated} "
                f"{row.note}".rstrip(" ,"),
                flush=True,
            )

    report_path = csv_path.with_suffix(".md")
    print()
    print(write_report(others + rows, report_path, header))
    print(f"CSV: {csv_path}\nTable: {report_path}")
    if args.plot:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from plot import plot_results

        print(f"Plot: {plot_results(csv_path)}")


if __name__ == "__main__":
    main()
