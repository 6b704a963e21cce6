"""One prepared GPU check: every GPU question of the suite in one short run (under 8 minutes on one GPU).

Parts, in the order they run (``--parts`` picks some):

- ``train``: 50 steps of the demo recipe (``experiment=demo``) and of ``model=small`` on 128 x 128 crops, at
  ``32-true``, ``bf16-mixed`` and ``16-mixed``, each through the suite's own ``laformer.cli.train.train(cfg)`` on
  a Hydra-composed config (no validation, no checkpoints). Rows: the last training loss (must be finite), training
  images/s (``TrainingThroughput``: steps only, first step left out) and ``torch.cuda.max_memory_allocated``.
- ``restore_4k``: one pass over a 3840 x 2160 photo mosaic with an untrained ``base`` RELA network through
  ``laformer.inference.restore_image`` at fp32, bf16 and fp16: time, peak memory, and the PSNR of the bf16 and
  fp16 outputs against the fp32 output.
- ``peer_latency``: forward latency at 1024 x 1024 (batch 1, no autograd) of LAformer-base, Restormer
  (``model=restormer``) and NAFNet-32 (``model=nafnet``), one process; ``ratio`` is the latency over
  LAformer-base's at the same precision. A peer whose config (``conf/model/<name>.yaml``) or library is missing
  is recorded as skipped, with the reason.
- ``attention_scaling``: forward latency and peak memory of ``tiny`` with linear, RELA and softmax attention from
  256^2 to 1024^2; ``ratio`` is the time over the size below (4x the pixels). ``softmax-unchunked`` is softmax with
  the model's query chunking (``SoftmaxAttention.max_scores``, meant for the CPU fallback) switched off.
- ``ddp``: the gradient-layout check (every parameter's gradient strides equal the parameter's, the condition
  behind DDP's "Grad strides do not match bucket view strides" warning), then, where two GPUs exist, 50 steps of
  the demo through ``laformer-train trainer=ddp trainer.devices=2`` (a subprocess); ``ratio`` is its images/s over
  the one-GPU bf16 demo row. With one GPU the run is recorded as skipped.
- ``compile``: the training step (forward, the suite's loss, backward, AdamW step) of the demo network eager and
  under ``torch.compile``, in a subprocess with a timeout; a failure to compile is recorded with its reason.

Each part runs under a time budget (``Plan.budgets``) inside a total limit (``--time-limit``, 450 s): a part that
overruns is stopped and recorded as ``timeout``, an error in one case is recorded as ``error`` with its message,
and the run goes on. The CSV and Markdown tables are rewritten after every row, so even a killed run leaves
everything measured so far.

    bash experiments/gpu/check.sh                        # on a GPU: experiments/gpu/results_<gpu>.{csv,md}
    bash experiments/gpu/check.sh --dry-run --out /tmp/x  # every part at toy sizes on the CPU
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import gc
import importlib.util
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULT_PREFIX = "GPU_CHECK_RESULT "
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
    restore_size: tuple[int, int]  # width x height
    restore_model: str
    peers: tuple[str, ...]
    peer_size: int
    peer_precisions: tuple[str, ...]
    scaling_sizes: tuple[int, ...]
    scaling_attentions: tuple[str, ...]
    warmup: int
    repeats: int
    compile_overrides: tuple[str, ...]
    compile_batch: int
    compile_patch: int
    compile_steps: int
    compile_backend: str
    ddp_overrides: tuple[str, ...]
    budgets: dict[str, float] = field(default_factory=dict)
    # model.<key>=<value> overrides per peer config name: the dry run shrinks the published sizes to toy ones.
    peer_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The compile part in a fresh process under the part's timeout (a hung compilation cannot stall the check);
    # the quick dry run measures it in-process, to stay fast.
    isolate_compile: bool = True
    # On the CPU (dry run), run the DDP part's laformer-train as two gloo processes: the full dry run only (slow).
    cpu_ddp: bool = False


GPU_PLAN = Plan(
    device="cuda",
    train_steps=50,
    train_models=(
        ("demo", ("experiment=demo", "data.repeat=64")),
        ("small@128", ("experiment=demo", "model=small", "data.patch_size=128", "data.repeat=64")),
    ),
    restore_size=(3840, 2160),
    restore_model="base",
    peers=("base", "restormer", "nafnet"),
    peer_size=1024,
    peer_precisions=("fp32", "bf16"),
    scaling_sizes=(256, 512, 1024),
    scaling_attentions=("linear", "rela", "softmax", "softmax-unchunked"),
    warmup=2,
    repeats=5,
    compile_overrides=("experiment=demo",),
    compile_batch=8,
    compile_patch=64,
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
    restore_size=(64, 40),
    peer_size=48,
    peer_precisions=("fp32",),
    # Building the published sizes (21-29 M parameters each) took most of a minute on a loaded 2-core CPU: the
    # dry run checks the code path, so it times each family at a toy size.
    peer_overrides={"base": ("model.width=8",), "restormer": ("model.preset=tiny",), "nafnet": ("model.preset=tiny",)},
    scaling_sizes=(32, 64),
    warmup=1,
    repeats=1,
    # One LAformer block (in the latent level): graph capture of the whole network costs most of a minute here.
    compile_overrides=("experiment=demo", "model.width=8", "model.blocks=[0,0,0,1]", "model.refinement=0"),
    compile_batch=2,
    compile_patch=32,
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
    isolate_compile=False,
)
# The full dry run: also the compile subprocess and a 2-process gloo DDP run (a minute or more on two cores).
FULL_DRY_PLAN = dataclasses.replace(DRY_PLAN, isolate_compile=True, cpu_ddp=True)


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


class PartTimeout(BaseException):
    """A part's time budget ran out. A BaseException, so a case's ``except Exception`` does not swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`PartTimeout` in the main thread after ``seconds`` (between Python bytecodes)."""

    def expire(signum: int, frame: object) -> None:
        raise PartTimeout(f"budget of {seconds:.0f} s spent")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def describe(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


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
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with self.csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows({k: fmt(v) for k, v in dataclasses.asdict(r).items()} for r in self.rows)
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
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "---|" * len(columns))
            for r in rows:
                cells = [fmt(getattr(r, c)).replace("|", "/") for c in columns]
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


# --- shared helpers ----------------------------------------------------------------------------------------


def compose_train(overrides: list[str], run_dir: Path):
    """The composed ``train`` config for ``overrides``, as ``hydra.main`` hands it to ``train(cfg)``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from laformer.runs import config_dir, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
        cfg.hydra.job.id = "gpu-check"
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def model_config_path(name: str) -> Path:
    from laformer.runs import config_dir

    return Path(config_dir()) / "model" / f"{name}.yaml"


_MODEL_CONFIGS: dict = {}  # model name -> its resolved config from the composed train config (composing is slow)


def model_from_config(name: str, overrides: tuple[str, ...] = ()):
    """The network of ``conf/model/<name>.yaml`` with ``model.<key>=<value>`` overrides, as training builds it."""
    import hydra
    import torch
    from omegaconf import OmegaConf

    if name not in _MODEL_CONFIGS:
        cfg = compose_train([f"model={name}"], Path(tempfile.gettempdir()))
        _MODEL_CONFIGS[name] = OmegaConf.to_container(cfg.model, resolve=True)
    changes = [item.removeprefix("model.") for item in overrides]
    config = OmegaConf.merge(OmegaConf.create(_MODEL_CONFIGS[name]), OmegaConf.from_dotlist(changes))
    torch.manual_seed(0)
    net = hydra.utils.instantiate(config)
    if not isinstance(net, torch.nn.Module) and isinstance(getattr(net, "model", None), torch.nn.Module):
        net = net.model  # a descriptor (spandrel-style) that carries the network
    return net


def free_memory(collect: bool = True) -> None:
    """Hand cached GPU memory back; ``collect`` also runs the garbage collector (most of a second in a big process)."""
    import torch

    if collect:
        gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precision_problem(precision: str, device) -> str | None:
    """Why ``precision`` (fp16/bf16 or 16-mixed/bf16-mixed) cannot run on ``device``, or None."""
    import torch

    if precision in ("fp16", "16-mixed") and device.type == "cpu":
        return "fp16 needs a GPU (the suite refuses fp16 on the CPU); dry run on the CPU"
    if precision in ("bf16", "bf16-mixed") and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU does not support bf16"
    return None


def forward_latency(net, x, precision: str, warmup: int, repeats: int) -> tuple[list[float], float | None]:
    """Forward times (s) of ``repeats`` passes after ``warmup`` ones, no autograd, and the peak memory (MiB)."""
    import torch

    from laformer.inference.restore import autocast_context

    device = x.device

    def once() -> float:
        sync(device)
        start = time.perf_counter()
        with torch.no_grad(), autocast_context(precision, device):
            y = net(x)
        sync(device)
        elapsed = time.perf_counter() - start
        if not torch.isfinite(y).all():
            raise FloatingPointError("non-finite output")
        return elapsed

    for _ in range(warmup):
        once()
    reset_peak(device)
    times = [once() for _ in range(repeats)]
    return times, peak_mb(device)


def run_subprocess(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Return code (None on timeout) and the combined output of ``cmd``.

    The command runs in its own session, so a timeout kills it with every process it started (DDP's other rank).
    """
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )

    def kill() -> str:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0] or ""

    try:
        output, _ = proc.communicate(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        return None, kill()
    except BaseException:
        kill()
        raise
    return proc.returncode, output


def worker_result(output: str) -> dict | None:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def tail(output: str, lines: int = 3) -> str:
    """The last ``lines`` lines of a process's output, on one line (at most 300 characters)."""
    last = [line.strip() for line in output.strip().splitlines()[-lines:]]
    return " ".join(" / ".join(last).split())[-300:]


# --- parts -------------------------------------------------------------------------------------------------


@dataclass
class Context:
    plan: Plan
    device: object  # torch.device
    work_dir: Path
    results: Results
    deadline: float  # time.monotonic() when the part's budget ends
    in_flight: Row | None = None  # the case being measured, for the timeout row

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def attempt(self, row: Row, measure: Callable[..., None], *args: object, collect: bool = False) -> Row:
        """Fill ``row`` by ``measure(row, *args)``; an exception makes it an ``error`` row (a part timeout passes).

        ``collect``: run the garbage collector afterwards, so what the case left in reference cycles (a Trainer and
        its module) is freed before the next case's peak memory is measured.
        """
        self.in_flight = row
        try:
            measure(row, *args)
        except Exception as exc:
            row.status, row.note = "error", describe(exc)
        finally:
            free_memory(collect)
        self.in_flight = None  # still set when a PartTimeout passes, so the timeout row names this case
        return row


def part_train(ctx: Context) -> Iterator[Row]:
    for label, overrides in ctx.plan.train_models:
        for precision in TRAIN_PRECISIONS:
            row = Row("train", f"{label}/{precision}", model=label, precision=precision)
            problem = precision_problem(precision, ctx.device)
            if problem:
                row.status, row.note = "skipped", problem
                yield row
            else:
                yield ctx.attempt(row, measure_training, ctx, overrides, collect=ctx.device.type == "cuda")


def measure_training(row: Row, ctx: Context, overrides: tuple[str, ...]) -> None:
    """``plan.train_steps`` steps through the suite's ``train(cfg)``: last loss, images/s, peak memory."""
    from laformer.cli.train import train

    plan, device = ctx.plan, ctx.device
    cfg = compose_train(
        [
            *overrides,
            *TRAIN_COMMON,
            f"precision={row.precision}",
            f"trainer.max_steps={plan.train_steps}",
            f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
            "trainer.devices=1",
        ],
        ctx.work_dir / "train" / row.case.replace("/", "_"),
    )
    reset_peak(device)
    summary = train(cfg)
    row.size = f"{cfg.data.patch_size}x{cfg.data.patch_size} x{cfg.data.batch_size}"
    row.steps, row.loss = summary["steps"], summary["metrics"].get("train/loss")
    row.images_per_s = summary["throughput"]["images_per_s"]
    row.time_s = summary["throughput"]["train_time_s"]
    row.peak_mem_mb = peak_mb(device)
    if row.loss is None or not math.isfinite(row.loss):
        row.status, row.note = "error", f"training loss is {row.loss}"
    elif row.steps != plan.train_steps:
        row.status, row.note = "error", f"stopped after {row.steps} of {plan.train_steps} steps"


def photo_input(width: int, height: int):
    """A (3, H, W) float image: the efficiency study's mosaic of bundled photos, with sigma 25 noise."""
    import torch

    from laformer.data.io import array_to_tensor

    spec = importlib.util.spec_from_file_location("restore_4k_script", ROOT / "experiments/efficiency/restore_4k.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    clean = array_to_tensor(script.photo_mosaic(width, height))
    generator = torch.Generator().manual_seed(0)
    return (clean + torch.randn(clean.shape, generator=generator) * 25 / 255).clamp(0, 1)


def part_restore_4k(ctx: Context) -> Iterator[Row]:
    from laformer.inference.restore import prepare_network

    width, height = ctx.plan.restore_size
    image = photo_input(width, height)
    net = prepare_network(model_from_config(ctx.plan.restore_model, ("model.attention=rela",)), ctx.device)
    outputs: dict = {}  # precision -> restored image, for the PSNR against fp32
    for precision in INFER_PRECISIONS:
        row = Row(
            "restore_4k",
            f"one-pass/{precision}",
            model=f"{ctx.plan.restore_model} rela (untrained)",
            precision=precision,
            size=f"{width}x{height}",
        )
        problem = precision_problem(precision, ctx.device)
        if problem:
            row.status, row.note = "skipped", problem
            yield row
        else:
            yield ctx.attempt(row, measure_restore, ctx, net, image, outputs)


def measure_restore(row: Row, ctx: Context, net, image, outputs: dict) -> None:
    """One ``restore_image`` pass over the whole image (after a small untimed one that loads the kernels)."""
    import torch

    from laformer.inference import restore_image
    from laformer.metrics.image_metrics import psnr

    restore_image(net, image[:, :256, :256], precision=row.precision)
    reset_peak(ctx.device)
    start = time.perf_counter()
    out = restore_image(net, image, precision=row.precision)
    row.time_s = time.perf_counter() - start
    row.peak_mem_mb = peak_mb(ctx.device)
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
    import torch

    from laformer.inference.restore import prepare_network

    plan, device = ctx.plan, ctx.device
    side = plan.peer_size
    rows: list[Row] = []
    for name in plan.peers:
        label = PEER_NAMES.get(name, name)
        row = Row("peer_latency", label, model=f"model={name}", size=f"{side}x{side}")
        net = None
        if not model_config_path(name).is_file():
            row.status, row.note = "skipped", f"no conf/model/{name}.yaml"
        else:
            try:
                net = prepare_network(model_from_config(name, plan.peer_overrides.get(name, ())), device)
            except ImportError as exc:  # the peer's library is not installed
                row.status, row.note = "skipped", describe(exc)
            except Exception as exc:
                row.status, row.note = "error", describe(exc)
        if net is None:
            rows.append(row)
            yield row
            continue
        memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        x = torch.rand(1, 3, side, side, device=device).contiguous(memory_format=memory_format)
        for precision in plan.peer_precisions:
            row = dataclasses.replace(row, case=f"{label}/{precision}", precision=precision)
            problem = precision_problem(precision, device)
            if problem:
                row.status, row.note = "skipped", problem
            else:
                ctx.attempt(row, measure_latency, net, x, plan.warmup, plan.repeats)
            rows.append(row)
            yield row
        del net, x
        free_memory(device.type == "cuda")
    for row in rows:  # latency over LAformer-base's at the same precision
        base = next((r for r in rows if r.case == f"LAformer-base/{row.precision}" and r.status == "ok"), None)
        if row.status == "ok" and base is not None:
            row.ratio = row.time_s / base.time_s
    ctx.results.write()


def measure_latency(row: Row, net, x, warmup: int, repeats: int) -> None:
    times, row.peak_mem_mb = forward_latency(net, x, row.precision, warmup, repeats)
    row.time_s = statistics.median(times)
    params = sum(p.numel() for p in net.parameters()) / 1e6
    row.note = f"{params:.2f} M params; median of {len(times)}"


def part_attention_scaling(ctx: Context) -> Iterator[Row]:
    from laformer.inference.restore import prepare_network

    plan = ctx.plan
    for variant in plan.scaling_attentions:
        attention = variant.split("-")[0]
        try:
            net = prepare_network(model_from_config("tiny", (f"model.attention={attention}",)), ctx.device)
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
    import torch

    from laformer.models.attention import SoftmaxAttention

    plan, device, side = ctx.plan, ctx.device, int(row.size.split("x")[0])
    memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    x = torch.rand(1, 3, side, side, device=device).contiguous(memory_format=memory_format)
    chunking = SoftmaxAttention.max_scores
    if variant == "softmax-unchunked":
        SoftmaxAttention.max_scores = 2**62  # every query in one fused call
    try:
        times, row.peak_mem_mb = forward_latency(net, x, "fp32", plan.warmup if previous is None else 0, 1)
        if times[0] < 1 and plan.repeats > 1:
            times, row.peak_mem_mb = forward_latency(net, x, "fp32", 0, plan.repeats)
    finally:
        SoftmaxAttention.max_scores = chunking
    row.time_s = statistics.median(times)
    row.ratio = row.time_s / previous.time_s if previous is not None else None
    row.note = f"median of {len(times)}" + ("; queries in one call" if variant == "softmax-unchunked" else "")


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
    """One backward of ``small``: every parameter's raw gradient must have the parameter's strides.

    DDP copies each gradient into a bucket laid out like its parameter, and warns ("Grad strides do not match
    bucket view strides") when the two differ.
    """
    import torch

    net = model_from_config("small").to(device)
    x = torch.rand(2, 3, 64, 64, device=device)
    params = dict(net.named_parameters())
    grads = torch.autograd.grad(net(x).square().mean(), list(params.values()))
    odd = [
        f"{name} {tuple(g.stride())} vs {tuple(p.stride())}"
        for (name, p), g in zip(params.items(), grads)
        if g.stride() != p.stride()
    ]
    row.note = f"{len(params) - len(odd)}/{len(params)} gradients laid out as their parameters"
    if odd:
        row.status, row.note = "error", row.note + "; e.g. " + "; ".join(odd[:3])


def measure_ddp(row: Row, ctx: Context, gpus: int) -> None:
    """The real ``laformer-train trainer=ddp`` with two processes, in a subprocess; images/s from its summary."""
    steps, run_dir = ctx.plan.train_steps, ctx.work_dir / "ddp"
    overrides = [*ctx.plan.ddp_overrides, "trainer=ddp", *TRAIN_COMMON, f"trainer.max_steps={steps}"]
    if gpus:
        overrides.append("trainer.accelerator=gpu")
    cmd = [sys.executable, "-m", "laformer.cli.train", *overrides, f"hydra.run.dir={run_dir}"]
    code, output = run_subprocess(cmd, ctx.left() - 5, env=None if gpus else {"OMP_NUM_THREADS": "1"})
    if code is None:
        row.status, row.note = "timeout", f"laformer-train did not finish: {tail(output)}"
        return
    if code != 0 or not (run_dir / "summary.json").is_file():
        row.status, row.note = "error", f"exit {code}: {tail(output)}"
        return
    summary = json.loads((run_dir / "summary.json").read_text())
    row.steps, row.loss = summary["steps"], summary["metrics"].get("train/loss")
    row.images_per_s = summary["throughput"]["images_per_s"]
    one = next((r for r in ctx.results.rows if r.case == "demo/bf16-mixed" and r.status == "ok"), None)
    if gpus and one and row.images_per_s:
        row.ratio = row.images_per_s / one.images_per_s
    where = "global batch split over 2 GPUs" if gpus else "gloo on 2 CPU processes (dry run)"
    warned = "DDP warned: " + DDP_STRIDE_WARNING if DDP_STRIDE_WARNING in output else "no grad-stride warning"
    row.note = f"{where}; {warned}"
    if row.steps != steps or row.loss is None or not math.isfinite(row.loss):
        row.status = "error"


def part_compile(ctx: Context) -> Iterator[Row]:
    """The training step eager and compiled, measured by ``compile_worker`` in a fresh process under the budget."""
    plan = ctx.plan
    spec = {
        "device": ctx.device.type,
        "overrides": list(plan.compile_overrides),
        "batch": plan.compile_batch,
        "patch": plan.compile_patch,
        "steps": plan.compile_steps,
        "warmup": plan.warmup,
        "backend": plan.compile_backend,
        "precision": "bf16" if ctx.device.type == "cuda" else "fp32",
        "run_dir": str(ctx.work_dir / "compile"),
    }
    if plan.isolate_compile:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        code, output = run_subprocess(cmd, ctx.left() - 5)
        result = worker_result(output) or {}
    else:
        try:
            code, output, result = 0, "", compile_worker(spec)
        except Exception as exc:
            code, output, result = 1, describe(exc), {}
    size = f"{plan.compile_patch}x{plan.compile_patch} x{plan.compile_batch}"
    rows = {
        mode: Row("compile", mode, model="demo", precision=spec["precision"], size=size)
        for mode in ("eager", "compiled")
    }
    failure = "still running at the budget" if code is None else f"worker exit {code}"
    for mode, row in rows.items():
        measured = result.get(mode)
        row.note = "forward, loss, backward, AdamW step" if mode == "eager" else f"backend={plan.compile_backend}"
        if measured is None:
            row.status = "timeout" if code is None else "error"
            row.note += f"; {failure}: {tail(output)}"
        elif "error" in measured:
            row.status, row.note = "error", row.note + f"; did not compile: {measured['error']}"
        else:
            row.steps, row.loss, row.images_per_s = measured["steps"], measured["loss"], measured["images_per_s"]
            if not math.isfinite(row.loss):
                row.status, row.note = "error", row.note + f"; training loss is {row.loss}"
            if mode == "compiled":
                row.time_s = measured["compile_s"]
                row.note += "; time_s: the first step, compilation included"
                if rows["eager"].images_per_s:
                    row.ratio = row.images_per_s / rows["eager"].images_per_s
        yield row


def compile_worker(spec: dict) -> dict:
    """In a fresh process: the training step eager, then under ``torch.compile``; images/s of each."""
    import hydra
    import torch

    from laformer.inference.restore import autocast_context

    device = torch.device(spec["device"])
    cfg = compose_train(list(spec["overrides"]), Path(spec["run_dir"]))
    torch.manual_seed(0)
    module = hydra.utils.instantiate(cfg.module)
    net, loss_fn = module.net.to(device), module.loss
    optimizer = module.optimizer_factory(net.parameters())
    shape = (spec["batch"], 3, spec["patch"], spec["patch"])
    target = torch.rand(shape, device=device)
    noisy = (target + 0.1 * torch.randn(shape, device=device)).clamp(0, 1)

    def step(model) -> float:
        with autocast_context(spec["precision"], device):
            loss = loss_fn(model(noisy), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    def timed(model, warmup: int) -> dict:
        for _ in range(warmup):
            step(model)
        sync(device)
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            loss = step(model)
        sync(device)
        seconds = time.perf_counter() - start
        images_per_s = spec["steps"] * shape[0] / seconds
        return {"steps": spec["steps"], "loss": float(loss.detach()), "images_per_s": images_per_s}

    result: dict = {"eager": timed(net, spec["warmup"])}
    print(RESULT_PREFIX + json.dumps(result), flush=True)  # the eager figure survives a compile that hangs
    try:
        compiled = torch.compile(net, backend=spec["backend"])
        start = time.perf_counter()
        step(compiled)
        sync(device)
        compile_s = time.perf_counter() - start
        result["compiled"] = {**timed(compiled, spec["warmup"]), "compile_s": compile_s}
    except Exception as exc:
        result["compiled"] = {"error": describe(exc)}
    return result


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
        with time_limit(budget):
            for row in function(ctx):
                ctx.results.add(row)
    except PartTimeout as exc:
        row = ctx.in_flight or Row(name, "(part)")
        row.status, row.note = "timeout", f"{exc} during this case; the cases after it were not run"
        ctx.results.add(row)
    except Exception as exc:
        ctx.results.add(Row(name, "(part)", "error", note=describe(exc)))
    finally:
        free_memory(ctx.device.type == "cuda")
    print(f"[gpu-check] {name} took {time.monotonic() - started:.1f} s", flush=True)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(device, dry_run: bool) -> tuple[str, dict[str, str]]:
    """The results' file-name slug and the facts the Markdown header lists."""
    import lightning
    import torch

    header = {
        "date (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "mode": "dry run on the CPU (toy sizes; not a GPU result)" if dry_run else "GPU check",
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "host CPU": f"{cpu_model()}, {os.cpu_count()} logical cores",
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name = torch.cuda.get_device_name(device)
        header.update(
            {
                "GPU": f"{name} x{torch.cuda.device_count()}, {props.total_memory / 2**30:.0f} GiB, "
                f"compute capability {props.major}.{props.minor}",
                "CUDA / cuDNN": f"{torch.version.cuda} / {torch.backends.cudnn.version()}",
                "float32 matmul precision / cuDNN TF32": (
                    f"{torch.get_float32_matmul_precision()} / {torch.backends.cudnn.allow_tf32}"
                ),
            }
        )
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            header["driver"] = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip()
        return slug(name), header
    header["CPU threads"] = str(torch.get_num_threads())
    return "dry-run-cpu", header


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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(compile_worker(json.loads(args.worker))), flush=True)
        return 0

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
