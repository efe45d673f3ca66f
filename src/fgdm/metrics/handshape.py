"""Hand metrics: are the fingers the right length, and is each finger bent where it should be?

Both read joint positions only, so they apply to any system's poses:

- **finger bone-length ratio**: the mean length of a bone inside the hands (20 a hand) over all
  frames of the generated sequences, divided by the same mean for the ground truth. Collapsed
  fingers score far below 1, exploded ones above; sequences longer or shorter than the truth do not
  move it (a mean per frame, not a sum).
- **handshape agreement**: a finger's extension is its tip's distance from the hand root over the
  length of its chain (hand root → four joints → tip): 1 when straight. Each finger is *bent* below
  0.45, *curved* below 0.83, else *straight* (the valleys of the embedded language's distribution);
  a hand's shape is its five states (243 shapes). The generated and true sequences are aligned by
  DTW on the extension values, and the agreement is the share of aligned frame pairs in which a
  hand has the same five states, averaged over both hands, × 100. Ground truth scores exactly 100.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fgdm.metrics.dtw import dtw_path, frame_cost
from fgdm.skeleton import FINGERS, JOINTS_PER_FINGER, PT50, Skeleton

STATES = (0.45, 0.83)  # extension thresholds between bent, curved and straight


def finger_bones(skeleton: Skeleton = PT50) -> list[tuple[int, int]]:
    """(child, parent) bones with both ends inside one hand."""
    hands = [set(skeleton.part(n)) for n in ("left_hand", "right_hand")]
    return [(c, p) for c, p in skeleton.bones if any(c in h and p in h for h in hands)]


def finger_chains(skeleton: Skeleton = PT50) -> np.ndarray:
    """(2 hands, 5 fingers, 5 joints): hand root then the finger's joints, root to tip."""
    chains = []
    for name in ("left_hand", "right_hand"):
        root = skeleton.part_root(name)
        chains.append(
            [[root, *range(root + 1 + f * JOINTS_PER_FINGER, root + 1 + (f + 1) * JOINTS_PER_FINGER)]
             for f in range(len(FINGERS))]
        )  # fmt: skip
    return np.asarray(chains)


def finger_length_ratio(hyps: Sequence[np.ndarray], refs: Sequence[np.ndarray], skeleton: Skeleton = PT50) -> float:
    """Mean generated finger-bone length ÷ mean true finger-bone length, each over all frames of all sequences.

    A mean per frame, so a system that chooses its own lengths (a length head, ``--length N``, another
    system's poses) is compared on its fingers, not on its number of frames.
    """
    if len(hyps) != len(refs):  # a mean over each side's frames would not notice
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    bones = np.asarray(finger_bones(skeleton))

    def mean(poses: Sequence[np.ndarray]) -> float:
        frames = sum(len(p) for p in poses)
        total = sum(np.linalg.norm(p[:, bones[:, 0]] - p[:, bones[:, 1]], axis=-1).sum() for p in poses if len(p))
        return float(total) / frames if frames else float("nan")

    ref = mean(refs)
    return mean(hyps) / ref if ref > 0 else float("nan")


def finger_extension(pose: np.ndarray, skeleton: Skeleton = PT50) -> np.ndarray:
    """(S, J, 3) → (S, 2, 5): tip-to-root distance over the chain's length, 1 for a straight finger."""
    chains = finger_chains(skeleton)
    x = np.asarray(pose, dtype=np.float64)[:, chains]  # (S, 2, 5, 5, 3)
    chain = np.linalg.norm(np.diff(x, axis=3), axis=-1).sum(-1)
    reach = np.linalg.norm(x[:, :, :, -1] - x[:, :, :, 0], axis=-1)
    return np.where(chain > 1e-9, reach / np.maximum(chain, 1e-9), 0.0)


def handshape_agreement(
    hyps: Sequence[np.ndarray],
    refs: Sequence[np.ndarray],
    thresholds: Sequence[float] = STATES,
    skeleton: Skeleton = PT50,
) -> float:
    """Mean over sequences of the DTW-aligned share of frame pairs with matching handshapes, × 100."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    scores = []
    for hyp, ref in zip(hyps, refs, strict=True):
        eh, er = finger_extension(hyp, skeleton), finger_extension(ref, skeleton)
        path = dtw_path(frame_cost(eh, er))
        sh, sr = np.digitize(eh[path[:, 0]], thresholds), np.digitize(er[path[:, 1]], thresholds)  # (P, 2, 5)
        scores.append(float((sh == sr).all(-1).mean()))
    return 100.0 * float(np.mean(scores)) if scores else float("nan")
