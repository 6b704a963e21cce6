"""Parameters and MACs of every LAformer preset and attention variant (and of peer networks), as markdown tables.

Counting runs on the meta device (``laformer.models.complexity``), so it needs neither memory nor time even
for quadratic softmax attention at large sizes.

    python experiments/model_complexity.py                      # 256 x 256
    python experiments/model_complexity.py --size 512 --out experiments/model_complexity_512.md
    python experiments/model_complexity.py --models all         # + every peer family at base and small (spandrel)
    python experiments/model_complexity.py --models nafnet:base,restormer:base
"""

from __future__ import annotations

import argparse
from pathlib import Path

from laformer.benchmarks import parse_size
from laformer.benchmarks.networks import cost, model_overrides
from laformer.models import ATTENTIONS, PRESETS
from laformer.reports import markdown_table

# Restormer (CVPR 2022), its own report at 256 x 256.
RESTORMER_MACS_G = 141.0
RESTORMER_PARAMS_M = 26.1
COLUMNS = {"preset": "preset", "attention": "attention", "params_m": "params (M)", "macs_g": "MACs (G)"}
PEER_COLUMNS = {"network": "network", "preset": "preset", "params_m": "params (M)", "macs_g": "MACs (G)"}
FORMATS = {"params_m": ".2f", "macs_g": ".2f"}


def measure(presets: list[str], attentions: list[str], height: int, width: int) -> list[dict]:
    rows = []
    for preset in presets:
        for attention in attentions:
            params_m, macs_g = cost(model_overrides(preset, attention), height, width)
            rows.append({"preset": preset, "attention": attention, "params_m": params_m, "macs_g": macs_g})
    return rows


def expand_models(text: str) -> list[str]:
    """``all`` -> every peer family at ``base`` and ``small``; otherwise the comma-separated FAMILY:PRESET names."""
    if text.strip() == "all":
        from laformer.models.peers import FAMILIES

        return [f"{name}:{preset}" for name in FAMILIES for preset in ("base", "small")]
    return [part.strip() for part in text.split(",") if part.strip()]


def measure_peers(models: list[str], height: int, width: int) -> list[dict]:
    rows = []
    for name in models:
        family, _, preset = name.partition(":")
        params_m, macs_g = cost(model_overrides(f"{family}:{preset or 'base'}"), height, width)
        rows.append({"network": family, "preset": preset or "base", "params_m": params_m, "macs_g": macs_g})
    return rows


def render_peers(rows: list[dict], height: int, width: int) -> str:
    title = f"## Peer networks at {width} x {height} (W x H) (laformer.models.peers, spandrel's classes)"
    return f"{title}\n\n" + markdown_table(rows, PEER_COLUMNS, FORMATS)


def render(rows: list[dict], height: int, width: int) -> str:
    table = markdown_table(rows, COLUMNS, FORMATS).rstrip("\n")
    lines = [f"# LAformer complexity at {width} x {height} (W x H), 1 x 3 input", "", table]
    reference = next((r for r in rows if r["preset"] == "base" and r["attention"] == "rela"), None)
    if reference is not None:
        lines.append("")
        if (height, width) == (256, 256):
            lines.append(
                f"base/rela vs Restormer (reported {RESTORMER_MACS_G:g} G MACs, {RESTORMER_PARAMS_M:g} M params "
                f"at 256 x 256): MACs {100 * reference['macs_g'] / RESTORMER_MACS_G:.1f} %, "
                f"params {100 * reference['params_m'] / RESTORMER_PARAMS_M:.1f} %"
            )
        else:
            lines.append(
                f"base/rela params vs Restormer ({RESTORMER_PARAMS_M:g} M): "
                f"{100 * reference['params_m'] / RESTORMER_PARAMS_M:.1f} % "
                f"(Restormer's {RESTORMER_MACS_G:g} G MACs are reported at 256 x 256 only; run with --size 256)"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256", help="square side (256) or WxH (3840x2160); default 256")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    parser.add_argument("--attention", default=",".join(ATTENTIONS), help="comma-separated attention variants")
    parser.add_argument(
        "--models", default="", help="peer networks as FAMILY:PRESET,... or 'all' (every family at base and small)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    args = parser.parse_args(argv)

    height, width = parse_size(args.size)
    rows = measure(args.presets.split(","), args.attention.split(","), height, width)
    table = render(rows, height, width)
    if models := expand_models(args.models):
        table += "\n" + render_peers(measure_peers(models, height, width), height, width)
    print(table, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)


if __name__ == "__main__":
    main()
