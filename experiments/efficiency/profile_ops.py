"""Operator counts (and self time) of one LAformer forward, or forward + backward, from ``torch.profiler``.

The eager optimisations of issue 25 were chosen from this table: operator *counts* (``aten::copy_``, permutes,
``contiguous`` calls) do not depend on the load of a shared machine, so they are the evidence; self times are
only indicative unless the machine is otherwise idle.

    python experiments/efficiency/profile_ops.py --preset tiny --size 512 --memory-format channels_last
    python experiments/efficiency/profile_ops.py --preset tiny --size 128 --backward --top 25
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch
from torch.profiler import ProfilerActivity, profile

from laformer.benchmarks import parse_size
from laformer.benchmarks.networks import build, model_overrides

WATCHED = ("aten::copy_", "aten::contiguous", "aten::clone", "aten::permute", "aten::to", "aten::_to_copy")


def op_counts(
    net: torch.nn.Module, x: torch.Tensor, backward: bool = False
) -> tuple[dict[str, int], dict[str, float], str]:
    """(calls per operator, self CPU time per operator in ms, the profiler's table) of one pass of ``net``."""
    x = x.clone().requires_grad_(backward)
    context = torch.enable_grad() if backward else torch.inference_mode()
    with profile(activities=[ProfilerActivity.CPU]) as prof, context:
        out = net(x)
        if backward:
            out.sum().backward()
    events = prof.key_averages()
    counts = {e.key: e.count for e in events}
    self_ms = {e.key: e.self_cpu_time_total / 1e3 for e in events}
    return counts, self_ms, events.table(sort_by="self_cpu_time_total", row_limit=30)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--attention", default="rela")
    parser.add_argument("--size", default="512")
    parser.add_argument("--memory-format", choices=("contiguous", "channels_last"), default="channels_last")
    parser.add_argument("--backward", action="store_true", help="profile forward + backward (training)")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    height, width = parse_size(args.size)
    net = build(model_overrides(args.preset, args.attention))
    x = torch.rand(1, 3, height, width)
    if args.memory_format == "channels_last":
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    if not args.backward:
        net.eval()
    counts, self_ms, table = op_counts(net, x, args.backward)
    print("\n".join(table.splitlines()[: args.top + 3]))
    print("layout ops (calls):", {k: counts.get(k, 0) for k in WATCHED})
    print(f"all ops: {sum(counts.values())} calls, self time {sum(self_ms.values()):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
