"""What predictors that learn nothing reach on DTW-MJE, and how much of the error no gloss can explain.

    python benchmarks/baselines.py DATA_DIR [--split dev] [--skip-frames 2] [--name dgs-pt] [--ridge 0.1]
        [--checkpoint CKPT ...] [--seeds 0 1] [--ensemble]

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
- ridge regression: each sequence's mean pose from its bag of glosses (each gloss's share of the
  sequence's tokens, as annotated), fitted on the training split with penalty `--ridge`, held;
- the reference's own mean / median pose: not a predictor (it reads the answer), but the part of the
  error that a per-sequence static offset explains;
- the evaluation split's mean pose: not a predictor either; one place for the whole split, read from its
  references (on dgs-pt dev, a signer and recording training never saw).

With --checkpoint, each trained generator is scored beside them (5 DDIM steps, η 1, the references' lengths,
each of --seeds), and its output split into where it places the pose and how it moves around that place:

- generated: the samples as they are;
- its placement alone: each sample's own mean pose, held;
- its motion alone: each sample minus its own mean, on the training set's mean pose;
- its motion on the reference's placement: each sample minus its own mean, on the reference's own mean
  pose (an oracle placement: whether the motion itself lowers the error);
- another sentence's glosses: sequence i sampled from the glosses of sequence i + N/2 (mod N) at its own
  reference's length (whether the glosses, not the length, carry the placement);

with --ensemble, also the frame-by-frame mean of all checkpoints' samples for each seed (how much of a
generator's error is the spread between training runs rather than their shared bias) and, with several
--seeds, of each checkpoint's samples over the seeds (how much is the spread between samplings);

and two figures: the placement error (L1 between a sample's mean pose and its reference's, summed over
coordinates, averaged over sequences; the same for the training mean pose) and the motion amplitude (L1
between each frame and the sequence's own mean pose, per frame; the same for the references).

The table goes to benchmarks/results/baselines/NAME.md and .json (replacing those only with --overwrite).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import InputError, count, nonnegative, positive_int, refuse_existing, run  # noqa: E402  (a sibling module)

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


def predictions(
    train_poses, train_glosses, refs, glosses, mean: np.ndarray, min_count: int = 3, grid: int = 50, ridge: float = 0.1
):
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
    placed = ridge_placements(train_poses, train_glosses, glosses, ridge)
    rows[f"ridge regression, bag of glosses → mean pose (λ {ridge:g})"] = [
        _held(p, len(r)) for p, r in zip(placed, refs, strict=True)
    ]
    rows["reference's own mean pose (oracle)"] = [_held(r.mean(0), len(r)) for r in refs]
    rows["reference's own median pose (oracle)"] = [_held(np.median(r, 0), len(r)) for r in refs]
    split_mean = np.concatenate(refs).mean(0)
    rows["the evaluation split's mean pose (oracle)"] = [_held(split_mean, len(r)) for r in refs]
    return rows


def ridge_placements(train_poses, train_glosses, glosses, penalty: float) -> np.ndarray:
    """Each evaluation sequence's mean pose (N, J, 3) by ridge regression from its bag of glosses (each
    gloss's share of the sequence's tokens; glosses unseen in training are left out), fitted on the
    training sequences' mean poses centred on their average (the intercept goes unpenalised)."""
    index = {g: i for i, g in enumerate(sorted({g for gl in train_glosses for g in gl}))}

    def bags(sentences) -> np.ndarray:
        x = np.zeros((len(sentences), len(index)))
        for row, gl in zip(x, sentences, strict=True):
            for g in gl:
                if g in index:
                    row[index[g]] += 1.0 / len(gl)
        return x

    x, targets = bags(train_glosses), np.stack([p.mean(0).ravel() for p in train_poses])
    x_mean, y_mean = x.mean(0), targets.mean(0)
    xc = x - x_mean
    weights = np.linalg.solve(xc.T @ xc + penalty * np.eye(len(index)), xc.T @ (targets - y_mean))
    placed = (bags(glosses) - x_mean) @ weights + y_mean
    return placed.reshape(len(glosses), *train_poses[0].shape[1:]).astype(np.float32)


def placement_error(preds: list[np.ndarray], refs: list[np.ndarray]) -> float:
    """Mean over sequences of the L1 distance between a prediction's mean pose and its reference's."""
    return float(np.mean([np.abs(p.mean(0) - r.mean(0)).sum() for p, r in zip(preds, refs, strict=True)]))


def motion_amplitude(poses: list[np.ndarray]) -> float:
    """Mean per-frame L1 distance from each sequence's own mean pose."""
    return float(np.mean([np.abs(p - p.mean(0)).reshape(len(p), -1).sum(1).mean() for p in poses]))


def decomposition(generated: list[np.ndarray], refs: list[np.ndarray], mean: np.ndarray) -> dict[str, list]:
    """A generator's samples split into their placement (each one's mean pose) and their motion around it."""
    return {
        "generated": generated,
        "its placement alone (own mean pose, held)": [_held(g.mean(0), len(g)) for g in generated],
        "its motion alone (on the training mean pose)": [g - g.mean(0) + mean for g in generated],
        "its motion on the reference's own mean pose (oracle)": [
            g - g.mean(0) + r.mean(0) for g, r in zip(generated, refs, strict=True)
        ],
    }


def generator_rows(
    checkpoints: list[Path], seeds: list[int], samples, refs, mean, ensemble: bool = False, skip_frames: int = 2
) -> tuple[dict, list[str]]:
    """Decomposition rows of each checkpoint and seed, and one line of figures each; with ``ensemble``, also
    the frame-by-frame mean of all checkpoints' samples for each seed (the references' lengths align them).
    Every checkpoint must sample at the references' ``skip_frames``: checked before any sampling."""
    from fgdm.sampling import generate_for, load_for_sampling

    # each sequence with the glosses of the one half the split further on (neighbours in a corpus often share a
    # conversation); its pose, so its length, stays its own
    half = len(samples) // 2
    swapped = [replace(s, glosses=samples[(i + half) % len(samples)].glosses) for i, s in enumerate(samples)]
    rows: dict[str, list[np.ndarray]] = {}
    notes = []
    by_seed: dict[int, list[list[np.ndarray]]] = defaultdict(list)
    generators = [load_for_sampling(path, device="cpu") for path in checkpoints]
    for path, loaded in zip(checkpoints, generators, strict=True):
        if (skip := loaded.cfg.data.skip_frames) != skip_frames:
            raise InputError(f"{path}: trained at skip_frames {skip}, the references at --skip-frames "
                             f"{skip_frames}: give --skip-frames {skip}")  # fmt: skip
    runs = [path.parent.parent.name if path.parent.name == "checkpoints" else path.stem for path in checkpoints]
    labels = [f"{r}, step {loaded.step}" for r, loaded in zip(runs, generators, strict=True)]
    if len(set(labels)) < len(labels):  # one's rows would replace the other's
        twice = next(label for label in labels if labels.count(label) > 1)
        raise InputError(f"two checkpoints read as {twice!r} (a run's name and step label its rows): give each run "
                         "its own directory name")  # fmt: skip
    for label_of_run, loaded in zip(labels, generators, strict=True):
        for seed in seeds:
            generated = generate_for(loaded, samples, steps=5, eta=1.0, seed=seed)
            by_seed[seed].append(generated)
            label = f"{label_of_run}, seed {seed}"
            rows |= {f"{label}: {k}": v for k, v in decomposition(generated, refs, mean).items()}
            rows[f"{label}: from another sentence's glosses"] = generate_for(
                loaded, swapped, steps=5, eta=1.0, seed=seed
            )
            notes.append(_figures(label, generated, refs))
        if ensemble and len(seeds) > 1:
            label = f"{label_of_run}: mean of its samples with the {len(seeds)} seeds"
            rows[label] = _averaged([by_seed[seed][-1] for seed in seeds])
            notes.append(_figures(label, rows[label], refs))
    if ensemble:
        for seed, outputs in by_seed.items():
            averaged = _averaged(outputs)
            label = f"mean of the {len(outputs)} generators' samples, seed {seed}"
            rows[label] = averaged
            notes.append(_figures(label, averaged, refs))
    return rows, notes


def _averaged(outputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The frame-by-frame mean of several samplings of the same sequences (same lengths)."""
    return [np.mean(parts, axis=0) for parts in zip(*outputs, strict=True)]


def _figures(label: str, poses: list[np.ndarray], refs: list[np.ndarray]) -> str:
    """One line of figures: placement error and motion amplitude."""
    error, amplitude = placement_error(poses, refs), motion_amplitude(poses)
    return f"- {label}: placement error {error:.3f}, motion amplitude {amplitude:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="PT directory or synthetic manifest directory")
    ap.add_argument("--split", default="dev", help="evaluation split (default dev)")
    ap.add_argument("--skip-frames", type=positive_int, default=2, help="keep every k-th frame, as the config does (2)")
    ap.add_argument("--min-count", type=positive_int, default=3,
                    help="gloss lookup: training sequences a gloss needs (3)")  # fmt: skip
    ap.add_argument("--ridge", type=nonnegative, default=0.1, help="ridge regression's penalty λ ≥ 0 (0.1)")
    ap.add_argument("--name", help="results name (default: the directory's name)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "baselines")
    ap.add_argument("--overwrite", action="store_true", help="replace the results NAME.md and .json there")
    ap.add_argument("--checkpoint", type=Path, nargs="+", default=[], help="trained generators to decompose")
    ap.add_argument("--seeds", type=count, nargs="+", default=[0], help="sampling seeds per checkpoint (0)")
    ap.add_argument(
        "--ensemble",
        action="store_true",
        help="also score the mean of all checkpoints' samples (how much of the error is their spread)",
    )
    args = ap.parse_args()
    name = args.name or args.data.resolve().name
    refuse_existing([args.results / f"{name}.md", args.results / f"{name}.json"], args.overwrite,
                    option="--name or --results")  # fmt: skip

    train = open_corpus(args.data, "train", args.skip_frames)
    test = open_corpus(args.data, args.split, args.skip_frames)
    train_samples = [train[i] for i in range(len(train))]
    samples = [test[i] for i in range(len(test))]
    refs = [s.pose for s in samples]
    mean = mean_pose(train)
    rows = predictions(
        [s.pose for s in train_samples], [s.glosses for s in train_samples], refs, [s.glosses for s in samples],
        mean, args.min_count, ridge=args.ridge,
    )  # fmt: skip
    notes = [
        f"- the training mean pose: placement error {placement_error([_held(mean, len(r)) for r in refs], refs):.3f}",
        f"- the references: motion amplitude {motion_amplitude(refs):.3f}",
    ]
    if args.checkpoint:
        more, more_notes = generator_rows(
            args.checkpoint, args.seeds, samples, refs, mean, args.ensemble, args.skip_frames
        )
        rows |= more
        notes += more_notes
    scores = {name: dtw_mje_parts(poses, refs) for name, poses in rows.items()}
    floor = scores["mean pose (the protocol's floor)"]["all"]
    lines = [
        f"# Baselines that learn nothing{', and trained generators decomposed' if args.checkpoint else ''}: "
        f"{name}, {args.split} split ({len(refs)} sequences)", "",
        f"Made by `python benchmarks/baselines.py DATA --split {args.split} --skip-frames {args.skip_frames} "
        f"--min-count {args.min_count} --ridge {args.ridge:g} --name {name}"
        + (f" --checkpoint CKPT… --seeds {' '.join(map(str, args.seeds))}" if args.checkpoint else "")
        + (" --ensemble" if args.checkpoint and args.ensemble else "")
        + f"`; training split: {len(train_samples)} sequences.", "",
        "| predictor | DTW-MJE | body | hands | vs mean pose |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for row, s in scores.items():
        rel = 100.0 * (s["all"] / floor - 1.0)
        lines.append(f"| {row} | {s['all']:.3f} | {s['body']:.3f} | {s['hands']:.3f} | {rel:+.1f} % |")
    lines += ["", "Placement error (L1, a sequence's mean pose against its reference's) and motion amplitude (L1 per",
              "frame from the sequence's own mean pose):", "", *notes]  # fmt: skip
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = {"data": name, "split": args.split, "skip_frames": args.skip_frames, "min_count": args.min_count,
           "ridge": args.ridge,
           "rows": {k: {p: round(v, 4) for p, v in s.items()} for k, s in scores.items()}}  # fmt: skip
    doc["figures"] = notes
    (args.results / f"{name}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run(main)
