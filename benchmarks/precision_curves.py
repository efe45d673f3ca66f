"""Training-loss curves of `fgdm train` runs that differ in precision and seed: a table and a plot.

    python benchmarks/precision_curves.py OUT.png "TITLE=RUN[,RUN...]" ["TITLE=RUN[,RUN...]" ...] [--overwrite]

Each argument after OUT.png is one panel of the plot: a title and the output directories of its runs (each run's
last ``logs/version_*/metrics.csv``), or glob patterns of them (``DIR/loss-*``). A run's label is its directory's
name; name runs ``...-PRECISION-sSEED`` (e.g. ``loss-32-true-s0``, ``loss-bf16-mixed-s1``): float32 runs are drawn
solid, the others dashed, one colour per seed. The table (Markdown, on stdout) gives each run's steps and its mean
training loss over the middle fifth of its steps (40-60 %) and over the last fifth. ``benchmarks/results/speed.md``
(*bf16-mixed against float32 on the CPU*) made ``results/bf16_cpu_loss.png`` with it.
"""

import argparse
import glob
import re
import statistics
from pathlib import Path

from common import InputError, refuse_existing, run  # a sibling module

from fgdm.evaluation.html import newest_log, read_curves


def losses(directory: Path) -> list[tuple[float, float]]:
    """(step, training loss) of a run, from its newest log."""
    log = newest_log(directory)
    if log is None:
        raise InputError(f"{directory}: no logs/version_*/metrics.csv (not an fgdm train output directory?)")
    points = read_curves(log)["train/loss"]
    if not points:
        raise InputError(f"{log}: no train/loss logged")
    return points


def summary(points: list[tuple[float, float]]) -> tuple[int, str, str]:
    """Steps reached (the CSV's step counts from 0, the plot's and this from 1), the mean loss over steps 40-60 %
    and over the last fifth ("–" where none was logged)."""
    last = max(s for s, _ in points)

    def mean(lo: float, hi: float) -> str:
        values = [v for s, v in points if lo <= s < hi]
        return f"{statistics.mean(values):.4f}" if values else "–"

    return int(last) + 1, mean(0.4 * last, 0.6 * last), mean(0.8 * last, last + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the plot (PNG)")
    parser.add_argument("panels", nargs="+", metavar="TITLE=RUN[,RUN...]")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT.png (a committed plot, say)")
    args = parser.parse_args()
    refuse_existing([args.out], args.overwrite, "OUT.png")
    panels = []
    for spec in args.panels:
        title, sep, runs = spec.partition("=")
        if not sep or not runs:
            parser.error(f"{spec!r}: expected TITLE=RUN[,RUN...]")
        found = [Path(p) for r in runs.split(",") for p in (sorted(glob.glob(r)) if glob.has_magic(r) else [r])]
        if not found:
            parser.error(f"{spec!r}: no run matches")
        panels.append((title, found))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    print("| panel | run | steps | loss, steps 40-60 % | loss, last fifth |\n|---|---|---|---|---|")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4), sharey=True, squeeze=False)
    for ax, (title, runs) in zip(axes[0], panels, strict=True):
        for directory in runs:
            points = losses(directory)
            steps, middle, tail = summary(points)
            print(f"| {title} | {directory.name} | {steps} | {middle} | {tail} |")
            seed = re.search(r"-s(\d+)$", directory.name)
            x, y = [s + 1 for s, _ in points], [v for _, v in points]  # the steps trained (the CSV counts from 0)
            style = "-" if "32-true" in directory.name else "--"
            ax.plot(x, y, style, lw=1.1, label=directory.name, color=f"C{int(seed[1]) if seed else 0}")
        ax.set(title=title, xlabel="step", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("training loss (one batch per logged step)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"\nplot: {args.out}")


if __name__ == "__main__":
    run(main)
