"""Dynamic time warping and DTW-MJE (docs/model.md §8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fgdm.skeleton import PT50, Skeleton


def _accumulated(cost: np.ndarray) -> np.ndarray:
    """(S_hyp + 1, S_ref + 1) cheapest path costs to every cell; steps (1, 0), (0, 1), (1, 1).

    Computed by anti-diagonal sweeps (vectorised over each diagonal).
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for d in range(2, n + m + 1):  # i + j = d over 1-based indices
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        best = np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    return acc


def dtw_cost(cost: np.ndarray) -> float:
    """Total cost of the cheapest monotone alignment path through a (S_hyp, S_ref) cost matrix.

    Steps are (1, 0), (0, 1) and (1, 1); the path runs from (0, 0) to (S_hyp − 1, S_ref − 1).
    """
    return float(_accumulated(cost)[-1, -1])


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """The cheapest monotone alignment of :func:`dtw_cost` as (P, 2) index pairs (hyp, ref), start to end."""
    acc = _accumulated(cost)
    i, j, path = *cost.shape, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = int(np.argmin((acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])))
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return np.asarray(path[::-1], dtype=np.int64).reshape(-1, 2)


def frame_cost(hyp: np.ndarray, ref: np.ndarray, joints: Sequence[int] | range | None = None) -> np.ndarray:
    """(S_hyp, S_ref) L1 distance between frames, summed over the chosen joints' coordinates, in float64.

    SciPy's ``cdist`` computes it pair by pair: memory for the (S_hyp, S_ref) result only, never the
    (S_hyp, S_ref, J · 3) differences.
    """
    from scipy.spatial.distance import cdist

    if joints is not None:
        hyp, ref = hyp[:, list(joints)], ref[:, list(joints)]
    h = np.ascontiguousarray(hyp.reshape(len(hyp), -1), dtype=np.float64)
    r = np.ascontiguousarray(ref.reshape(len(ref), -1), dtype=np.float64)
    return cdist(h, r, "cityblock")


def dtw_mje(hyp: np.ndarray, ref: np.ndarray, joints: Sequence[int] | range | None = None) -> float:
    """DTW mean joint error of one sequence: DTW total (L1 frame cost) divided by the reference length."""
    hyp, ref = np.asarray(hyp), np.asarray(ref)
    for what, x in (("hypothesis", hyp), ("reference", ref)):
        problem = f"shape {x.shape}" if x.ndim != 3 else "no frames" if not len(x) else None
        if problem or not np.isfinite(x).all():
            raise ValueError(f"DTW-MJE: the {what} is no (S ≥ 1, J, 3) finite pose sequence "
                             f"({problem or 'non-finite values'})")  # fmt: skip
    if hyp.shape[1:] != ref.shape[1:]:
        raise ValueError(f"DTW-MJE: hypothesis frames {hyp.shape[1:]} against reference frames {ref.shape[1:]}")
    return dtw_cost(frame_cost(hyp, ref, joints)) / len(ref)


def dtw_mje_parts(
    hyps: Sequence[np.ndarray], refs: Sequence[np.ndarray], skeleton: Skeleton = PT50
) -> dict[str, float]:
    """Mean DTW-MJE over sequences, whole body (all joints) and per part (body, hands)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    parts = {"all": None, "body": skeleton.part("body"), "hands": skeleton.hands}
    return {
        name: float(np.mean([dtw_mje(h, r, joints) for h, r in zip(hyps, refs, strict=True)])) if hyps else float("nan")
        for name, joints in parts.items()
    }
