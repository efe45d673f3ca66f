"""Hand metrics (fgdm/evaluation/handshape.py) and the DTW path they align with."""

import numpy as np
import pytest

from fgdm.data.synth.corpus import SynthCorpus
from fgdm.metrics.dtw import dtw_cost, dtw_path, frame_cost
from fgdm.metrics.handshape import (
    finger_bones,
    finger_chains,
    finger_extension,
    finger_length_ratio,
    handshape_agreement,
)
from fgdm.skeleton import PT50


@pytest.fixture(scope="module")
def poses():
    corpus = SynthCorpus(6, "test", seed=0)
    return [corpus[i].pose for i in range(6)]


def _shrink_hands(pose: np.ndarray, factor: float) -> np.ndarray:
    q = pose.copy()
    for hand in (range(8, 29), range(29, 50)):
        root = q[:, hand.start : hand.start + 1]
        q[:, hand] = root + factor * (q[:, hand] - root)
    return q


def test_the_dtw_path_is_monotone_and_costs_what_dtw_cost_says():
    rng = np.random.default_rng(0)
    for n, m in ((1, 1), (1, 5), (7, 3), (12, 12)):
        cost = rng.random((n, m))
        path = dtw_path(cost)
        assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
        steps = np.diff(path, axis=0)
        assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(1) >= 1).all()
        assert cost[path[:, 0], path[:, 1]].sum() == pytest.approx(dtw_cost(cost))


def test_hand_geometry_covers_the_fingers():
    assert len(finger_bones()) == 40  # 20 bones inside each hand
    chains = finger_chains()
    assert chains.shape == (2, 5, 5) and (chains[0, :, 0] == 8).all() and (chains[1, :, 0] == 29).all()
    for hand in chains:
        for chain in hand:
            assert [PT50.parents[j] for j in chain[1:]] == list(chain[:-1])  # root to tip along the tree


def test_ground_truth_scores_one_and_a_hundred(poses):
    assert finger_length_ratio(poses, poses) == pytest.approx(1.0)
    assert handshape_agreement(poses, poses) == pytest.approx(100.0)


def test_collapsed_fingers_are_caught(poses):
    collapsed = [_shrink_hands(p, 0.3) for p in poses]  # every hand shrunk towards its root
    assert finger_length_ratio(collapsed, poses) == pytest.approx(0.3, rel=1e-6)
    # shrinking keeps the angles: the same hand shapes
    assert handshape_agreement(collapsed, poses) == pytest.approx(100.0)
    straight = [p.copy() for p in poses]
    for q in straight:
        for hand in finger_chains():
            for chain in hand:  # every finger straightened along its first bone
                d = q[:, chain[1]] - q[:, chain[0]]
                for k in range(2, 5):
                    q[:, chain[k]] = q[:, chain[0]] + d * k
    assert (finger_extension(straight[0]) > 0.99).all()
    assert handshape_agreement(straight, poses) < 50.0


def test_the_agreement_follows_the_sequence_not_its_speed(poses):
    slow = [np.repeat(p, 2, axis=0) for p in poses]  # every frame twice: DTW aligns it back
    assert handshape_agreement(slow, poses) == pytest.approx(100.0)
    assert frame_cost(slow[0], poses[0]).shape == (2 * len(poses[0]), len(poses[0]))


def test_the_finger_ratio_does_not_count_frames(poses):
    """Sequences of another length (a length head, --length N, another system) compare by their fingers."""
    slow = [np.repeat(p, 2, axis=0) for p in poses]  # every frame twice: the same fingers
    assert finger_length_ratio(slow, poses) == pytest.approx(1.0)
    assert finger_length_ratio(poses, slow) == pytest.approx(1.0)
    assert finger_length_ratio([_shrink_hands(p, 0.5) for p in slow], poses) == pytest.approx(0.5, rel=1e-6)
    assert finger_length_ratio([p[:1] for p in poses], poses) == pytest.approx(1.0, abs=0.2)  # one frame each
