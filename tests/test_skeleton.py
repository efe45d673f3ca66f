import numpy as np

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


def test_partition_adjacency_subsets():
    A = PT50.partition_adjacency()
    assert A.shape == (3, 50, 50) and A.dtype == np.float32
    hop1 = PT50.hop_distance() <= 1
    total = A.sum(0)
    assert ((total > 0) == hop1).all()  # support is exactly the one-hop graph with self loops
    np.testing.assert_allclose(total.sum(0), 1.0, rtol=1e-6)  # column-normalised (A D^-1)
    assert (np.diag(A[0]) > 0).all() and np.count_nonzero(A[0]) == 50  # self loops only
    depth = PT50.depth()
    for k, closer in ((1, True), (2, False)):
        v, u = np.nonzero(A[k])
        assert ((depth[u] < depth[v]) == closer).all()
    # every non-root joint has exactly one neighbour towards the root: its parent
    v, u = np.nonzero(A[1])
    assert sorted(zip(v.tolist(), u.tolist(), strict=True)) == sorted(PT50.bones)
