"""AdamW's step alone, plain against fused, on one network's parameters: the one part of a training step that the
fused kernel changes, measured where a whole-step benchmark cannot see it.

Whole demo steps move by about 10 % between runs on a shared two-core host, which hides a gain of a few per cent.
Here both optimisers hold copies of the same parameters and gradients, and their steps alternate in one process
(which one goes first alternates too), so both see the same machine. Run it alone on the machine.

    python experiments/throughput/optimizer_step.py                    # tiny LAformer, 200 steps each
    python experiments/throughput/optimizer_step.py --preset small --steps 50
"""

from __future__ import annotations

import argparse
import sys

import torch

from laformer.benchmarks.machine import cpu_name
from laformer.benchmarks.timing import Timing, time_calls
from laformer.models import LAformer


def twin_optimizers(preset: str, lr: float = 3e-3) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Plain and fused AdamW over two copies of ``preset``'s parameters, each copy given the same gradients."""
    torch.manual_seed(0)
    net = LAformer.from_preset(preset)
    copies = []
    for _ in range(2):
        params = [p.detach().clone().requires_grad_() for p in net.parameters()]
        copies.append(params)
    for a, b in zip(*copies):
        a.grad = torch.randn_like(a) * 1e-2
        b.grad = a.grad.clone()
    plain = torch.optim.AdamW(copies[0], lr=lr, weight_decay=1e-4)
    fused = torch.optim.AdamW(copies[1], lr=lr, weight_decay=1e-4, fused=True)
    return plain, fused


def largest_difference(plain: torch.optim.Optimizer, fused: torch.optim.Optimizer) -> float:
    pairs = zip(plain.param_groups[0]["params"], fused.param_groups[0]["params"])
    return max(float((a - b).detach().abs().max()) for a, b in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    plain, fused = twin_optimizers(args.preset)
    times: dict[str, list[float]] = {"plain": [], "fused": []}
    for step in range(args.steps + 2):  # the first two rounds warm up
        order = [("plain", plain), ("fused", fused)][:: 1 if step % 2 else -1]
        for name, optimizer in order:
            seconds = time_calls(optimizer.step, repeats=1).times[0]
            if step >= 2:
                times[name].append(seconds)
    medians = {name: Timing(t).median for name, t in times.items()}
    tensors = len(plain.param_groups[0]["params"])
    print(f"AdamW step of {args.preset} LAformer ({tensors} tensors), {args.steps} steps each, alternated")
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    ratio, difference = medians["plain"] / medians["fused"], largest_difference(plain, fused)
    print(f"plain {medians['plain'] * 1e3:.2f} ms, fused {medians['fused'] * 1e3:.2f} ms (median), x{ratio:.2f}")
    print(f"largest weight difference after the steps: {difference:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
