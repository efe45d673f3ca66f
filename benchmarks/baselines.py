"""What predictors that learn nothing reach on DTW-MJE, and how much of the error no gloss can explain.

    python benchmarks/baselines.py DATA_DIR [--split dev] [--skip-frames 2] [--name dgs-pt]

DATA_DIR is a PT directory (or a synthetic manifest). Each row predicts the evaluation split's poses
from the training split alone, held for each reference's length, and is scored with the protocol's
DTW-MJE (all joints, body, hands):

- mean pose: the training set's mean pose (the protocol's floor, `fgdm.evaluation.protocol.mean_pose`);
- median pose: the per-coordinate median, the best constant under DTW-MJE's L1 frame cost;
- mean / median trajectory: the training sequences resampled to one normalised time axis and averaged;
- gloss lookup: the mean, over the sequence's glosses seen in training at least `--min-count` times, of
  the mean pose of the training sequences containing that gloss (glosses compared without their `*`/`^`
  marks);
- retrieval: the training sequence sharing the most glosses (Jaccard), resampled to the length;
- the reference's own mean / median pose: not a predictor (it reads the answer), but the part of the
  error that a per-sequence static offset explains.

The table goes to benchmarks/results/baselines/NAME.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fgdm.data.sources import open_corpus  # noqa: E402
from fgdm.evaluation.protocol import mean_pose  # noqa: E402
from fgdm.metrics.dtw import dtw_mje_parts  # noqa: E402


def resample(pose: np.ndarray, frames: int) -> np.ndarray:
    """(S, J, 3) → (frames, J, 3) by linear interpolation over normalised time."""
    x = np.linspace(0.0, len(pose) - 1, frames)
    i = np.floor(x).astype(int)
    j = np.minimum(i + 1, len(pose) - 1)
    w = (x - i)[:, None, None]
    return (pose[i] * (1 - w) + pose[j] * w).astype(np.float32)


def _bare(gloss: str) -> str:
    return gloss.rstrip("*^")


def _held(pose: np.ndarray, frames: int) -> np.ndarray:
    """One (J, 3) pose held for ``frames`` frames."""
    return np.repeat(pose[None], frames, 0)


def predictions(train_poses, train_glosses, refs, glosses, mean: np.ndarray, min_count: int = 3, grid: int = 50):
    """Each baseline's poses for the evaluation split: {row name: [(S_i, J, 3)]}; ``mean`` is the training
    set's mean pose (the floor's row, and the gloss lookup's fallback)."""
    median = np.median(np.concatenate(train_poses), 0)
    traj = np.stack([resample(p, grid) for p in train_poses])
    rows = {
        "mean pose (the protocol's floor)": [_held(mean, len(r)) for r in refs],
        "median pose": [_held(median, len(r)) for r in refs],
        "mean trajectory": [resample(traj.mean(0), len(r)) for r in refs],
        "median trajectory": [resample(np.median(traj, 0), len(r)) for r in refs],
    }
    by_gloss: dict[str, list[np.ndarray]] = defaultdict(list)
    for pose, gl in zip(train_poses, train_glosses, strict=True):
        for g in set(map(_bare, gl)):
            by_gloss[g].append(pose.mean(0))
    train_sets = [set(map(_bare, gl)) for gl in train_glosses]
    lookup, retrieval = [], []
    for ref, gl in zip(refs, glosses, strict=True):
        seen = [np.mean(by_gloss[g], 0) for g in map(_bare, gl) if len(by_gloss[g]) >= min_count]
        lookup.append(_held(np.mean(seen, 0) if seen else mean, len(ref)))
        mine = set(map(_bare, gl))
        overlap = [len(mine & s) / max(len(mine | s), 1) for s in train_sets]
        retrieval.append(resample(train_poses[int(np.argmax(overlap))], len(ref)))
    rows[f"gloss lookup (glosses seen ≥ {min_count}×)"] = lookup
    rows["retrieval (most shared glosses)"] = retrieval
    rows["reference's own mean pose (oracle)"] = [_held(r.mean(0), len(r)) for r in refs]
    rows["reference's own median pose (oracle)"] = [_held(np.median(r, 0), len(r)) for r in refs]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="PT directory or synthetic manifest directory")
    ap.add_argument("--split", default="dev", help="evaluation split (default dev)")
    ap.add_argument("--skip-frames", type=int, default=2, help="keep every k-th frame, as the config does (2)")
    ap.add_argument("--min-count", type=int, default=3, help="gloss lookup: training sequences a gloss needs (3)")
    ap.add_argument("--name", help="results name (default: the directory's name)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "baselines")
    args = ap.parse_args()

    train = open_corpus(args.data, "train", args.skip_frames)
    test = open_corpus(args.data, args.split, args.skip_frames)
    train_samples = [train[i] for i in range(len(train))]
    samples = [test[i] for i in range(len(test))]
    refs = [s.pose for s in samples]
    rows = predictions(
        [s.pose for s in train_samples], [s.glosses for s in train_samples], refs, [s.glosses for s in samples],
        mean_pose(train), args.min_count,
    )  # fmt: skip
    scores = {name: dtw_mje_parts(poses, refs) for name, poses in rows.items()}
    floor = scores["mean pose (the protocol's floor)"]["all"]
    name = args.name or args.data.resolve().name
    lines = [
        f"# Baselines that learn nothing: {name}, {args.split} split ({len(refs)} sequences)", "",
        f"Made by `python benchmarks/baselines.py DATA --split {args.split} --skip-frames {args.skip_frames} "
        f"--min-count {args.min_count} --name {name}`; training split: {len(train_samples)} sequences.", "",
        "| predictor | DTW-MJE | body | hands | vs mean pose |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for row, s in scores.items():
        rel = 100.0 * (s["all"] / floor - 1.0)
        lines.append(f"| {row} | {s['all']:.3f} | {s['body']:.3f} | {s['hands']:.3f} | {rel:+.1f} % |")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = {"data": name, "split": args.split, "skip_frames": args.skip_frames, "min_count": args.min_count,
           "rows": {k: {p: round(v, 4) for p, v in s.items()} for k, s in scores.items()}}  # fmt: skip
    (args.results / f"{name}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
