"""The quality-versus-cost frontier: LAformer and its peers at two matched cost points, trained, scored and timed alike.

One command does it all, resumably:

1. **Match.** Every network of ``networks.yaml`` is built from its ``laformer-train`` model overrides and its MACs
   at 256 x 256 are counted; a network more than ``tolerance`` (25 %) away from its point's reference (LAformer RELA)
   stops the study before anything trains.
2. **Train.** One ``laformer-train`` job per network, point and seed, with one recipe for all (``experiment=demo``
   with ``--steps`` and the suite's default learning rate), into ``<out>/runs/<point>/<network>/seed<k>/``. A job
   with a ``summary.json`` of the same overrides is skipped, a started one resumes from its ``last.ckpt``, and one
   whose summary was written under other overrides is refused: ``laformer.sweeps.start_job`` decides, as for
   every multirun job.
3. **Measure**, in this process, one network after another: forward latency at ``--sizes[0]`` (median of
   ``--repeats`` after ``--warmup``), the peak-memory growth of one pass at each size, and from those whether a
   3840 x 2160 pass fits in ``--memory-gb`` (extrapolated linearly in pixels, or measured with ``--full-4k``).
   ``measurements.csv`` keeps what was measured, so a rerun measures only what is missing.
4. **Report.** ``results.csv`` / ``results.md`` (mean and sd over seeds of the held-out PSNR, the paired difference
   to LAformer RELA at the same point with its 95 % t-interval, cost, the Pareto front), ``results_per_seed.csv``
   and ``frontier.png`` (PSNR against latency and against MACs, the front drawn).

    python experiments/frontier/frontier.py                          # both points, 7 networks, seeds 1 2 (README)
    python experiments/frontier/frontier.py --points tiny --networks laformer_rela,nafnet --seeds 1
    python experiments/frontier/frontier.py --measure none           # train and report, no timing
    python experiments/frontier/frontier.py --stage lr               # issue 26's stages: lr, choices, frontier, ...
    python experiments/frontier/frontier.py trainer=gpu data=dfwb --test-set cbsd68 --device cuda   # a GPU cluster

Run it alone on the machine when it measures: two PyTorch processes on two cores slow each other far more than
twice (``measurements.csv`` records the load average before and after each network).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laformer.benchmarks.cost_points import off_point_message
from laformer.benchmarks.inputs import random_image
from laformer.benchmarks.measure import forward_latency, forward_memory
from laformer.benchmarks.memory import current_mb
from laformer.benchmarks.networks import build as build_from_overrides
from laformer.benchmarks.networks import cost as count_cost
from laformer.reports import figure, markdown_table, mean_sd, paired_t_interval, read_csv, write_csv
from laformer.reports import pareto_front as pareto
from laformer.runs import read_summary

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NETWORKS_FILE = HERE / "networks.yaml"
RECIPE = ("experiment=demo", "logger=csv", "callbacks.progress_bar=null")
ANCHORS = ("nlmeans", "bm3d")
FOUR_K = (2160, 3840)  # height, width
MEASURE_FIELDS = (
    "point", "network", "device", "size", "latency_s", "latency_all_s", "peak_delta_mb", "baseline_mb",
    "delta_2_mb", "est_4k_gb", "measured_4k_gb", "fits_4k", "load_before", "load_after", "note",
)  # fmt: skip


@dataclass(frozen=True)
class Network:
    point: str
    name: str
    overrides: tuple[str, ...]
    reference: bool  # the point's first entry: the network every other one is compared with

    @property
    def key(self) -> str:
        return f"{self.point}/{self.name}"


# --- the networks and their cost ----------------------------------------------------------------------------


def load_networks(path: Path = NETWORKS_FILE) -> tuple[list[Network], float]:
    """The networks of ``path`` in file order, and the MAC tolerance."""
    from omegaconf import OmegaConf

    spec = OmegaConf.to_container(OmegaConf.load(path))
    networks = []
    for point, entries in (spec.get("points") or {}).items():
        for index, (name, overrides) in enumerate(entries.items()):
            networks.append(Network(point, name, tuple(str(o) for o in overrides), reference=index == 0))
    if not networks:
        raise SystemExit(f"{path} lists no networks under `points:`")
    return networks, float(spec.get("tolerance", 0.25))


def select(networks: list[Network], points: str | None, names: str | None) -> list[Network]:
    chosen = networks
    for wanted, attr in ((points, "point"), (names, "name")):
        if wanted:
            keep = {w.strip() for w in wanted.split(",") if w.strip()}
            unknown = keep - {getattr(n, attr) for n in networks}
            if unknown:
                known = sorted({getattr(n, attr) for n in networks})
                raise SystemExit(f"unknown {attr}(s) {sorted(unknown)} in {NETWORKS_FILE.name}; choose from {known}")
            chosen = [n for n in chosen if getattr(n, attr) in keep]
    return chosen


def build(network: Network):
    """The network as ``laformer-train`` builds it for this study (the recipe, then the network's overrides)."""
    return build_from_overrides([*RECIPE, *network.overrides], source=f"{NETWORKS_FILE.name}: {network.key}")


def cost(chosen: list[Network]) -> dict[str, dict[str, float]]:
    """Parameters (M) and MACs at 256 x 256 (G) of each network, counted on the meta device."""
    table = {}
    for network in chosen:
        params_m, macs_g = count_cost([*RECIPE, *network.overrides], 256, 256)
        table[network.key] = {"params_m": params_m, "macs_g": macs_g}
    return table


def check_matched(
    networks: list[Network], costs: dict[str, dict[str, float]], tolerance: float, source: Path = NETWORKS_FILE
) -> None:
    """Every network within ``tolerance`` of its point's reference in MACs (``laformer.benchmarks.cost_points``, the
    check the design variants pass too), or a SystemExit listing who is not and naming ``source``, the networks file
    they came from."""
    references = {n.point: n for n in networks if n.reference}
    wrong = [
        off_point_message(n.key, costs[n.key]["macs_g"], costs[references[n.point].key]["macs_g"], tolerance)
        for n in networks
        if n.point in references
    ]
    wrong = [message for message in wrong if message is not None]
    if wrong:
        raise SystemExit(
            f"networks outside ±{tolerance:.0%} of their cost point in {source}: " + "; ".join(wrong)
            + ". Change their size overrides there (model.width=..., model.embed_dim=...)."
        )  # fmt: skip


# --- training ---------------------------------------------------------------------------------------------------


def run_dir(out: Path, network: Network, seed: int) -> Path:
    return out / "runs" / network.point / network.name / f"seed{seed}"


def job_overrides(network: Network, seed: int, args: argparse.Namespace, extra: list[str]) -> list[str]:
    overrides = [*RECIPE, *network.overrides, f"seed={seed}", f"trainer.max_steps={args.steps}"]
    overrides += [f"trainer.val_check_interval={max(1, args.steps // 2)}", f"module.optimizer.lr={args.lr}"]
    return overrides + extra


def train(network: Network, seed: int, args: argparse.Namespace, extra: list[str], position: str) -> dict[str, Any]:
    """Train one job unless it finished; its summary, or ``{"failed": ...}``.

    Skipping a finished job, refusing a folder of other overrides and resuming from ``last.ckpt`` are decided by
    ``laformer.sweeps.start_job``, the code every resumable multirun job goes through.
    """
    from laformer.runs import RunFolderBusy, lock_run_folder
    from laformer.sweeps import SweepJobMismatch, start_job

    folder = run_dir(args.out, network, seed)
    overrides = job_overrides(network, seed, args, extra)
    try:
        with lock_run_folder(folder):  # released before the training process takes it for the whole job
            job = start_job(folder, overrides, fix="pass another --out", log=None)  # said below, as this study says it
    except (SweepJobMismatch, RunFolderBusy) as refused:
        raise SystemExit(str(refused)) from None
    if job.finished is not None:
        print(f"{position} {network.key} seed {seed}: finished earlier, not retrained", flush=True)
        return job.finished
    command = [sys.executable, "-m", "laformer.cli.train", *overrides, f"hydra.run.dir={folder}"]
    if job.resume_from is not None:  # an interrupted job goes on from its last checkpoint
        command.append("ckpt_path=last")  # that file: Lightning finds it in the run's checkpoints/ folder
        print(f"{position} {network.key} seed {seed}: resuming from step {job.step}", flush=True)
    print(f"{position} {network.key} seed {seed}: training ({' '.join(overrides[len(RECIPE) :])})", flush=True)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "WANDB_SILENT": "true"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=not args.verbose, text=True)
    summary = read_summary(folder)
    if done.returncode != 0 or summary is None:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        print(f"    FAILED (exit {done.returncode}); its log: {folder / 'train.log'}", flush=True)
        for line in tail:
            print(f"    {line}", flush=True)
        return {"failed": f"exit {done.returncode}: {tail[-1] if tail else ''}"[:300]}
    print(f"    done in {time.perf_counter() - start:.0f} s", flush=True)
    return summary


# --- measurement, in this process -------------------------------------------------------------------------------


def prepared(network: Network, device) -> tuple[Any, Callable[[int, int], Any]]:
    """The network as ``laformer-restore`` runs it (eval; channels-last on the CPU) and a maker of its inputs."""
    from laformer.inference.restore import prepare_network
    from laformer.models import network_info

    net = prepare_network(build(network), device)
    channels = network_info(net).in_channels
    return net, lambda height, width: random_image(channels, height, width, device, channels_last=device.type == "cpu")


def measure(network: Network, args: argparse.Namespace) -> dict[str, Any]:
    """Latency at the first size, memory growth at the first two, the 4K estimate (and pass, with --full-4k)."""
    import torch

    device = torch.device(args.device)
    row: dict[str, Any] = {"point": network.point, "network": network.name, "device": str(device)}
    row["load_before"] = os.getloadavg()[0]
    net, image = prepared(network, device)
    row["baseline_mb"] = current_mb(device)
    first, second = args.sizes[0], args.sizes[1] if len(args.sizes) > 1 else None
    x = image(first, first)
    timing, _ = forward_latency(net, x, "fp32", args.warmup, args.repeats)
    row.update(size=first, latency_s=timing.median, latency_all_s=" ".join(f"{t:.4f}" for t in timing.times))
    row["peak_delta_mb"] = forward_memory(net, x)
    x = None  # freed before the larger passes
    if second is not None:
        row["delta_2_mb"] = forward_memory(net, image(second, second))
        slope = (row["delta_2_mb"] - row["peak_delta_mb"]) / (second**2 - first**2)
        pixels_4k = FOUR_K[0] * FOUR_K[1]
        est = row["baseline_mb"] + row["delta_2_mb"] + max(slope, 0.0) * (pixels_4k - second**2)
        row["est_4k_gb"] = est / 1024
    if args.full_4k:
        try:
            row["measured_4k_gb"] = (row["baseline_mb"] + forward_memory(net, image(*FOUR_K))) / 1024
        except (RuntimeError, MemoryError) as exc:
            row["note"] = f"4K pass failed: {type(exc).__name__}: {exc}"[:200]
    known = row.get("measured_4k_gb") or row.get("est_4k_gb")
    row["fits_4k"] = None if known is None else bool(known <= args.memory_gb)
    row["load_after"] = os.getloadavg()[0]
    net = None
    gc.collect()
    return row


def read_measurements(path: Path) -> list[dict[str, str]]:
    """The rows of ``measurements.csv`` as text, as they were written."""
    if not path.is_file():
        return []
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in read_csv(path)]


def warm_up_process(network: Network, args: argparse.Namespace, passes: int = 4) -> None:
    """Untimed passes before the first measurement of a process.

    The first network measured in a fresh process ran 1.9 times slower than the same network measured later in
    the same process, even after its own warm-up pass: tiny RELA at 512² took 1.00 s as the first and 0.48 s as
    the second network, 2026-12-01. The allocator and oneDNN's caches settle over the first few passes.
    """
    import torch

    net, image = prepared(network, torch.device(args.device))
    x = image(args.sizes[0], args.sizes[0])
    with torch.inference_mode():
        for _ in range(passes):
            net(x)
    del net, x
    gc.collect()


def measure_all(networks: list[Network], args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """Measure every network not yet in ``measurements.csv`` for this device and size; all of them, keyed."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.out / "measurements.csv"
    kept = read_measurements(path)
    done = {
        f"{r['point']}/{r['network']}": r
        for r in kept
        if r["device"] == args.device and r["size"] == str(args.sizes[0])
    }
    todo = [n for n in networks if n.key not in done]
    if todo:
        warm_up_process(todo[0], args)
    for index, network in enumerate(networks, 1):
        if network.key in done:
            continue
        print(f"[measure {index}/{len(networks)}] {network.key} at {args.sizes} on {args.device}", flush=True)
        try:
            row = measure(network, args)
        except Exception as exc:  # a network that cannot run is a result, not a crash
            row = {"point": network.point, "network": network.name, "device": args.device, "size": args.sizes[0]}
            row["note"] = f"{type(exc).__name__}: {exc}"[:200]
        done[network.key] = {k: ("" if row.get(k) is None else str(row[k])) for k in MEASURE_FIELDS}
        kept.append(done[network.key])
        write_csv(kept, path, columns=MEASURE_FIELDS)
    return done


# --- report -----------------------------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def per_seed_rows(summaries: dict[tuple[str, int], dict], test_set: str, val_set: str) -> list[dict[str, Any]]:
    rows = []
    for (key, seed), summary in summaries.items():
        metrics = summary.get("metrics", {})
        point, name = key.split("/", 1)
        rows.append(
            {
                "point": point,
                "network": name,
                "seed": seed,
                "test_psnr": metrics.get(f"test/{test_set}/psnr"),
                "test_ssim": metrics.get(f"test/{test_set}/ssim"),
                "val_psnr": metrics.get(f"test/{val_set}/psnr", metrics.get("val/psnr")),
                "steps": summary.get("steps"),
                "train_images_per_s": (summary.get("throughput") or {}).get("images_per_s"),
                "job_min": summary["wall_time_s"] / 60 if summary.get("wall_time_s") is not None else None,
                "status": "failed: " + summary["failed"] if "failed" in summary else "ok",
            }
        )
    return rows


def result_rows(
    networks: list[Network], costs: dict, seeds_rows: list[dict], measured: dict[str, dict], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """One row per network: quality over seeds, the paired difference to the point's reference, cost."""

    def scores(key: str) -> dict[int, float]:
        return {
            r["seed"]: r["test_psnr"]
            for r in seeds_rows
            if f"{r['point']}/{r['network']}" == key and r["test_psnr"] is not None
        }

    references = {n.point: n for n in networks if n.reference}
    rows = []
    for network in networks:
        mine = scores(network.key)
        mean, sd = mean_sd(list(mine.values()))
        row: dict[str, Any] = {"point": network.point, "network": network.name, "seeds": len(mine)}
        row.update(costs[network.key])
        reference = references.get(network.point)
        row["macs_vs_ref"] = row["macs_g"] / costs[reference.key]["macs_g"] if reference else None
        row.update(test_psnr=mean, test_psnr_sd=sd)
        if reference is not None and not network.reference:
            paired = paired_t_interval(dict(sorted(mine.items())), scores(reference.key))
            row["diff_vs_ref"], row["diff_low"], row["diff_high"] = paired[:3]
        m = measured.get(network.key, {})
        row["latency_s"] = _float(m.get("latency_s"))
        row["peak_delta_mb"] = _float(m.get("peak_delta_mb"))
        row["est_4k_gb"] = _float(m.get("measured_4k_gb")) or _float(m.get("est_4k_gb"))
        row["fits_4k"] = {"True": "yes", "False": "no"}.get(m.get("fits_4k", ""))
        row["measure_note"] = m.get("note") or None
        rows.append(row)
    ranked = [(r["network"] + "@" + r["point"], r["latency_s"], r["test_psnr"]) for r in rows]
    front = pareto([p for p in ranked if p[1] is not None and p[2] is not None])
    for row, (name, _, _) in zip(rows, ranked):
        row["pareto"] = "yes" if name in front else ""
    return rows


def anchor_rows(summaries: dict, test_set: str) -> list[dict[str, Any]]:
    """The noisy input and the classical anchors on the same photos (from any finished job)."""
    metrics = next((s.get("metrics", {}) for s in summaries.values() if s.get("metrics")), {})
    rows = []
    for title, key in [("noisy input", "input"), *((a, a) for a in ANCHORS)]:
        value = metrics.get(f"test/{test_set}/{key}_psnr")
        if value is not None:
            rows.append({"network": title, "test_psnr": value})
    return rows


COLUMNS = {
    "point": "point",
    "network": "network",
    "params_m": "params (M)",
    "macs_g": "MACs @256² (G)",
    "macs_vs_ref": "MACs / ref",
    "seeds": "seeds",
    "test_psnr": "held-out PSNR (dB)",
    "test_psnr_sd": "sd",
    "diff_vs_ref": "− LAformer RELA (dB)",
    "diff_low": "95 % low",
    "diff_high": "95 % high",
    "latency_s": "latency (s)",
    "peak_delta_mb": "peak +MiB",
    "est_4k_gb": "4K peak (GiB)",
    "fits_4k": "4K fits",
    "pareto": "Pareto",
}
FORMATS = {
    "params_m": ".2f", "macs_g": ".2f", "macs_vs_ref": ".2f", "test_psnr": ".2f", "test_psnr_sd": ".2f",
    "diff_vs_ref": "+.2f", "diff_low": "+.2f", "diff_high": "+.2f", "latency_s": ".3f", "peak_delta_mb": ".0f",
    "est_4k_gb": ".1f",
}  # fmt: skip


def render(rows: list[dict], anchors: list[dict], args: argparse.Namespace, header: str) -> str:
    columns = {**COLUMNS, "latency_s": f"latency {args.sizes[0]}² (s)"}
    text = header + "\n\n" + markdown_table(rows, columns, FORMATS)
    if anchors:
        text += "\nOn the same photos: " + ", ".join(f"{a['network']} {a['test_psnr']:.2f} dB" for a in anchors)
        text += ".\n"
    return text


def plot(rows: list[dict], anchors: list[dict], args: argparse.Namespace, path: Path) -> Path:
    """Held-out PSNR (mean, sd bars) against latency and against MACs; the Pareto front as a step line."""
    panels = [("latency_s", f"forward latency at {args.sizes[0]}² (s, {args.device}, fp32, batch 1)")]
    panels.append(("macs_g", "MACs at 256 x 256 (G)"))
    with figure(path, 1, 2, dpi=120, figsize=(13, 5.2)) as (fig, axes):
        _draw(fig, axes, rows, anchors, panels)
    return path


def _draw(fig: Any, axes: Any, rows: list[dict], anchors: list[dict], panels: list[tuple[str, str]]) -> None:
    """Both panels of :func:`plot`: the points, one legend entry a network, the front and the anchors."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    colours: dict[str, str] = {}
    labelled: dict[str, set[str]] = {}
    for ax, (key, xlabel) in zip(axes, panels):
        shown = [r for r in rows if r.get(key) and r.get("test_psnr") is not None]
        for row in shown:
            colour = colours.setdefault(row["network"], f"C{len(colours) % 10}")
            laformer = row["network"].startswith("laformer")
            marker = ("*" if laformer else "o") if row["point"] == "tiny" else ("P" if laformer else "s")
            size = 13 if laformer else 7
            named = row["network"] not in labelled.setdefault(key, set())  # one legend entry per network
            labelled[key].add(row["network"])
            ax.errorbar(row[key], row["test_psnr"], yerr=row.get("test_psnr_sd") or 0, fmt=marker, color=colour,
                        markersize=size, capsize=3, label=row["network"] if named else None)  # fmt: skip
            if row.get("pareto") and key == "latency_s":  # the rest are named by colour in the legend
                ax.annotate(f"{row['network']} ({row['point']})", (row[key], row["test_psnr"]), fontsize=7,
                            textcoords="offset points", xytext=(5, 4))  # fmt: skip
        front = sorted((r for r in shown if r.get("pareto")), key=lambda r: r[key])
        if key == "latency_s" and front:
            ax.step([r[key] for r in front], [r["test_psnr"] for r in front], where="post", color="0.3",
                    linewidth=1, label="Pareto front")  # fmt: skip
        ax.legend(loc="lower right", fontsize=7, ncol=2)
        for anchor in anchors:
            ax.axhline(anchor["test_psnr"], linestyle=":" if anchor["network"] == "noisy input" else "--",
                       color="0.6", linewidth=1)  # fmt: skip
            ax.annotate(anchor["network"], (0.01, anchor["test_psnr"]), xycoords=("axes fraction", "data"),
                        fontsize=7, color="0.4", xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("held-out PSNR (dB), mean ± sd over seeds")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        "Quality against cost: one recipe, the same photos, the same machine "
        "(LAformer: ★ tiny, ✚ small; peers: ○ tiny, □ small)"
    )


# --- the command ------------------------------------------------------------------------------------------------


STAGE_NAMES = ("lr", "choices", "frontier", "small", "demo", "report")


def load_stages() -> Any:
    """``stages.py`` beside this script, loaded by path (this script runs as ``__main__``, not as a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("frontier_stages", HERE / "stages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there while the file runs
    spec.loader.exec_module(module)
    return module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks-file", type=Path, default=NETWORKS_FILE, help="cost points and networks")
    parser.add_argument("--points", default=None, help="cost points to run, e.g. tiny (default: all)")
    parser.add_argument("--networks", default=None, help="network names to run, e.g. laformer_rela,nafnet")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=250, help="training steps of every job (default: 250)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of every job (suite default)")
    parser.add_argument("--out", type=Path, default=HERE, help="results and run folders (default: beside this)")
    parser.add_argument("--test-set", default="demo-test", help="the held-out set scored (summary key)")
    parser.add_argument("--val-set", default="demo-val")
    parser.add_argument("--measure", choices=("yes", "none"), default="yes", help="time and measure the networks")
    parser.add_argument("--device", default="cpu", help="measurement device: cpu or cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="latency side, then memory sides")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads while measuring")
    parser.add_argument("--memory-gb", type=float, default=24.0, help="the memory a 4K pass must fit in")
    parser.add_argument("--full-4k", action="store_true", help="also run each 4K pass instead of extrapolating")
    parser.add_argument("--verbose", action="store_true", help="show each job's training output")
    parser.add_argument("--stage", choices=STAGE_NAMES, default=None,
                        help="one stage of the fair frontier (issue 26, README; stages.py), e.g. lr")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args, extra = build_parser().parse_known_args(argv)
    unknown = [e for e in extra if e.startswith("--")]
    if unknown:
        raise SystemExit(f"unknown options {unknown}; laformer-train overrides are key=value")
    if args.stage is not None:  # issue 26: each network at its own rate, LAformer's choices, curves (stages.py)
        args.seeds_given = "--seeds" in (sys.argv[1:] if argv is None else argv)
        return load_stages().run_stage(args.stage, sys.modules[__name__], args, extra)
    started = time.perf_counter()
    every, tolerance = load_networks(args.networks_file)
    networks = select(every, args.points, args.networks)
    # The references take part in matching and in the paired differences even when not selected to run.
    references = [n for n in every if n.reference and n.point in {m.point for m in networks} and n not in networks]
    costs = cost(references + networks)
    check_matched(references + networks, costs, tolerance, args.networks_file)
    args.out.mkdir(parents=True, exist_ok=True)

    jobs = [(n, seed) for seed in args.seeds for n in networks]  # seed-major: an interruption leaves whole seeds
    summaries = {}
    for index, (network, seed) in enumerate(jobs, 1):
        summaries[network.key, seed] = train(network, seed, args, extra, f"[{index}/{len(jobs)}]")
    for network in references:  # a reference not run here may have run before
        for seed in args.seeds:
            found = read_summary(run_dir(args.out, network, seed))
            if found is not None:
                summaries[network.key, seed] = found
    shown = references + networks
    measured = measure_all(shown, args) if args.measure == "yes" else {}

    seeds_rows = per_seed_rows(summaries, args.test_set, args.val_set)
    rows = result_rows(shown, costs, seeds_rows, measured, args)
    anchors = anchor_rows(summaries, args.test_set)
    load = [float(v) for m in measured.values() for v in (m.get("load_before"), m.get("load_after")) if _float(v)]
    header = (
        "# Quality against cost at two matched cost points\n\n"
        f"Recipe for every network: `{' '.join(RECIPE)} trainer.max_steps={args.steps} module.optimizer.lr={args.lr}"
        f"{' ' + ' '.join(extra) if extra else ''}`, seeds {', '.join(map(str, args.seeds))}; held-out PSNR on "
        f"`{args.test_set}` with the checkpoint best on `{args.val_set}`. Differences: paired by seed against the "
        f"point's LAformer RELA, with a 95 % t-interval. Latency: median of {args.repeats} forward passes at "
        f"{args.sizes[0]}² after {args.warmup} warm-up, batch 1, fp32, {args.device} "
        f"({os.cpu_count()} cores), channels-last on the CPU, all networks in one process; peak +MiB: the growth of "
        f"the resident memory over one such pass; 4K peak: "
        f"{'one measured pass' if args.full_4k else f'extrapolated linearly in pixels from {args.sizes}'} "
        f"(weights and process included), against {args.memory_gb:g} GiB."
        + (f" Load average while measuring: {min(load):.2f}-{max(load):.2f}." if load else "")
    )
    write_csv(seeds_rows, args.out / "results_per_seed.csv")
    write_csv(rows + anchors, args.out / "results.csv")
    text = render(rows, anchors, args, header)
    (args.out / "results.md").write_text(text)
    png = plot(rows, anchors, args, args.out / "frontier.png")
    print(text)
    print(f"wrote {args.out / 'results.md'}, results.csv, results_per_seed.csv, {png.name} "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
