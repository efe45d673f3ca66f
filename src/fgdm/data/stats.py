"""Corpus statistics, as printed by ``fgdm data check``."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from fgdm.data.corpus import Corpus
from fgdm.skeleton import CONVENTION, PT50, Skeleton, convention_problem


def mean_speed(pose: np.ndarray, joints: range | list[int]) -> float:
    """Mean per-frame displacement (Euclidean) of ``joints`` over a (S, J, 3) sequence; 0 for one frame."""
    if len(pose) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(pose[:, list(joints)], axis=0), axis=-1).mean())


def corpus_statistics(corpus: Corpus, skeleton: Skeleton = PT50, progress: bool = False, name: str = "") -> dict:
    """Statistics of one split: sizes, frame counts, value ranges, speeds (means over sequences)."""
    n = len(corpus)
    frames, glosses, speeds_body, speeds_hands, shoulders = [], [], [], [], []
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    neck_max = 0.0
    body, hands = skeleton.part("body"), skeleton.hands
    names = skeleton.names
    ls, rs, neck = names.index("left_shoulder"), names.index("right_shoulder"), skeleton.root
    vocab: set[str] = set()
    odd: list[str] = []  # sequences out of the PT convention, each with its problem
    short: list[str] = []  # sequences of fewer frames than glosses: no signing fits them
    for i in tqdm(range(n), desc=f"check {name}".strip(), disable=not progress):
        s = corpus[i]
        if problem := convention_problem(s.pose, skeleton):
            odd.append(f"{s.name}: {problem}")
        if len(s.pose) < len(s.glosses):
            short.append(f"{s.name}: {len(s.pose)} frame{'s' * (len(s.pose) != 1)}, {len(s.glosses)} glosses")
        frames.append(len(s.pose))
        glosses.append(len(s.glosses))
        vocab.update(s.glosses)
        flat = s.pose.reshape(-1, 3)
        lo, hi = np.minimum(lo, flat.min(0)), np.maximum(hi, flat.max(0))
        speeds_body.append(mean_speed(s.pose, body))
        speeds_hands.append(mean_speed(s.pose, hands))
        shoulders.append(np.linalg.norm(s.pose[:, ls] - s.pose[:, rs], axis=-1))
        neck_max = max(neck_max, float(np.abs(s.pose[:, neck]).max()))
    sw = np.concatenate(shoulders) if shoulders else np.zeros(1)
    return {
        "sequences": n,
        "frames": {
            "min": int(min(frames)),
            "median": float(np.median(frames)),
            "max": int(max(frames)),
            "total": int(sum(frames)),
        },
        "glosses_per_sequence": {
            "min": int(min(glosses)),
            "mean": round(float(np.mean(glosses)), 3),
            "max": int(max(glosses)),
        },
        "joints": skeleton.num_joints,
        "gloss_types": len(vocab),
        "value_range": {ax: [round(float(lo[k]), 5), round(float(hi[k]), 5)] for k, ax in enumerate("xyz")},
        "mean_speed": {
            "body": round(float(np.mean(speeds_body)), 5),
            "hands": round(float(np.mean(speeds_hands)), 5),
        },
        "shoulder_width": {"mean": round(float(sw.mean()), 5), "std": round(float(sw.std()), 5)},
        "neck_max_abs": round(neck_max, 6),
        "out_of_convention": {"sequences": len(odd), "example": odd[0]} if odd else None,
        "fewer_frames_than_glosses": {"sequences": len(short), "example": short[0]} if short else None,
    }


def check_directory(directory: Path | str, splits: Sequence[str] | None = None, skip_frames: int = 1,
                    progress: bool = False) -> dict:  # fmt: skip
    """Reads every split of a data directory (or the given ones), which validates each file, and returns
    their statistics, the gloss vocabulary's size and, per split, the gloss types unseen in train."""
    from fgdm.data.pt import DataFormatError
    from fgdm.data.sources import MANIFEST, data_splits, is_manifest, open_corpus, require_data_directory

    directory = require_data_directory(directory)
    splits = list(splits or data_splits(directory))
    if not splits:
        raise DataFormatError(directory, None, "no splits found (expected {split}.skels files or synth.json)")
    report: dict = {"path": str(directory), "splits": {}}
    vocab: set[str] = set()
    for split in splits:
        corpus = open_corpus(directory, split, skip_frames=skip_frames)
        if len(corpus) == 0:
            where = directory / (MANIFEST if is_manifest(directory) else f"{split}.skels")
            raise DataFormatError(where, None, f"the {split} split has no sequences")
        report["splits"][split] = corpus_statistics(corpus, progress=progress, name=split)
        glosses = {g for seq in corpus.gloss_sequences() for g in seq}
        if split == "train":
            vocab = glosses
        elif vocab:
            report["splits"][split]["gloss_types_unseen_in_train"] = len(glosses - vocab)
    report["gloss_vocabulary"] = len(vocab) if vocab else None
    flat = all(s["value_range"]["z"] == [0.0, 0.0] for s in report["splits"].values())
    report["depth"] = not flat
    if flat:
        warnings.warn(f"{directory}: in every split, {FLAT_POSES}", stacklevel=2)
    for split, stats in report["splits"].items():
        if out := stats["out_of_convention"]:
            n, are = out["sequences"], "is" if out["sequences"] == 1 else "are"
            warnings.warn(f"{directory}: {n} of the {split} split's {stats['sequences']} sequences {are} not in the PT "
                          f"convention ({CONVENTION}), e.g. {out['example']}", stacklevel=2)  # fmt: skip
        if short := stats["fewer_frames_than_glosses"]:
            n, have = short["sequences"], "has" if short["sequences"] == 1 else "have"
            warnings.warn(f"{directory}: {n} of the {split} split's {stats['sequences']} sequences {have} fewer frames "
                          f"than glosses (no signing fits them), e.g. {short['example']}", stacklevel=2)  # fmt: skip
        if problem := thinned(stats["frames"]["median"], skip_frames, f"--skip-frames {skip_frames}", split):
            warnings.warn(f"{directory}: {problem}", stacklevel=2)
    for problem in [] if is_manifest(directory) else shared_recordings(directory, splits):
        warnings.warn(problem, stacklevel=2)
    return report


SHORTEST_SIGNING = 8  # frames: a median sequence shorter than this after skip_frames is warned of


def thinned(median: float, skip_frames: int, setting: str, split: str = "training") -> str | None:
    """What is wrong where ``skip_frames`` (``setting``) leaves a split's sequences ``median`` frames long at the
    median: too short for signing (1000 would make 1-frame "sentences", and nothing else would say so); or None."""
    if skip_frames == 1 or median >= SHORTEST_SIGNING:
        return None
    return (f"{setting} leaves the {split} sequences {median:g} frame{'s' * (median != 1)} long at the median: too "
            "few for signing to be learnt or read (PT data's 25 fps take 1 or 2)")  # fmt: skip


def shared_recordings(directory: Path | str, splits: Sequence[str]) -> list[str]:
    """For each pair of a PT directory's splits that share sequence names (``.files``; one recording in two splits,
    whose scores it would flatter), what to say: how many, and the first with both lines."""
    from fgdm.data.pt import sequence_names, text_lines

    first: dict[str, tuple[str, int]] = {}  # name → (split, line) where first seen
    said = []
    for split in splits:
        path = Path(directory) / f"{split}.files"
        shared: dict[str, list[tuple[int, str, int]]] = {}  # earlier split → (line, name, its line)
        for line, name in enumerate(sequence_names(path, text_lines(path)) if path.is_file() else [], start=1):
            other, at = first.setdefault(name, (split, line))
            if other != split:
                shared.setdefault(other, []).append((line, name, at))
        for other, rows in shared.items():
            line, name, at = rows[0]
            said.append(f"{path}:{line}: {name!r} is also {Path(directory) / f'{other}.files'}:{at}, one recording in "
                        f"two splits ({len(rows)} name{'s' * (len(rows) != 1)} of {split} in {other})")  # fmt: skip
    return said


FLAT_POSES = (
    "z is 0 in every frame (2D poses); a model trained on them samples z = 0 with diffusion.standardise "
    "(a coordinate that never moves in training is held; without it, small z values count in DTW-MJE)"
)


def warn_unconventional(poses: Iterable[np.ndarray], where: str, standardise: bool, skeleton: Skeleton = PT50) -> None:
    """Before training on ``poses`` (a sample of the training split, named ``where``): warns where some are not in
    the PT convention (:func:`fgdm.skeleton.convention_problem`), and where all are 2D and the diffusion is not
    standardised."""
    problems, flat, n = [], True, 0
    for pose in poses:
        n += 1
        if problem := convention_problem(pose, skeleton):
            problems.append(problem)
        flat = flat and not pose[..., 2].any()
    if problems:
        are = "is" if len(problems) == 1 else "are"
        warnings.warn(f"{where}: {len(problems)} of {n} sequences read {are} not in the PT convention ({CONVENTION}), "
                      f"e.g. {problems[0]}", stacklevel=2)  # fmt: skip
    if n and flat and not standardise:
        warnings.warn(f"{where}: {FLAT_POSES}", stacklevel=2)
