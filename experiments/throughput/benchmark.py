"""Training throughput of the demo recipe per speed option: memory format, ``torch.compile``, AdamW's foreach and
fused kernels, data-loader workers and pinned batches.

Each option trains the demo (``experiment=demo``) for ``--steps`` steps in a fresh ``laformer-train`` process,
with validation, anchors and the held-out test off, and reads the images/s of the training steps alone from
its ``summary.json`` (``TrainingThroughput``: forward, backward and optimiser step, the first batch left out).
Run it alone on the machine: two processes on two cores slow each other far more than twice.

    python experiments/throughput/benchmark.py                  # all options, 60 steps each
    python experiments/throughput/benchmark.py --options contiguous channels_last --steps 30
    python experiments/throughput/benchmark.py --quick --out /tmp/throughput   # smoke run, no figures
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from laformer.benchmarks.machine import cpu_name
from laformer.benchmarks.measure import train_run
from laformer.reports import markdown_table, write_csv

HERE = Path(__file__).resolve().parent
# Every option names its optimiser kernel: the module takes AdamW's fused kernel by default where it can
# (module.fused_optimizer=auto), and the table must say which kernel each row ran.
PLAIN = "module.fused_optimizer=false"
CHANNELS_LAST = ["module.memory_format=channels_last", "module.compile=false", PLAIN]
FUSED = ["module.memory_format=channels_last", "module.compile=false", "module.fused_optimizer=true"]
OPTIONS: dict[str, list[str]] = {
    "contiguous": ["module.memory_format=contiguous", "module.compile=false", PLAIN],
    "channels_last": CHANNELS_LAST,
    "compile": ["module.memory_format=contiguous", "module.compile=true", PLAIN],
    "channels_last+compile": ["module.memory_format=channels_last", "module.compile=true", PLAIN],
    # AdamW's multi-tensor (foreach) and fused CPU kernels: one call per step instead of one per parameter.
    "channels_last+foreach": [*CHANNELS_LAST, "+module.optimizer.foreach=true"],
    "channels_last+fused": FUSED,
    # Every option above keeps freed memory in the process (callbacks.cpu_heap, the default on the CPU); this one
    # gives glibc its default back, so the table shows what the heap policy is worth.
    "channels_last+fused+default_heap": [*FUSED, "callbacks.cpu_heap=null"],
    # Data-loader workers make the demo's batches (crops, noise, dead-leaves pictures) beside the training step;
    # pinned batches only matter for a GPU's copies, measured so the table says so.
    "channels_last+workers1": [*CHANNELS_LAST, "data.num_workers=1"],
    "channels_last+workers2+pin": [*CHANNELS_LAST, "data.num_workers=2", "data.pin_memory=true"],
    "channels_last+fused+compile": [
        "module.memory_format=channels_last",
        "module.compile=true",
        "module.fused_optimizer=true",
    ],
}
# What a quick run (``--quick``, the tests) measures.
QUICK_OPTIONS = ["contiguous", "channels_last", "channels_last+fused", "channels_last+fused+default_heap"]
QUIET = [
    "logger=csv",
    "callbacks.progress_bar=null",
    "callbacks.image_grid=null",
    "callbacks.anchors.methods=[]",
    "test_after_fit=false",
    "trainer.limit_val_batches=0",
]
QUICK_OVERRIDES = [
    "model.width=8",
    "data.patch_size=32",
    "data.batch_size=2",
    "data.repeat=1",
    "data.procedural_ratio=0.0",
]
COLUMNS = {
    "option": "option",
    "images_per_s": "images/s",
    "vs_first": "vs the first option",
    "train_loss": "last train loss",
    "status": "status",
}
FORMATS = {"images_per_s": ".2f", "vs_first": ".2f", "train_loss": ".4f"}


def measure(option: str, steps: int, extra: list[str], workdir: Path) -> dict[str, object]:
    """``steps`` training steps of the demo with ``option`` through ``laformer-train`` (laformer.benchmarks)."""
    overrides = [*QUIET, *OPTIONS[option], *extra, f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps}"]
    run = train_run(overrides, workdir / option.replace("+", "_"), cwd=workdir)
    if not run.ok:
        return {"option": option, "status": f"error: {run.tail(1)[:200]}", "images_per_s": None, "train_loss": None}
    speed = run.speed()
    return {
        "option": option,
        "status": "ok",
        "images_per_s": speed["images_per_s"],
        "train_loss": speed["loss"],
        "train_time_s": speed["train_time_s"],
    }


def write(rows: list[dict[str, object]], out: Path, steps: int) -> None:
    """Each option's images/s over the first option's (the reference of the run: ``--options`` puts it first)."""
    base = rows[0]["images_per_s"] if rows else None
    for row in rows:
        row["vs_first"] = round(row["images_per_s"] / base, 3) if base and row["images_per_s"] else None
    write_csv(rows, out / "results.csv")
    machine = f"{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    reference = rows[0]["option"] if rows else "-"
    text = (
        f"Demo recipe, {steps} training steps per option, training steps only ({machine}); "
        f"ratios against {reference}, the first option of the run.\n\n" + markdown_table(rows, COLUMNS, FORMATS)
    )
    (out / "results.md").write_text(text)
    print(text, end="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=None, help="default: all")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: four options, 3 steps, width 8, 32 px crops (not figures)"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("overrides", nargs="*", help="extra laformer-train overrides, e.g. model.width=8")
    args = parser.parse_args(argv)
    if args.quick:
        args.options = args.options or QUICK_OPTIONS
        args.steps = min(args.steps, 3)
        args.overrides = [*QUICK_OVERRIDES, *args.overrides]
    args.options = args.options or list(OPTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for option in args.options:
            rows.append(measure(option, args.steps, args.overrides, Path(tmp)))
            print(f"{option}: {rows[-1]['images_per_s']} images/s ({rows[-1]['status']})", flush=True)
    write(rows, args.out, args.steps)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
