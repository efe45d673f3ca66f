"""The Progressive-Transformers 50-joint skeleton, declared once as data.

Everything that needs to know about joints — the graph prior, the bone loss, iconicity
disentanglement, the synthetic signer, rendering and ``.pose`` export — reads :data:`PT50`.

Layout (docs/model.md §1): 0 head, 1 neck (root, the origin), 2–4 one arm (shoulder, elbow, wrist),
5–7 the other arm, 8–28 the hand attached to joint 7, 29–49 the hand attached to joint 4.
Each hand is its root followed by thumb, index, middle, ring and pinky, four joints each, root to tip.
In the PT convention (x mirrored, y down) joints 2–4 and 29–49 are the signer's right side.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
JOINTS_PER_FINGER = 4
HAND_JOINTS = 1 + len(FINGERS) * JOINTS_PER_FINGER  # 21


@dataclass(frozen=True)
class Skeleton:
    """A rooted joint tree.

    Attributes:
        names: one name per joint.
        parents: ``parents[j]`` is the parent of joint ``j``; the root is its own parent.
        parts: named contiguous groups of joints (``body``, ``left_hand``, ``right_hand``), used by
            metrics, rendering and export. Together they cover every joint exactly once.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    parts: tuple[tuple[str, range], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.parents):
            raise ValueError("names and parents differ in length")
        roots = [j for j, p in enumerate(self.parents) if p == j]
        if len(roots) != 1:
            raise ValueError(f"a skeleton has exactly one root, found {roots}")
        covered = sorted(j for _, r in self.parts for j in r)
        if covered != list(range(self.num_joints)):
            raise ValueError("parts must cover every joint exactly once")
        for j in range(self.num_joints):  # every joint reaches the root without a cycle
            seen, k = set(), j
            while k != self.root:
                if k in seen:
                    raise ValueError(f"joint {j} is on a cycle")
                seen.add(k)
                k = self.parents[k]

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def root(self) -> int:
        return next(j for j, p in enumerate(self.parents) if p == j)

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs for every non-root joint, in joint order."""
        return tuple((j, p) for j, p in enumerate(self.parents) if j != p)

    def part(self, name: str) -> range:
        for part_name, joints in self.parts:
            if part_name == name:
                return joints
        raise KeyError(f"unknown part {name!r}; parts are {[n for n, _ in self.parts]}")

    def part_root(self, name: str) -> int:
        """The one joint of a part whose parent lies outside it (a hand's root, attached to its wrist)."""
        joints = self.part(name)
        roots = [j for j in joints if self.parents[j] not in joints]
        if len(roots) != 1:
            raise ValueError(f"{name}: expected one joint attached outside the part, found {roots}")
        return roots[0]

    @cached_property
    def hands(self) -> range:
        """All hand joints (both hands), assuming the two hands are contiguous after the body."""
        left, right = self.part("left_hand"), self.part("right_hand")
        return range(min(left.start, right.start), max(left.stop, right.stop))

    def parent_array(self) -> np.ndarray:
        return np.asarray(self.parents, dtype=np.int64)

    def hop_distance(self) -> np.ndarray:
        """(J, J) number of bones on the tree path between two joints."""
        J = self.num_joints
        adj = np.zeros((J, J), dtype=bool)
        for c, p in self.bones:
            adj[c, p] = adj[p, c] = True
        dist = np.full((J, J), np.iinfo(np.int64).max, dtype=np.int64)
        np.fill_diagonal(dist, 0)
        reach = np.eye(J, dtype=bool)
        for d in range(1, J):
            reach_next = reach | (reach.astype(np.int64) @ adj.astype(np.int64) > 0)
            dist[reach_next & ~reach] = d
            if reach_next.all():
                break
            reach = reach_next
        return dist

    def depth(self) -> np.ndarray:
        """(J,) hop distance of each joint from the root."""
        return self.hop_distance()[self.root]

    def partition_adjacency(self, normalise: Literal["receiving", "sending"] = "receiving") -> np.ndarray:
        """ST-GCN "spatial" partition of the one-hop graph into K_v = 3 subsets.

        Subset 0 holds each joint's self loop, subset 1 the neighbours closer to the root
        (centripetal), subset 2 those farther from it (centrifugal). The one-hop adjacency with
        self loops is normalised by node degree before splitting, so that the three subsets sum to the
        normalised hop-1 adjacency:

        - ``receiving`` (the paper, docs/model.md §1): ``D^-1 A``, each row ``v`` divided by the receiving
          joint's degree, so every joint takes a weighted mean of its neighbourhood (rows sum to 1);
        - ``sending``: ``A D^-1``, each column divided by the sending joint's degree (ST-GCN's code and
          the authors' release; a joint with many children, like a hand root, sends less to each).

        Shape: (K_v, J, J); entry ``[k, v, u]`` weights the message from joint ``u`` to joint ``v``.
        """
        if normalise not in ("receiving", "sending"):
            raise ValueError(f"normalise: {normalise!r} is not one of receiving, sending")
        J = self.num_joints
        hop = self.hop_distance()
        depth = self.depth()
        adj = (hop <= 1).astype(np.float64)
        norm = adj / adj.sum(axis=1 if normalise == "receiving" else 0, keepdims=True)
        A = np.zeros((3, J, J), dtype=np.float64)
        v, u = np.nonzero(adj)
        for vi, ui in zip(v, u, strict=True):
            if vi == ui:
                k = 0
            elif depth[ui] < depth[vi]:
                k = 1
            else:
                k = 2
            A[k, vi, ui] = norm[vi, ui]
        return A.astype(np.float32)


def _pt50() -> Skeleton:
    def hand(side: str) -> list[str]:
        return [f"{side}_hand_root"] + [
            f"{side}_{finger}_{i}" for finger in FINGERS for i in range(1, JOINTS_PER_FINGER + 1)
        ]

    names = (
        "head", "neck",
        "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist",
        *hand("left"), *hand("right"),
    )  # fmt: skip

    def hand_parents(root: int, wrist: int) -> list[int]:
        parents = [wrist]
        for f in range(len(FINGERS)):
            first = root + 1 + f * JOINTS_PER_FINGER
            parents += [root, *range(first, first + JOINTS_PER_FINGER - 1)]
        return parents

    parents = (1, 1, 1, 2, 3, 1, 5, 6, *hand_parents(8, 7), *hand_parents(29, 4))
    parts = (("body", range(0, 8)), ("left_hand", range(8, 29)), ("right_hand", range(29, 50)))
    return Skeleton(names=names, parents=parents, parts=parts)


PT50 = _pt50()
"""The 50-joint Progressive-Transformers skeleton (docs/model.md §1)."""

# The parent table as docs/model.md §1 (and fgdm's specification) writes it, kept to pin the declarative
# construction above.
SPEC_PARENTS = (
    1, 1, 1, 2, 3, 1, 5, 6, 7, 8, 9, 10, 11, 8, 13, 14, 15, 8, 17, 18, 19, 8, 21, 22, 23, 8, 25, 26,
    27, 4, 29, 30, 31, 32, 29, 34, 35, 36, 29, 38, 39, 40, 29, 42, 43, 44, 29, 46, 47, 48,
)  # fmt: skip


SHOULDER_WIDTH = 0.334  # the PT convention: the neck at the origin, the shoulders this far apart, y pointing down
CONVENTION = f"the neck at the origin, the shoulders about {SHOULDER_WIDTH} apart, y down"


def convention_problem(pose: np.ndarray, skeleton: Skeleton = PT50) -> str | None:
    """Why a (S, J, 3) sequence is not in the PT convention (:data:`CONVENTION`), or None where it is, judged on
    medians over its frames, which noise on every joint or an odd frame moves little: the shoulders not within 2×
    of :data:`SHOULDER_WIDTH` apart (other units: mm, cm, pixels), the neck a shoulder width or more from the
    origin, the head below the neck (y up). Skeletons without shoulders and a head are not judged."""
    names = skeleton.names
    if not {"left_shoulder", "right_shoulder", "head"} <= set(names) or not len(pose):
        return None
    shoulders = pose[:, names.index("left_shoulder")] - pose[:, names.index("right_shoulder")]
    width = float(np.median(np.linalg.norm(shoulders, axis=-1)))
    neck = float(np.median(np.linalg.norm(pose[:, skeleton.root], axis=-1)))
    if not SHOULDER_WIDTH / 2 <= width <= SHOULDER_WIDTH * 2:
        return f"its shoulders are {width:.3g} apart"
    if neck > 0.3:
        return f"its neck is {neck:.3g} from the origin"
    if np.median(pose[:, names.index("head"), 1] - pose[:, skeleton.root, 1]) > 0:
        return "its head is below its neck (y up? PT's y points down)"
    return None
