"""How cost grows: training-step time and peak memory of the paper-size FGDM over S and B.

    python benchmarks/scaling.py [--frames 32 64 130 256 512] [--batches 1 8 32] [--out runs/scaling]
    python benchmarks/scaling.py --plot-only --out benchmarks/results   # redraw scaling.png from scaling.json

Each point runs `benchmarks/speed.py --quick` in its own process (so each peak RSS is its own) and the
results go to scaling.json and scaling.png under --out (the committed ones are in benchmarks/results: replacing
them takes --overwrite). A point that fails is recorded with its error's last line, and left out of the plot.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import InputError, positive_int, refuse_existing, run  # a sibling module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=positive_int, nargs="+", default=[32, 64, 130, 256, 512])
    ap.add_argument("--batches", type=positive_int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--out", default="runs/scaling", help="folder of scaling.json and .png (default runs/scaling)")
    ap.add_argument("--overwrite", action="store_true", help="replace the scaling.json and .png there")
    ap.add_argument("--timeout", type=positive_int, default=900, help="seconds per point")
    ap.add_argument("--plot-only", action="store_true", help="redraw the plot from an existing scaling.json")
    args = ap.parse_args()
    out = Path(args.out)
    if args.plot_only:
        plot(json.loads((out / "scaling.json").read_text()), out / "scaling.png")
        return
    refuse_existing([out / "scaling.json", out / "scaling.png"], args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    speed = Path(__file__).with_name("speed.py")
    points = []
    for B in args.batches:
        for S in args.frames:
            cmd = [sys.executable, str(speed), "--quick", "--batch", str(B), "--frames", str(S)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True)
                point = {"batch": B, "frames": S, **json.loads(done.stdout)}
            except subprocess.CalledProcessError as err:
                lines = (err.stderr or "").strip().splitlines() or [f"exit status {err.returncode}"]
                point = {"batch": B, "frames": S, "error": lines[-1]}
            except subprocess.TimeoutExpired:
                point = {"batch": B, "frames": S, "error": f"cut at --timeout {args.timeout} s"}
            print(json.dumps(point), flush=True)
            points.append(point)
            (out / "scaling.json").write_text(json.dumps(points, indent=2) + "\n")
    plot(points, out / "scaling.png")


def plot(points: list[dict], path: Path) -> None:
    if all("error" in p for p in points):
        raise InputError(f"no point finished, so no plot: {path.parent / 'scaling.json'} holds their errors")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for B in sorted({p["batch"] for p in points}):
        ok = [p for p in points if p["batch"] == B and "error" not in p]
        S = [p["frames"] for p in ok]
        (line,) = ax_t.plot(S, [p["train_step_s"] for p in ok], "o-", label=f"B = {B}: training step")
        ax_t.plot(S, [p["sample_s"] for p in ok], "s--", color=line.get_color(), label=f"B = {B}: 5-step sampling")
        ax_m.plot(S, [p["peak_rss_mb"] / 1024 for p in ok], "o-", label=f"B = {B}")
    for ax, title, unit in ((ax_t, "time", "seconds"), (ax_m, "peak resident memory", "GB")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("frames S")
        ax.set_ylabel(unit)
        ax.set_title(f"paper-size FGDM: {title}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    run(main)
