"""Quality against cost: LAformer and its peer networks trained, scored and timed the same way.

Every network is trained by one recipe (``experiment=demo``: the demo's photos and degradation, the same steps,
batch, patch, optimiser and seed), scored by the same protocol on the same photos (the best checkpoint on the
validation photos, then the held-out test photos once), and timed on the same machine by
``experiments/efficiency/benchmark.py`` (a fresh process per measurement, batch 1, fp32). It writes
``results.csv``, ``results.md`` and ``frontier.png`` (test PSNR against MACs and against latency) into ``--out``.

The study resumes: a network whose run folder holds a ``summary.json`` is not trained again (an interrupted run
continues from its ``last.ckpt``), and the benchmark keeps the timings already in ``timing.csv``.

    python experiments/peers/frontier.py                                  # the full study (see README.md)
    python experiments/peers/frontier.py --networks laformer:tiny,nafnet:small --steps 100
    python experiments/peers/frontier.py --timing none data.val_crop=96   # extra arguments go to laformer-train
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = Path(__file__).resolve().parent
BENCHMARK = ROOT / "experiments" / "efficiency" / "benchmark.py"
DEFAULT_NETWORKS = (
    "laformer:tiny",
    "laformer:small",
    "nafnet:small",
    "swinir:small",
    "restormer:small",
    "drunet:small",
    "dncnn:small",
)
TEST_SET = "demo-test"  # the demo's held-out photos
VAL_SET = "demo-val"
ANCHORS = ("nlmeans", "bm3d")  # classical methods the demo scores beside the network (callbacks.anchors)


def parse_network(name: str) -> tuple[str, str]:
    family, _, preset = name.strip().partition(":")
    if not family or not preset:
        raise SystemExit(f"--networks entries are FAMILY:PRESET (laformer:tiny, nafnet:small), got {name!r}")
    return family, preset


def label(name: str) -> str:
    return "_".join(parse_network(name))


def model_overrides(name: str) -> list[str]:
    """The laformer-train overrides that choose a network: ``model=tiny`` or ``model=nafnet model.preset=small``."""
    family, preset = parse_network(name)
    return [f"model={preset}"] if family == "laformer" else [f"model={family}", f"model.preset={preset}"]


def benchmark_name(name: str) -> tuple[str, str]:
    """(preset, attention) as ``benchmark.py`` names the network in its CSV."""
    family, preset = parse_network(name)
    return (preset, "rela") if family == "laformer" else (f"{family}:{preset}", "-")


def recipe_overrides(args: argparse.Namespace) -> list[str]:
    """What every network shares beyond the demo experiment."""
    overrides = ["experiment=demo", "logger=csv", f"seed={args.seed}"]
    if args.steps is not None:
        overrides += [f"trainer.max_steps={args.steps}", f"trainer.val_check_interval={max(1, args.steps // 2)}"]
    return overrides


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def train(name: str, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """Train one network into ``<out>/runs/<label>`` unless it has finished; returns its summary (or a failure)."""
    run_dir = args.out / "runs" / label(name)
    summary = read_summary(run_dir)
    if summary is not None:
        if args.steps is not None and summary.get("steps") != args.steps:
            raise SystemExit(
                f"{run_dir} holds a finished run of {summary.get('steps')} steps, not --steps {args.steps}: choose "
                "another --out, or delete that folder to retrain"
            )
        print(f"{label(name)}: finished earlier ({run_dir / 'summary.json'}), not retrained", flush=True)
        return summary
    overrides = [*recipe_overrides(args), *model_overrides(name), *extra, f"hydra.run.dir={run_dir}"]
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        overrides.append("ckpt_path=last")  # an interrupted run goes on from where it stopped
    command = [sys.executable, "-m", "laformer.cli.train", *overrides]
    print(f"{label(name)}: training ({' '.join(overrides)})", flush=True)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=not args.verbose, text=True)
    summary = read_summary(run_dir)
    if proc.returncode != 0 or summary is None:
        tail = (proc.stderr or "").strip().splitlines()[-3:] if not args.verbose else []
        print(f"{label(name)}: FAILED (exit {proc.returncode}) after {time.perf_counter() - start:.0f} s", flush=True)
        for line in tail:
            print(f"    {line}", flush=True)
        return {"failed": f"exit {proc.returncode}: {tail[-1] if tail else ''}"[:300], "run_dir": str(run_dir)}
    print(f"{label(name)}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return summary


def run_timing(networks: list[str], args: argparse.Namespace) -> Path | None:
    """Latency of every network at ``--sizes`` through the efficiency benchmark (resumable); its CSV path."""
    if args.timing == "none":
        return None
    csv_path = args.out / "timing.csv"
    presets = sorted({parse_network(n)[1] for n in networks if parse_network(n)[0] == "laformer"})
    models = [f"{f}:{p}" for f, p in map(parse_network, networks) if f != "laformer"]
    command = [sys.executable, str(BENCHMARK), "--device", "cpu", "--attention", "rela", "--sizes", *args.sizes]
    command += ["--presets", *presets] if presets else ["--presets", ""]
    command += ["--models", *models] if models else []
    command += ["--repeats", str(args.repeats), "--warmup", str(args.warmup), "--csv", str(csv_path), "--resume"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    print(f"timing: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=not args.verbose, text=True)
    return csv_path


def read_timing(csv_path: Path | None) -> dict[tuple[str, str, str], dict[str, str]]:
    import csv

    if csv_path is None or not csv_path.is_file():
        return {}
    with csv_path.open(newline="") as handle:
        return {(r["preset"], r["attention"], r["size"]): r for r in csv.DictReader(handle)}


def complexity(name: str, size: int) -> tuple[float, float]:
    """(parameters in millions, MACs in billions at size x size), counted on the meta device."""
    sys.path.insert(0, str(BENCHMARK.parent))
    from benchmark import build_model

    from laformer.models.complexity import count_macs, count_parameters

    model = build_model(*benchmark_name(name))
    return count_parameters(model) / 1e6, count_macs(model, size, size) / 1e9


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def result_rows(networks: list[str], summaries: dict[str, dict], timing: dict, sizes: list[str]) -> list[dict]:
    """One row per network, then one per classical anchor and the noisy input (no cost)."""
    rows = []
    for name in networks:
        summary = summaries.get(name, {})
        metrics = summary.get("metrics", {})
        params_m, macs_g = complexity(name, 256)
        row: dict[str, Any] = {
            "network": label(name),
            "family": parse_network(name)[0],
            "preset": parse_network(name)[1],
            "params_m": params_m,
            "macs_g": macs_g,
        }
        preset, attention = benchmark_name(name)
        for size in sizes:
            measured = timing.get((preset, attention, size), {})
            ok = measured.get("status") == "ok"
            row[f"latency_{size}_s"] = _float(measured.get("time_median_s")) if ok else None
        row.update(
            val_psnr=metrics.get("val/psnr"),
            val_ssim=metrics.get("val/ssim"),
            test_psnr=metrics.get(f"test/{TEST_SET}/psnr"),
            test_ssim=metrics.get(f"test/{TEST_SET}/ssim"),
            test_input_psnr=metrics.get(f"test/{TEST_SET}/input_psnr"),
            steps=summary.get("steps"),
            images_per_s=(summary.get("throughput") or {}).get("images_per_s"),
            wall_time_min=summary["wall_time_s"] / 60 if summary.get("wall_time_s") is not None else None,
            status="failed: " + summary["failed"] if "failed" in summary else ("ok" if summary else "not run"),
            run_dir=summary.get("run_dir"),
        )
        rows.append(row)
    # The classical anchors and the noisy input, scored on the same photos by the same protocol (from any run).
    scored = next((s.get("metrics", {}) for s in summaries.values() if s.get("metrics")), {})
    baselines = [("noisy input", "input")] + [(anchor, anchor) for anchor in ANCHORS]
    for title, key in baselines:
        test, val = scored.get(f"test/{TEST_SET}/{key}_psnr"), scored.get(f"val/{key}_psnr")
        if test is None and val is None:
            continue
        rows.append(
            {
                "network": title,
                "family": "classical" if key in ANCHORS else "input",
                "val_psnr": val,
                "val_ssim": scored.get(f"val/{key}_ssim"),
                "test_psnr": test,
                "test_ssim": scored.get(f"test/{TEST_SET}/{key}_ssim"),
                "status": "ok",
            }
        )
    return rows


def render_markdown(rows: list[dict], sizes: list[str], header: str) -> str:
    from laformer.reports import markdown_table

    columns = {
        "network": "network",
        "params_m": "params (M)",
        "macs_g": "MACs @256² (G)",
        **{f"latency_{s}_s": f"latency {s}² (s)" for s in sizes},
        "test_psnr": "test PSNR (dB)",
        "test_ssim": "test SSIM",
        "val_psnr": "val PSNR (dB)",
        "images_per_s": "train images/s",
        "wall_time_min": "job (min)",
        "status": "status",
    }
    formats = {
        "params_m": ".3f",
        "macs_g": ".2f",
        **{f"latency_{s}_s": ".3f" for s in sizes},
        "test_psnr": ".2f",
        "test_ssim": ".4f",
        "val_psnr": ".2f",
        "images_per_s": ".1f",
        "wall_time_min": ".1f",
    }
    return header + "\n\n" + markdown_table(rows, columns, formats)


def plot(rows: list[dict], sizes: list[str], path: Path) -> Path:
    """Test PSNR against MACs and against latency at the largest size, with the anchors as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    latency = f"latency_{sizes[-1]}_s" if sizes else None
    panels = [("macs_g", "MACs at 256 x 256 (G)")]
    if latency and any(r.get(latency) for r in rows):
        panels.append((latency, f"forward latency at {sizes[-1]} x {sizes[-1]} (s, CPU, fp32)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    networks = [r for r in rows if r.get("family") not in ("classical", "input")]
    score = "test_psnr" if any(r.get("test_psnr") for r in networks) else "val_psnr"
    for ax, (key, xlabel) in zip(axes[0], panels):
        for row in networks:
            if row.get(key) and row.get(score) is not None:
                marker = "*" if row["family"] == "laformer" else "o"
                ax.plot(row[key], row[score], marker, markersize=12 if marker == "*" else 8, label=row["network"])
                ax.annotate(
                    row["network"], (row[key], row[score]), textcoords="offset points", xytext=(5, 4), fontsize=8
                )
        for row in rows:
            if row.get("family") in ("classical", "input") and row.get(score) is not None:
                style = ":" if row["family"] == "input" else "--"
                ax.axhline(row[score], linestyle=style, color="0.5", linewidth=1)
                ax.annotate(row["network"], (0.01, row[score]), xycoords=("axes fraction", "data"), fontsize=8,
                            color="0.4", xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{'held-out test' if score == 'test_psnr' else 'validation'} PSNR (dB)")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("Quality against cost: same recipe, same photos, same machine (★ LAformer)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--networks", default=",".join(DEFAULT_NETWORKS), help="FAMILY:PRESET,... (default: %(default)s)"
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the demo's, 400)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results and run folders (default: beside this)")
    parser.add_argument("--timing", choices=("benchmark", "none"), default="benchmark", help="time the networks or not")
    parser.add_argument("--sizes", nargs="+", default=["256", "512"], help="square sides timed (default: 256 512)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per size (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the timing workers")
    parser.add_argument("--verbose", action="store_true", help="show the training and timing output")
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    args, extra = build_parser().parse_known_args(argv)
    unknown = [e for e in extra if e.startswith("--")]
    if unknown:
        raise SystemExit(f"unknown options {unknown}; laformer-train overrides are key=value")
    networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    for name in networks:
        parse_network(name)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summaries = {name: train(name, args, extra) for name in networks}
    timing = read_timing(run_timing(networks, args))
    rows = result_rows(networks, summaries, timing, args.sizes if args.timing != "none" else [])
    sizes = args.sizes if args.timing != "none" else []
    first = next((s for s in summaries.values() if s.get("steps")), {})
    header = (
        "# Quality against cost on the demo task\n\n"
        f"Recipe: `{' '.join(recipe_overrides(args) + extra)}` for every network ({first.get('steps', '?')} steps, "
        f"seed {args.seed}); test = the demo's held-out photos ({TEST_SET}), scored once with the checkpoint that was "
        f"best on the validation photos ({VAL_SET}). MACs counted at 256 x 256 on the meta device; latency: "
        f"experiments/efficiency/benchmark.py, CPU fp32, batch 1, median of {args.repeats}, channels-last, a fresh "
        f"process per measurement ({os.cpu_count()} cores). One seed: differences of a few 0.01 dB are noise."
    )
    from laformer.reports import write_csv

    write_csv(rows, args.out / "results.csv")
    (args.out / "results.md").write_text(render_markdown(rows, sizes, header))
    png = plot(rows, sizes, args.out / "frontier.png")
    print(render_markdown(rows, sizes, header))
    print(
        f"results: {args.out / 'results.csv'}, {args.out / 'results.md'}, {png} ({time.perf_counter() - start:.0f} s)"
    )
    return rows


if __name__ == "__main__":
    main()
