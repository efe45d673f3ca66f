import imageio.v3 as iio
import numpy as np
import pytest

from fgdm.data.io import load_any, save_npy, save_pose
from fgdm.data.synth.corpus import SynthCorpus
from fgdm.render import save_animation


@pytest.fixture(scope="module")
def pose():
    return SynthCorpus(1, "test", seed=0)[0].pose[:30]


def test_pose_file_round_trip_with_pose_format(tmp_path, pose):
    from pose_format import Pose

    path = save_pose(tmp_path / "a.pose", pose)
    p = Pose.read(path.read_bytes())
    assert [c.name for c in p.header.components] == ["BODY", "LEFT_HAND", "RIGHT_HAND"]
    assert [len(c.points) for c in p.header.components] == [8, 21, 21]
    assert sum(len(c.limbs) for c in p.header.components) == 49 - 2  # the wrist→hand-root bones cross components
    assert p.body.fps == 25 and p.body.data.shape == (30, 1, 50, 3)
    assert (p.body.confidence == 1).all()
    np.testing.assert_allclose(load_any(path), pose, atol=1e-6)


def test_npy_round_trip_and_shape_check(tmp_path, pose):
    np.testing.assert_array_equal(load_any(save_npy(tmp_path / "a.npy", pose)), pose)
    np.save(tmp_path / "bad.npy", np.zeros((4, 49, 3)))
    with pytest.raises(ValueError, match=r"bad.npy: shape \(4, 49, 3\)"):
        load_any(tmp_path / "bad.npy")


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_animations_have_one_frame_per_pose_and_side_by_side_panels(tmp_path, pose, suffix):
    single = iio.imread(save_animation(tmp_path / f"a{suffix}", pose))
    double = iio.imread(save_animation(tmp_path / f"b{suffix}", [pose, pose[:10]], ["gen", "gt"]))
    assert single.shape[0] == 30 and double.shape[0] == 30
    assert double.shape[2] == 2 * single.shape[2]
    assert single.std() > 1  # something was drawn


def _refs(n: int) -> list[np.ndarray]:
    return [np.full((10 + i, 50, 3), float(i), dtype=np.float32) for i in range(n)]


def test_hypotheses_are_matched_by_name_not_by_listing_order(tmp_path):
    from fgdm.data.io import load_hypotheses

    poses = _refs(3)
    for name, pose in zip(["2", "10", "1"], poses, strict=True):  # as text, "10" sorts before "2"
        save_npy(tmp_path / f"{name}.npy", pose)
    got = load_hypotheses(tmp_path, "test", ["1", "2", "10"], fps=25.0)
    assert [float(p[0, 0, 0]) for p in got] == [2.0, 0.0, 1.0]


def test_hypotheses_with_missing_or_extra_names_are_refused(tmp_path):
    from fgdm.data.io import load_hypotheses
    from fgdm.data.pt import DataFormatError

    for name, pose in zip(["a", "b", "zz"], _refs(3), strict=True):
        save_npy(tmp_path / f"{name}.npy", pose)
    with pytest.raises(DataFormatError, match=r"missing \['c'\] \(1 in all\), extra \['zz'\] \(1 in all\)"):
        load_hypotheses(tmp_path, "test", ["a", "b", "c"], fps=25.0)
    assert len(load_hypotheses(tmp_path, "test", ["a", "b"], fps=25.0, allow_extra=True)) == 2  # a --limit run


def test_hypotheses_are_brought_to_the_references_frame_rate(tmp_path):
    from fgdm.data.io import load_hypotheses
    from fgdm.data.pt import DataFormatError, PTSplit, write_split

    poses = _refs(2)
    pt = tmp_path / "pt"  # PT files at the data's own 25 fps: every second frame, as the references (skip 2)
    write_split(pt, "test", PTSplit(poses=poses, glosses=[["A"], ["B"]], texts=["a", "b"], names=["s0", "s1"]))
    got = load_hypotheses(pt, "test", ["s0", "s1"], fps=12.5)
    assert [len(p) for p in got] == [5, 6] and np.allclose(got[1], poses[1][::2], atol=1e-5)
    (pt / "test.fps").write_text("12.5\n")  # written by fgdm generate: already at the model's rate
    assert [len(p) for p in load_hypotheses(pt, "test", ["s0", "s1"], fps=12.5)] == [10, 11]
    posed = tmp_path / "pose"  # .pose files carry their own rate
    save_pose(posed / "s0.pose", poses[0], fps=25.0)
    save_pose(posed / "s1.pose", poses[1], fps=12.5)
    assert [len(p) for p in load_hypotheses(posed, "test", ["s0", "s1"], fps=12.5)] == [5, 11]
    with pytest.raises(DataFormatError, match=r"s1: at 12\.5 fps, which keeping every k-th frame cannot bring"):
        load_hypotheses(posed, "test", ["s0", "s1"], fps=25.0)
