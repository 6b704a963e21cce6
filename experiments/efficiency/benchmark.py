"""Forward latency and peak memory of LAformer presets and attention variants across resolutions.

Every (preset, attention, size) runs in a fresh subprocess (this script re-invoked with a hidden
``--worker`` flag), so one measurement's peak memory cannot pollute the next. In the worker:

- CPU memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the process's high-water mark), reported
  as the peak and as the peak minus the baseline taken right after model construction (``delta``: input,
  activations and workspace of the forward pass). On Linux the high-water mark is reset at the baseline
  (``/proc/self/clear_refs``), so the import of torch does not mask the forward pass of small inputs;
- CUDA memory is ``torch.cuda.max_memory_allocated`` (peak and the same delta over the model's allocation);
- latency is the median of ``--repeats`` timed forward passes after ``--warmup`` untimed ones, batch 1,
  under ``torch.inference_mode()`` (and ``torch.autocast`` for ``--precision bf16``).

A measurement that runs out of memory (``MemoryError``, a RuntimeError saying "out of memory" / "can't
allocate memory", or a child killed by signal 9) or past ``--timeout`` is recorded as ``oom`` / ``timeout``
and the larger sizes of that (preset, attention) pair are recorded as ``skipped``. The worker's address
space is capped by ``--memory-limit-gb`` so that an out-of-memory case fails inside the worker instead of
waking the kernel's OOM killer on a shared machine. Params and MACs (counted on the meta device) are
recorded for every row, whatever its status.

    python experiments/efficiency/benchmark.py --presets tiny,base --attention rela,linear,softmax \\
        --sizes 256,512,1024 --csv experiments/efficiency/results_cpu_scaling.csv
    python experiments/efficiency/benchmark.py --device cuda --precision bf16 --sizes 512,1024,2048,3840x2160
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import gc
import itertools
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

RESULT_PREFIX = "BENCHMARK_RESULT "
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "std::bad_alloc")
DEFAULT_DIR = Path(__file__).resolve().parent


def parse_size(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``3840x2160`` (width x height, as screens are named) -> (3840, 2160)."""
    text = text.strip().lower()
    if "x" in text:
        width, height = (int(part) for part in text.split("x"))
        return width, height
    return int(text), int(text)


def size_label(width: int, height: int) -> str:
    return str(width) if width == height else f"{width}x{height}"


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
    status: str = "pending"  # ok | oom | timeout | skipped | error
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
    rss_reset: bool | None = None  # CPU: whether the high-water mark was reset at the baseline
    worker_env: str = ""  # the worker's OMP wait policy and malloc setting
    load_before: float | None = None
    load_after: float | None = None
    note: str = ""


CSV_FIELDS = [f.name for f in fields(Row)]


# --- worker: one measurement in a fresh process ----------------------------------------------------


def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024**2 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0) so ru_maxrss measures from here on.

    Without it, ru_maxrss still holds the peak of importing torch and building the model, which can hide
    the forward pass of a small input entirely.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap pages back, so the baseline is what is in use
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or any(marker in str(exc).lower() for marker in OOM_MARKERS)


def run_worker(spec: dict) -> dict:
    """Build the model, time its forward pass, return the measurements as a dict.

    With ``deadline_s``, a worker whose remaining passes cannot finish in time (projected from the last
    pass) stops early and reports ``timeout``, instead of using up the whole timeout before being killed.
    """
    started = time.perf_counter()
    if spec.get("memory_limit_gb"):
        limit = int(spec["memory_limit_gb"] * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    import torch

    from laformer.models import LAformer

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    result: dict = {"threads": torch.get_num_threads()}
    try:
        torch.manual_seed(0)
        model = LAformer.from_preset(spec["preset"], attention=spec["attention"]).eval().to(device)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            baseline = torch.cuda.memory_allocated(device) / 1024**2
        else:
            gc.collect()
            result["rss_reset"] = _reset_peak_rss()
            baseline = _maxrss_mb()  # the current RSS when the reset worked, else the high-water mark so far
        x = torch.rand(1, 3, spec["height"], spec["width"], device=device)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec["precision"] == "bf16")

        def forward() -> float:
            start = time.perf_counter()
            with torch.inference_mode(), autocast:
                y = model(x)
            if cuda:
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - start
            if not torch.isfinite(y).all():
                raise FloatingPointError("non-finite output")
            return elapsed

        passes = spec["warmup"] + spec["repeats"]
        times = []
        for done in range(1, passes + 1):
            elapsed = forward()
            if done > spec["warmup"]:
                times.append(elapsed)
            projected = time.perf_counter() - started + elapsed * (passes - done)
            if done < passes and spec.get("deadline_s") and projected > spec["deadline_s"]:
                # Stop now rather than be killed at the timeout: the remaining passes cannot fit.
                result.update(
                    status="timeout",
                    note=f"stopped after pass {done}/{passes} of {elapsed:.1f} s: projected {projected:.0f} s "
                    f"> {spec['deadline_s']:g} s",
                )
                return result
        peak = torch.cuda.max_memory_allocated(device) / 1024**2 if cuda else _maxrss_mb()
        result.update(
            status="ok",
            times=times,
            peak_mem_mb=peak,
            baseline_mem_mb=baseline,
            delta_mem_mb=peak - baseline,
        )
    except Exception as exc:  # a measurement failing is a result, not a crash
        result.update(status="oom" if _is_oom(exc) else "error", note=f"{type(exc).__name__}: {exc}"[:300])
    return result


# --- parent: schedule, collect, report -----------------------------------------------------------


def _count(preset: str, attention: str, width: int, height: int, cache: dict) -> tuple[float, float]:
    from laformer.models import LAformer
    from laformer.models.complexity import count_macs, count_parameters

    key = (preset, attention, width, height)
    if key not in cache:
        model = LAformer.from_preset(preset, attention=attention)
        cache[key] = (count_parameters(model) / 1e6, count_macs(model, height, width) / 1e9)
    return cache[key]


def measure(row: Row, args: argparse.Namespace) -> None:
    spec = {
        "preset": row.preset,
        "attention": row.attention,
        "width": row.width,
        "height": row.height,
        "precision": row.precision,
        "device": row.device,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "threads": args.threads,
        "memory_limit_gb": args.memory_limit_gb if row.device == "cpu" else None,
        "deadline_s": max(1.0, args.timeout - 5.0),  # the margin covers the worker's start-up
    }
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    env = dict(os.environ)
    if args.omp_wait_policy != "default":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    if args.malloc == "heap":
        env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(2**40))
    row.worker_env = f"omp_wait_policy={args.omp_wait_policy};malloc={args.malloc}"
    row.load_before = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:  # subprocess.run has killed the worker
        row.status, row.note = "timeout", f"> {args.timeout:g} s (warmup {args.warmup} + repeats {args.repeats})"
        return
    finally:
        row.wall_s = round(time.perf_counter() - start, 2)
        row.load_after = round(os.getloadavg()[0], 2)

    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode == -signal.SIGKILL:
        row.status, row.note = "oom", "worker killed by signal 9 (likely the OOM killer)"
        return
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        oom = any(marker in (proc.stderr or "").lower() for marker in OOM_MARKERS)
        row.status, row.note = ("oom" if oom else "error"), f"exit {proc.returncode}: {tail[0]}"[:300]
        return
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    row.status, row.note, row.threads = result["status"], result.get("note", ""), result.get("threads")
    row.rss_reset = result.get("rss_reset")
    if row.status == "ok":
        times = result["times"]
        row.time_median_s = statistics.median(times)
        row.time_min_s = min(times)
        row.times_s = ";".join(f"{t:.4f}" for t in times)
        row.peak_mem_mb = result["peak_mem_mb"]
        row.baseline_mem_mb = result["baseline_mem_mb"]
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
        lines.append(
            f"| {r.preset} | {r.attention} | {r.size} | {r.precision} | {r.status} | {r.params_m:.2f} "
            f"| {r.macs_g:.1f} | {_fmt(r.time_median_s, '.3f')} | {_fmt(r.peak_mem_mb, '.0f')} "
            f"| {_fmt(r.delta_mem_mb, '.0f')} | {load} |"
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
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))


_INT_FIELDS = {"width", "height", "pixels", "threads"}
_FLOAT_FIELDS = {
    "params_m", "macs_g", "time_median_s", "time_min_s", "peak_mem_mb", "baseline_mem_mb", "delta_mem_mb",
    "wall_s", "load_before", "load_after",
}  # fmt: skip


def read_csv(path: Path) -> list[Row]:
    """Rows of an earlier run (``--resume``), with their types restored."""
    rows = []
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            values: dict = {}
            for name, text in record.items():
                if name not in CSV_FIELDS:
                    continue
                if name in _INT_FIELDS | _FLOAT_FIELDS | {"rss_reset"} and text == "":
                    values[name] = None
                elif name in _INT_FIELDS:
                    values[name] = int(text)
                elif name in _FLOAT_FIELDS:
                    values[name] = float(text)
                elif name == "rss_reset":
                    values[name] = text == "True"
                else:
                    values[name] = text
            rows.append(Row(**values))
    return rows


def _default_memory_limit_gb() -> float:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        return 0.0
    return round(0.75 * total, 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Forward latency and peak memory of LAformer, one fresh process per measurement."
    )
    parser.add_argument("--presets", default="tiny,base", help="comma-separated presets (tiny,small,base)")
    parser.add_argument("--attention", default="rela,linear,softmax", help="comma-separated attention variants")
    parser.add_argument(
        "--sizes", default="256,512,1024", help="comma-separated square sides or WxH, e.g. 256,512,3840x2160"
    )
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
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
    parser.add_argument("--csv", type=Path, default=None, help="default experiments/efficiency/results_<device>.csv")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the ok/oom/timeout rows already in --csv (same precision and device) and measure only the rest",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        print(RESULT_PREFIX + json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here")
    if args.repeats < 1 or args.warmup < 0:
        sys.exit("--repeats must be >= 1 and --warmup >= 0")
    csv_path = args.csv or DEFAULT_DIR / f"results_{args.device}.csv"
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    attentions = [a.strip() for a in args.attention.split(",") if a.strip()]
    sizes = sorted((parse_size(s) for s in args.sizes.split(",") if s.strip()), key=lambda wh: wh[0] * wh[1])

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    print(
        f"# LAformer forward benchmark: device {args.device} ({device_name}, {os.cpu_count()} cores), "
        f"torch {torch.__version__}, {args.precision}, batch 1, median of {args.repeats} after {args.warmup} "
        f"warmup, timeout {args.timeout:g} s, OMP_WAIT_POLICY {args.omp_wait_policy}, malloc {args.malloc}",
        flush=True,
    )
    cache: dict = {}
    rows: list[Row] = []
    done: dict[tuple, Row] = {}
    if args.resume and csv_path.exists():
        for old in read_csv(csv_path):
            if old.status in ("ok", "oom", "timeout") and (old.precision, old.device) == (args.precision, args.device):
                done[(old.preset, old.attention, old.size)] = old
        print(f"resuming: {len(done)} measurements kept from {csv_path}", flush=True)
    for preset in presets:
        for attention in attentions:
            failed = None
            for width, height in sizes:
                row = Row(
                    preset=preset,
                    attention=attention,
                    size=size_label(width, height),
                    width=width,
                    height=height,
                    pixels=width * height,
                    precision=args.precision,
                    device=args.device,
                )
                row.params_m, row.macs_g = _count(preset, attention, width, height, cache)
                if failed is not None:
                    row.status, row.note = "skipped", f"a smaller size ended in {failed}"
                elif (preset, attention, row.size) in done:
                    row = done[(preset, attention, row.size)]
                    if row.status in ("oom", "timeout"):
                        failed = row.status
                else:
                    measure(row, args)
                    if row.status in ("oom", "timeout"):
                        failed = row.status
                rows.append(row)
                write_csv(rows, csv_path)  # partial results survive an interrupted run
                print(
                    f"  {preset:5s} {attention:8s} {row.size:>9s}: {row.status:8s} "
                    f"time {_fmt(row.time_median_s, '.3f')} s, peak {_fmt(row.peak_mem_mb, '.0f')} MiB, "
                    f"delta {_fmt(row.delta_mem_mb, '.0f')} MiB, wall {_fmt(row.wall_s, '.1f')} s "
                    f"{row.note}".rstrip(),
                    flush=True,
                )

    print()
    print(render_table(rows))
    print()
    print("Scaling: each size over the previous one (linear in pixels: time x and memory x close to pixels x)")
    print()
    print(render_ratios(scaling_ratios(rows)))
    print()
    print(f"CSV: {csv_path}")


if __name__ == "__main__":
    main()
