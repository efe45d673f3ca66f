import numpy as np
import pytest

from fgdm.skeleton import PT50, SPEC_PARENTS


def test_parent_table_matches_the_spec():
    assert PT50.parents == SPEC_PARENTS
    assert PT50.num_joints == 50


def test_tree_is_rooted_at_the_neck_with_49_bones():
    assert PT50.root == 1 and PT50.names[1] == "neck"
    assert len(PT50.bones) == 49
    assert all(c != p for c, p in PT50.bones)
    depth = PT50.depth()
    assert depth[1] == 0 and (depth[np.arange(50) != 1] > 0).all()


def test_hand_ranges_attach_to_their_wrists():
    left, right = PT50.part("left_hand"), PT50.part("right_hand")
    assert (left.start, left.stop, right.start, right.stop) == (8, 29, 29, 50)
    assert PT50.parents[8] == 7 and PT50.parents[29] == 4
    assert PT50.names[7] == "left_wrist" and PT50.names[4] == "right_wrist"
    # five fingers of four joints, each chain rooted at the hand root
    for root in (8, 29):
        for f in range(5):
            first = root + 1 + 4 * f
            assert PT50.parents[first] == root
            assert [PT50.parents[first + k] for k in (1, 2, 3)] == [first, first + 1, first + 2]


@pytest.mark.parametrize("normalise", ["receiving", "sending"])
def test_partition_adjacency_subsets(normalise):
    A = PT50.partition_adjacency(normalise)
    assert A.shape == (3, 50, 50) and A.dtype == np.float32
    hop1 = PT50.hop_distance() <= 1
    total = A.sum(0)
    assert ((total > 0) == hop1).all()  # support is exactly the one-hop graph with self loops
    assert (np.diag(A[0]) > 0).all() and np.count_nonzero(A[0]) == 50  # self loops only
    depth = PT50.depth()
    for k, closer in ((1, True), (2, False)):
        v, u = np.nonzero(A[k])
        assert ((depth[u] < depth[v]) == closer).all()
    # every non-root joint has exactly one neighbour towards the root: its parent
    v, u = np.nonzero(A[1])
    assert sorted(zip(v.tolist(), u.tolist(), strict=True)) == sorted(PT50.bones)


def test_the_prior_is_row_normalised_on_the_receiving_joint_by_default():
    """The paper's D^-1 A: each joint's incoming weights sum to 1 and are 1/degree(receiver)."""
    A = PT50.partition_adjacency().sum(0)  # (v, u)
    np.testing.assert_allclose(A.sum(1), 1.0, rtol=1e-6)  # rows (receiving joints) sum to 1
    degree = (PT50.hop_distance() <= 1).sum(1)  # with the self loop
    v, u = np.nonzero(A)
    np.testing.assert_allclose(A[v, u], 1.0 / degree[v], rtol=1e-6)
    # hand root 8 has 6 neighbours and itself: each of them weighs 1/7 for it, and its own row
    # differs from the column normalisation (where the weight depends on the sender)
    assert A[8, 9] == pytest.approx(1 / 7) and A[9, 8] == pytest.approx(1 / 3)
    S = PT50.partition_adjacency("sending").sum(0)
    np.testing.assert_allclose(S.sum(0), 1.0, rtol=1e-6)  # columns (sending joints) sum to 1
    assert S[9, 8] == pytest.approx(1 / 7)
