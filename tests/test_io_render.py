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
