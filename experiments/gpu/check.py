"""One prepared GPU check: every GPU question of the suite in one short run (under 8 minutes on one GPU).

Parts, in the order they run (``--parts`` picks some; each part's rows are described in ``README.md`` beside
this script): ``train`` (the demo recipe and ``model=small`` through ``laformer.cli.train.train(cfg)`` at three
precisions), ``restore_4k`` (one pass over a 3840 x 2160 mosaic at fp32, bf16 and fp16, PSNR against fp32),
``peer_latency`` (LAformer-base, Restormer and NAFNet-32 at 1024²), ``attention_scaling`` (``tiny`` with each
attention from 256² to 1024²), ``ddp`` (the gradient-layout check, then two-GPU training through ``laformer-train
trainer=ddp``) and ``compile`` (eager against ``torch.compile`` through ``laformer-train``, as
``experiments/throughput`` measures it).

Timing, peak memory, inputs and networks come from ``laformer.benchmarks``, tables from ``laformer.reports``.
Each part runs under a time budget (``Plan.budgets``) inside a total limit (``--time-limit``, 450 s) through
``laformer.benchmarks.parts``: an overrun is recorded as ``timeout``, an error in one case as ``error`` with its
message, and the run goes on. The CSV and Markdown tables are rewritten after every row, so even a killed run leaves
everything measured so far.

    bash experiments/gpu/check.sh                        # on a GPU: experiments/gpu/results_<gpu>.{csv,md}
    bash experiments/gpu/check.sh --dry-run --out /tmp/x  # every part at toy sizes on the CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from laformer.benchmarks.inputs import noisy_photo, random_image
from laformer.benchmarks.machine import device_name, machine_facts, slug
from laformer.benchmarks.measure import describe_error as describe
from laformer.benchmarks.measure import forward_latency, gradient_layout_mismatches, precision_problem, train_run
from laformer.benchmarks.memory import free_memory, gpu_peak, peak_of
from laformer.benchmarks.networks import build, compose_train_config, has_model_config
from laformer.benchmarks.parts import BudgetedPart, run_budgeted
from laformer.reports import markdown_table, write_csv
from laformer.reports import short_number as fmt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DDP_STRIDE_WARNING = "Grad strides do not match bucket view strides"
PARTS = ("train", "restore_4k", "peer_latency", "attention_scaling", "ddp", "compile")
TRAIN_PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
INFER_PRECISIONS = ("fp32", "bf16", "fp16")
# Overrides every training run here shares: no validation, no checkpoints, no image grid, one cheap logger.
TRAIN_COMMON = (
    "logger=csv",
    "callbacks.model_checkpoint=null",
    "callbacks.image_grid=null",
    "callbacks.progress_bar=null",
    "trainer.limit_val_batches=0",
    "test_after_fit=false",
    "trainer.log_every_n_steps=10",
)


@dataclass
class Plan:
    """Sizes, steps and budgets of one check. ``GPU_PLAN`` is the real one, ``DRY_PLAN`` its toy copy for the CPU."""

    device: str
    train_steps: int
    # (label, overrides) of the training cases; the demo recipe and model=small on larger crops.
    train_models: tuple[tuple[str, tuple[str, ...]], ...]
    restore_size: tuple[int, int]  # height x width
    restore_model: str
    peers: tuple[str, ...]
    peer_size: int
    peer_precisions: tuple[str, ...]
    scaling_sizes: tuple[int, ...]
    scaling_attentions: tuple[str, ...]
    warmup: int
    repeats: int
    compile_overrides: tuple[str, ...]  # laformer-train overrides of the compile part (network, crops, batch)
    compile_steps: int
    compile_backend: str
    ddp_overrides: tuple[str, ...]
    budgets: dict[str, float] = field(default_factory=dict)
    # model.<key>=<value> overrides per peer config name: the dry run shrinks the published sizes to toy ones.
    peer_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # On the CPU (dry run), run the DDP part's laformer-train as two gloo processes: the full dry run only (slow).
    cpu_ddp: bool = False


GPU_PLAN = Plan(
    device="cuda",
    train_steps=50,
    train_models=(
        ("demo", ("experiment=demo", "data.repeat=64")),
        ("small@128", ("experiment=demo", "model=small", "data.patch_size=128", "data.repeat=64")),
    ),
    restore_size=(2160, 3840),
    restore_model="base",
    peers=("base", "restormer", "nafnet"),
    peer_size=1024,
    peer_precisions=("fp32", "bf16"),
    scaling_sizes=(256, 512, 1024),
    scaling_attentions=("linear", "rela", "softmax", "softmax-unchunked"),
    warmup=2,
    repeats=5,
    compile_overrides=("experiment=demo", "data.batch_size=8", "data.patch_size=64", "data.repeat=64"),
    compile_steps=30,
    compile_backend="inductor",
    ddp_overrides=("experiment=demo", "data.repeat=64", "precision=bf16-mixed", "trainer.devices=2"),
    budgets={
        "train": 150,
        "restore_4k": 75,
        "peer_latency": 60,
        "attention_scaling": 60,
        "ddp": 90,
        "compile": 160,
    },
)

# The same parts at toy sizes on the CPU, so the script is exercised by the default test suite.
DRY_TRAIN = ("data.patch_size=32", "data.batch_size=2", "data.repeat=1")
DRY_PLAN = dataclasses.replace(
    GPU_PLAN,
    device="cpu",
    train_steps=2,
    train_models=(
        ("demo", ("experiment=demo", *DRY_TRAIN)),
        ("small@32", ("experiment=demo", "model=small", "model.width=8", *DRY_TRAIN)),
    ),
    restore_size=(40, 64),
    peer_size=48,
    peer_precisions=("fp32",),
    # Building the published sizes (21-29 M parameters each) took most of a minute on a loaded 2-core CPU: the
    # dry run checks the code path, so it times each family at a toy size.
    peer_overrides={"base": ("model.width=8",), "restormer": ("model.preset=tiny",), "nafnet": ("model.preset=tiny",)},
    scaling_sizes=(32, 64),
    warmup=1,
    repeats=1,
    # One LAformer block (in the latent level): graph capture of the whole network costs most of a minute here.
    compile_overrides=("experiment=demo", *DRY_TRAIN, "model.width=8", "model.blocks=[0,0,0,1]", "model.refinement=0"),
    compile_steps=2,
    compile_backend="eager",  # dynamo's graph capture without Inductor's C++ build: seconds, not minutes
    ddp_overrides=(
        "experiment=demo",
        *DRY_TRAIN,
        "model.width=8",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
    ),
    # A guard against a hang, not a speed goal: on a loaded 2-core CPU a part took up to 45 s (2026-12-01).
    budgets={name: 240 for name in PARTS},
)
# The full dry run: also a 2-process gloo DDP run (a minute or more on two cores).
FULL_DRY_PLAN = dataclasses.replace(DRY_PLAN, cpu_ddp=True)


@dataclass
class Row:
    part: str
    case: str
    status: str = "ok"  # ok | skipped | error | timeout
    model: str = ""
    precision: str = ""
    size: str = ""
    steps: int | None = None
    loss: float | None = None
    images_per_s: float | None = None
    time_s: float | None = None
    peak_mem_mb: float | None = None
    psnr_db: float | None = None
    ratio: float | None = None
    note: str = ""


CSV_FIELDS = [f.name for f in fields(Row)]
# What each part's ratio column means, for the Markdown tables.
RATIO_MEANING = {
    "peer_latency": "latency / LAformer-base's at the same precision",
    "attention_scaling": "time / time at the size below (4x the pixels)",
    "ddp": "2-GPU images/s / the 1-GPU bf16 demo row's",
    "compile": "compiled images/s / eager images/s",
}
LEGEND = (
    "Rows are described in experiments/gpu/README.md. time_s: seconds; peak_mem_mb: MiB, "
    "torch.cuda.max_memory_allocated (empty on the CPU); psnr_db: dB; images_per_s: training images a second."
)


# --- results -----------------------------------------------------------------------------------------------


class Results:
    """Rows of the check, written as ``results_<slug>.csv`` and ``.md`` after every change."""

    def __init__(self, out_dir: Path, name: str, header: dict[str, str]) -> None:
        self.out_dir, self.header = out_dir, header
        self.csv_path = out_dir / f"results_{name}.csv"
        self.md_path = out_dir / f"results_{name}.md"
        self.rows: list[Row] = []
        self.started = time.monotonic()

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"[gpu-check] {row.part:17s} {row.case:28s} {row.status:8s} {row.note}", flush=True)
        self.write()
        return row

    def write(self) -> None:
        write_csv([{k: fmt(v) for k, v in dataclasses.asdict(r).items()} for r in self.rows], self.csv_path)
        self.md_path.write_text(self.markdown())

    def markdown(self) -> str:
        lines = ["# GPU check results", ""]
        header = {**self.header, "wall time so far (s)": f"{time.monotonic() - self.started:.0f}"}
        lines += [f"- {key}: {value}" for key, value in header.items()]
        lines += ["", LEGEND]
        for part in PARTS:
            rows = [r for r in self.rows if r.part == part]
            if not rows:
                continue
            columns = [c for c in CSV_FIELDS if c != "part" and any(getattr(r, c) not in (None, "") for r in rows)]
            lines += ["", f"## {part}", ""]
            if RATIO_MEANING.get(part) and "ratio" in columns:
                lines += [f"ratio: {RATIO_MEANING[part]}.", ""]
            cells = [{c: fmt(getattr(r, c)).replace("|", "/") for c in columns} for r in rows]
            lines.append(markdown_table(cells, {c: c for c in columns}).rstrip("\n"))
        return "\n".join(lines) + "\n"


# --- parts -------------------------------------------------------------------------------------------------


@dataclass
class Context(BudgetedPart):
    plan: Plan
    device: object  # torch.device
    work_dir: Path
    results: Results
    deadline: float  # time.monotonic() when the part's budget ends
    in_flight: Row | None = None  # the case being measured, for the timeout row


def part_train(ctx: Context) -> Iterator[Row]:
    for label, overrides in ctx.plan.train_models:
        for precision in TRAIN_PRECISIONS:
            row = Row("train", f"{label}/{precision}", model=label, precision=precision)
            skip, collect = precision_problem(precision, ctx.device), ctx.device.type == "cuda"
            yield ctx.attempt(row, measure_training, ctx, overrides, collect=collect, skip=skip)


def measure_training(row: Row, ctx: Context, overrides: tuple[str, ...]) -> None:
    """``plan.train_steps`` steps through the suite's ``train(cfg)``: last loss, images/s, peak memory."""
    from laformer.cli.train import train

    plan, device = ctx.plan, ctx.device
    cfg = compose_train_config(
        [
            *overrides,
            *TRAIN_COMMON,
            f"precision={row.precision}",
            f"trainer.max_steps={plan.train_steps}",
            f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
            "trainer.devices=1",
        ],
        ctx.work_dir / "train" / row.case.replace("/", "_"),
        job_id="gpu-check",
    )
    with gpu_peak(device) as memory:
        summary = train(cfg)
    row.size = f"{cfg.data.patch_size}x{cfg.data.patch_size} x{cfg.data.batch_size}"
    row.steps, row.loss = summary["steps"], summary["metrics"].get("train/loss")
    row.images_per_s = summary["throughput"]["images_per_s"]
    row.time_s = summary["throughput"]["train_time_s"]
    row.peak_mem_mb = peak_of(memory)
    if row.loss is None or not math.isfinite(row.loss):
        row.status, row.note = "error", f"training loss is {row.loss}"
    elif row.steps != plan.train_steps:
        row.status, row.note = "error", f"stopped after {row.steps} of {plan.train_steps} steps"


def part_restore_4k(ctx: Context) -> Iterator[Row]:
    from laformer.inference.restore import prepare_network

    height, width = ctx.plan.restore_size
    _, image = noisy_photo(height, width, sigma=25)  # the efficiency study's 4K input
    net = prepare_network(build([f"model={ctx.plan.restore_model}", "model.attention=rela"]), ctx.device)
    outputs: dict = {}  # precision -> restored image, for the PSNR against fp32
    for precision in INFER_PRECISIONS:
        row = Row(
            "restore_4k",
            f"one-pass/{precision}",
            model=f"{ctx.plan.restore_model} rela (untrained)",
            precision=precision,
            size=f"{width}x{height}",
        )
        skip = precision_problem(precision, ctx.device)
        yield ctx.attempt(row, measure_restore, ctx, net, image, outputs, skip=skip)


def measure_restore(row: Row, ctx: Context, net, image, outputs: dict) -> None:
    """One ``restore_image`` pass over the whole image (after a small untimed one that loads the kernels)."""
    import torch

    from laformer.inference import restore_image
    from laformer.metrics.image_metrics import psnr

    restore_image(net, image[:, :256, :256], precision=row.precision)
    with gpu_peak(ctx.device) as memory:
        start = time.perf_counter()
        out = restore_image(net, image, precision=row.precision)
        row.time_s = time.perf_counter() - start
    row.peak_mem_mb = peak_of(memory)
    if not torch.isfinite(out).all():
        row.status, row.note = "error", "non-finite output"
        return
    outputs[row.precision] = out
    if row.precision == "fp32":
        row.note = "restore_image end to end (to the device and back)"
    elif "fp32" in outputs:
        row.psnr_db = float(psnr(out[None], outputs["fp32"][None])[0])
        row.note = "psnr_db: against the fp32 output"


PEER_NAMES = {"base": "LAformer-base", "restormer": "Restormer", "nafnet": "NAFNet-32"}


def part_peer_latency(ctx: Context) -> Iterator[Row]:
    from laformer.inference.restore import prepare_network
    from laformer.models.peers import PeerUnavailableError

    plan, device = ctx.plan, ctx.device
    side = plan.peer_size
    rows: list[Row] = []
    for name in plan.peers:
        label = PEER_NAMES.get(name, name)
        row = Row("peer_latency", label, model=f"model={name}", size=f"{side}x{side}")
        net = None
        if not has_model_config(name):
            row.status, row.note = "skipped", f"no conf/model/{name}.yaml"
        else:
            try:
                net = prepare_network(build([f"model={name}", *plan.peer_overrides.get(name, ())]), device)
            except (ImportError, PeerUnavailableError) as exc:  # the peer's library is not installed
                row.status, row.note = "skipped", describe(exc)
            except Exception as exc:
                row.status, row.note = "error", describe(exc)
        if net is None:
            rows.append(row)
            yield row
            continue
        x = random_image(3, side, side, device, channels_last=device.type == "cpu")
        for precision in plan.peer_precisions:
            row = dataclasses.replace(row, case=f"{label}/{precision}", precision=precision)
            skip = precision_problem(precision, device)
            rows.append(ctx.attempt(row, measure_latency, net, x, plan.warmup, plan.repeats, skip=skip))
            yield row
        del net, x
        free_memory(device.type == "cuda")
    for row in rows:  # latency over LAformer-base's at the same precision
        base = next((r for r in rows if r.case == f"LAformer-base/{row.precision}" and r.status == "ok"), None)
        if row.status == "ok" and base is not None:
            row.ratio = row.time_s / base.time_s
    ctx.results.write()


def measure_latency(row: Row, net, x, warmup: int, repeats: int) -> None:
    timing, row.peak_mem_mb = forward_latency(net, x, row.precision, warmup, repeats)
    row.time_s = timing.median
    params = sum(p.numel() for p in net.parameters()) / 1e6
    row.note = f"{params:.2f} M params; median of {len(timing.times)}"


def part_attention_scaling(ctx: Context) -> Iterator[Row]:
    from laformer.inference.restore import prepare_network

    plan = ctx.plan
    for variant in plan.scaling_attentions:
        attention = variant.split("-")[0]
        try:
            net = prepare_network(build(["model=tiny", f"model.attention={attention}"]), ctx.device)
        except Exception as exc:
            yield Row("attention_scaling", variant, "error", model=f"tiny {attention}", note=describe(exc))
            continue
        previous: Row | None = None  # the size below
        for side in plan.scaling_sizes:
            row = Row(
                "attention_scaling",
                f"{variant}/{side}",
                model=f"tiny {variant}",
                precision="fp32",
                size=f"{side}x{side}",
            )
            if previous is not None:
                # Linear variants grow with the pixels, softmax with their square: skip what cannot fit the budget.
                growth = (side / int(previous.size.split("x")[0])) ** (4 if attention == "softmax" else 2)
                predicted = previous.time_s * growth
                if predicted * (1 if predicted > 1 else 1 + plan.repeats) > ctx.left():
                    row.status = "skipped"
                    row.note = f"predicted {predicted:.1f} s a pass; {ctx.left():.0f} s of the budget left"
                    yield row
                    break
            yield ctx.attempt(row, measure_scaling, ctx, net, variant, previous)
            if row.status != "ok":
                break
            previous = row
        del net
        free_memory(ctx.device.type == "cuda")


def measure_scaling(row: Row, ctx: Context, net, variant: str, previous: Row | None) -> None:
    """Forward time at one size; warm-up at the smallest only, and a pass over a second timed just once."""
    from laformer.models.attention import SoftmaxAttention

    plan, device, side = ctx.plan, ctx.device, int(row.size.split("x")[0])
    x = random_image(3, side, side, device, channels_last=device.type == "cpu")
    chunking = SoftmaxAttention.max_scores
    if variant == "softmax-unchunked":
        SoftmaxAttention.max_scores = 2**62  # every query in one fused call
    try:
        timing, row.peak_mem_mb = forward_latency(net, x, "fp32", plan.warmup if previous is None else 0, 1)
        if timing.times[0] < 1 and plan.repeats > 1:
            timing, row.peak_mem_mb = forward_latency(net, x, "fp32", 0, plan.repeats)
    finally:
        SoftmaxAttention.max_scores = chunking
    row.time_s = timing.median
    row.ratio = row.time_s / previous.time_s if previous is not None else None
    row.note = f"median of {len(timing.times)}" + ("; queries in one call" if variant == "softmax-unchunked" else "")


def part_ddp(ctx: Context) -> Iterator[Row]:
    import torch

    yield ctx.attempt(Row("ddp", "grad-layout", model="small", size="64x64 x2"), measure_grad_layout, ctx.device)
    gpus = torch.cuda.device_count() if ctx.device.type == "cuda" else 0
    row = Row("ddp", "2-process", model="demo", precision="bf16-mixed" if gpus else "32-true")
    if ctx.device.type == "cuda" and gpus < 2:
        row.status, row.note = "skipped", f"{gpus} GPU visible; 2-process DDP needs two"
        yield row
    elif ctx.device.type == "cpu" and not ctx.plan.cpu_ddp:
        row.status, row.note = "skipped", "quick dry run; `--dry-run full` runs it as 2 gloo CPU processes"
        yield row
    else:
        yield ctx.attempt(row, measure_ddp, ctx, gpus)


def measure_grad_layout(row: Row, device) -> None:
    """One backward of ``small``: every parameter's raw gradient must have the parameter's strides (DDP's
    "Grad strides do not match bucket view strides" warning otherwise)."""
    params, odd = gradient_layout_mismatches(
        build(["model=small"]).to(device), random_image(3, 64, 64, device, batch=2)
    )
    row.note = f"{params - len(odd)}/{params} gradients laid out as their parameters"
    if odd:
        row.status, row.note = "error", row.note + "; e.g. " + "; ".join(odd[:3])


def measure_ddp(row: Row, ctx: Context, gpus: int) -> None:
    """The real ``laformer-train trainer=ddp`` with two processes, in a subprocess; images/s from its summary."""
    steps, run_dir = ctx.plan.train_steps, ctx.work_dir / "ddp"
    overrides = [*ctx.plan.ddp_overrides, "trainer=ddp", *TRAIN_COMMON, f"trainer.max_steps={steps}"]
    if gpus:
        overrides.append("trainer.accelerator=gpu")
    run = train_run(overrides, run_dir, ctx.left() - 5, env=None if gpus else {"OMP_NUM_THREADS": "1"}, cwd=ROOT)
    if run.failure():
        row.status, row.note = run.failure()
        return
    speed = run.speed()
    row.steps, row.loss, row.images_per_s = speed["steps"], speed["loss"], speed["images_per_s"]
    one = next((r for r in ctx.results.rows if r.case == "demo/bf16-mixed" and r.status == "ok"), None)
    if gpus and one and row.images_per_s:
        row.ratio = row.images_per_s / one.images_per_s
    where = "global batch split over 2 GPUs" if gpus else "gloo on 2 CPU processes (dry run)"
    warned = "DDP warned: " + DDP_STRIDE_WARNING if DDP_STRIDE_WARNING in run.output else "no grad-stride warning"
    row.note = f"{where}; {warned}"
    if row.steps != steps or row.loss is None or not math.isfinite(row.loss):
        row.status = "error"


def part_compile(ctx: Context) -> Iterator[Row]:
    """The demo's training steps through ``laformer-train``, eager then compiled, as ``experiments/throughput``
    measures them; each run under what is left of the part's budget."""
    plan, cuda = ctx.plan, ctx.device.type == "cuda"
    precision = "bf16-mixed" if cuda else "32-true"
    # Other backends than Inductor through torch's override of every graph's backend (the module compiles with
    # the default): the dry run captures graphs without Inductor's C++ build.
    env = (
        {} if plan.compile_backend == "inductor" else {"TORCH_COMPILE_OVERRIDE_BACKENDS": f">=0:{plan.compile_backend}"}
    )
    eager: Row | None = None
    for mode, flag in (("eager", "false"), ("compiled", "true")):
        overrides = [*plan.compile_overrides, *TRAIN_COMMON, f"precision={precision}", f"module.compile={flag}"]
        overrides += [f"trainer.max_steps={plan.compile_steps}", f"trainer.accelerator={'gpu' if cuda else 'cpu'}"]
        row = Row("compile", mode, model="demo", precision=precision)
        row.note = "forward, loss, backward, optimiser step" if mode == "eager" else f"backend={plan.compile_backend}"
        run = train_run(overrides, ctx.work_dir / "compile" / mode, ctx.left() - 5, env=env, cwd=ROOT)
        speed = run.speed()
        if run.summary:
            row.size = (
                f"{run.summary.get('patch_size')}x{run.summary.get('patch_size')} x{run.summary.get('batch_size')}"
            )
        if run.failure():
            row.status, note = run.failure()
            row.note += f"; {note}"
        else:
            row.steps, row.loss, row.images_per_s = speed["steps"], speed["loss"], speed["images_per_s"]
            row.time_s = speed["train_time_s"]
            if not speed["finite_loss"]:
                row.status, row.note = "error", row.note + f"; training loss is {row.loss}"
            if mode == "compiled":
                row.note += "; time_s: every training step, the compiling first one included"
                if eager is not None and eager.images_per_s and row.images_per_s:
                    row.ratio = row.images_per_s / eager.images_per_s
        eager = row if mode == "eager" else eager
        yield row


PART_FUNCTIONS: dict[str, Callable[[Context], Iterator[Row]]] = {
    "train": part_train,
    "restore_4k": part_restore_4k,
    "peer_latency": part_peer_latency,
    "attention_scaling": part_attention_scaling,
    "ddp": part_ddp,
    "compile": part_compile,
}


# --- the run -----------------------------------------------------------------------------------------------


def run_part(name: str, function: Callable[[Context], Iterator[Row]], ctx: Context, budget: float) -> None:
    """Record every row ``function`` yields; an error or an overrun ends the part with one row saying so."""
    started = time.monotonic()
    try:
        run_budgeted(lambda: function(ctx), budget, ctx.results.add, ctx, lambda: Row(name, "(part)"))
    finally:
        free_memory(ctx.device.type == "cuda")
    print(f"[gpu-check] {name} took {time.monotonic() - started:.1f} s", flush=True)


def environment(device, dry_run: bool) -> tuple[str, dict[str, str]]:
    """The results' file-name slug and the facts the Markdown header lists."""
    facts = machine_facts(device)
    header = {"date (UTC)": facts.pop("date (UTC)")}
    header["mode"] = "dry run on the CPU (toy sizes; not a GPU result)" if dry_run else "GPU check"
    return (slug(device_name(device)) if device.type == "cuda" else "dry-run-cpu"), {**header, **facts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dry-run",
        nargs="?",
        const="quick",
        choices=("quick", "full"),
        help="every part at toy sizes on the CPU; full: also the compile subprocess and 2-process gloo DDP",
    )
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results_<gpu>.{csv,md}")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--time-limit", type=float, default=450.0, help="seconds for the whole check")
    args = parser.parse_args(argv)

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    import torch

    plan = {None: GPU_PLAN, "quick": DRY_PLAN, "full": FULL_DRY_PLAN}[args.dry_run]
    if plan.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run on a GPU machine, or use --dry-run for the CPU rehearsal", file=sys.stderr)
        return 2
    device = torch.device(plan.device)
    name, header = environment(device, args.dry_run is not None)
    results = Results(args.out, name, header)
    end = time.monotonic() + args.time_limit
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        for part in args.parts:
            left = end - time.monotonic()
            if left < 5:
                results.add(Row(part, "(part)", "skipped", note=f"the check's {args.time_limit:.0f} s were spent"))
                continue
            budget = min(plan.budgets[part], left)
            ctx = Context(plan, device, Path(work), results, time.monotonic() + budget)
            run_part(part, PART_FUNCTIONS[part], ctx, budget)
    results.write()
    print(f"[gpu-check] wrote {results.csv_path} and {results.md_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
