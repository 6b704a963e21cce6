"""Log-log plot of forward time and peak memory against megapixels, one line per (preset, attention).

Reads a CSV written by ``benchmark.py``. Measured points are solid; sizes that were not run but estimated
(``oom-predicted``, ``skipped (quadratic)``) are hollow markers on a dotted line. A dashed grey line of
slope 1 (cost proportional to pixels) is drawn through the first point for reference.

    python experiments/efficiency/plot.py experiments/efficiency/results_cpu.csv [-o results_cpu.png]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from laformer.reports import read_csv

# (measured column, estimate column, axis label, draw the slope-1 reference). Peak memory includes the model
# and the runtime (a constant), so only the forward-pass memory (peak - baseline) is compared with slope 1.
PANELS = (
    ("time_median_s", "est_time_s", "forward time (s)", True),
    ("peak_mem_mb", "est_peak_mem_mb", "peak memory (MiB)", False),
    ("delta_mem_mb", None, "forward-pass memory: peak - baseline (MiB)", True),
)


def load_series(path: Path) -> dict[tuple[str, str], list[dict]]:
    """Rows per (preset, attention), by increasing pixels, with numbers parsed."""
    series: dict[tuple[str, str], list[dict]] = {}
    for record in read_csv(path):
        row = {"size": str(record["size"]), "status": record["status"], "mp": record["pixels"] / 1e6}
        for measured, estimated, _, _ in PANELS:
            row[measured] = record.get(measured)
            row[estimated] = record.get(estimated) if estimated else None
        series.setdefault((record["preset"], record["attention"]), []).append(row)
    return {key: sorted(rows, key=lambda r: r["mp"]) for key, rows in series.items()}


def plot_results(csv_path: str | Path, png_path: str | Path | None = None) -> Path:
    """Draw ``csv_path`` into ``png_path`` (default: the CSV's path with .png); returns the PNG's path."""
    csv_path = Path(csv_path)
    png_path = Path(png_path) if png_path else csv_path.with_suffix(".png")
    series = load_series(csv_path)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4.8))
    colours = itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    styles = {"rela": "o", "linear": "s", "softmax": "^"}
    for (preset, attention), rows in series.items():
        colour, marker = next(colours), styles.get(attention, "D")
        for ax, (measured, estimated, _, _) in zip(axes, PANELS):
            # Non-positive values (a forward pass too small to raise the RSS) have no place on a log axis.
            ok = [(r["mp"], r[measured]) for r in rows if r["status"] == "ok" and r[measured] and r[measured] > 0]
            est = [(r["mp"], r[estimated]) for r in rows if estimated and r[estimated]]
            if ok:
                ax.plot(*zip(*ok), marker=marker, color=colour, label=f"{preset} {attention}")
            if est:
                link = ok[-1:] + est  # dotted from the last measured point into the estimates
                ax.plot(*zip(*link), linestyle=":", color=colour)
                ax.plot(*zip(*est), marker=marker, linestyle="none", mfc="none", color=colour)
    for ax, (measured, _, label, reference) in zip(axes, PANELS):
        firsts = [
            next((r for r in rows if r["status"] == "ok" and (r[measured] or 0) > 0), None) for rows in series.values()
        ]
        firsts = [r for r in firsts if r]
        if firsts and reference:
            start = min(firsts, key=lambda r: r["mp"])
            top = max(r["mp"] for rows in series.values() for r in rows)
            ax.plot([start["mp"], top], [start[measured], start[measured] * top / start["mp"]], "--", color="0.6",
                    label="slope 1 (linear in pixels)")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("megapixels")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Forward pass: {csv_path.name} (hollow: estimated, not run)")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Plot a benchmark.py CSV: time and memory vs megapixels.")
    parser.add_argument("csv", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=None, help="default: the CSV's path with .png")
    args = parser.parse_args(argv)
    print(plot_results(args.csv, args.output))


if __name__ == "__main__":
    main()
