"""fgdm data import: MediaPipe Holistic .pose files, as pose-format's video_to_pose writes them, to PT data."""

import json

import numpy as np
import pytest

from fgdm.cli import main
from fgdm.data.holistic import BODY33, BODY_LIMBS, HAND21, HAND_LIMBS
from fgdm.data.synth.corpus import SynthCorpus


def write_holistic(path, pose_pt, width=640, height=480, fps=25.0, drop=(), depth=0):
    """A Holistic .pose as video_to_pose writes it (pixels, MediaPipe z, face and world components, depth 0),
    built with pose-format itself from a PT sequence: neck at (320, 200), 250 px per PT unit. ``drop``: (frame,
    component, point) made undetected (confidence 0)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    S = len(pose_pt)
    image = np.stack([320 - 250 * pose_pt[..., 0], 200 + 250 * pose_pt[..., 1], -pose_pt[..., 2] * 250 / width], -1)
    face = [str(i) for i in range(468)]
    comps = [("POSE_LANDMARKS", BODY33, BODY_LIMBS), ("FACE_LANDMARKS", face, []),
             ("LEFT_HAND_LANDMARKS", HAND21, HAND_LIMBS), ("RIGHT_HAND_LANDMARKS", HAND21, HAND_LIMBS),
             ("POSE_WORLD_LANDMARKS", BODY33, BODY_LIMBS)]  # fmt: skip
    sizes = [len(c[1]) for c in comps]
    data = np.zeros((S, 1, sum(sizes), 3), dtype=np.float32)
    conf = np.zeros((S, 1, sum(sizes)), dtype=np.float32)
    body = {"NOSE": 0, "RIGHT_SHOULDER": 2, "RIGHT_ELBOW": 3, "RIGHT_WRIST": 4, "LEFT_SHOULDER": 5,
            "LEFT_ELBOW": 6, "LEFT_WRIST": 7, "LEFT_HIP": None}  # fmt: skip
    for name, joint in body.items():
        k = BODY33.index(name)
        data[:, 0, k] = image[:, joint] if joint is not None else [320, 450, 0]
        conf[:, 0, k] = 0.9
    for start, joint in ((33 + 468, 8), (33 + 468 + 21, 29)):  # LEFT_HAND_LANDMARKS, RIGHT_HAND_LANDMARKS
        hand = image[:, joint : joint + 21].copy()
        hand[..., 2] -= hand[:, :1, 2]  # MediaPipe: hand depth relative to the hand's wrist
        data[:, 0, start : start + 21], conf[:, 0, start : start + 21] = hand, 1.0
    names = {f"{c}/{p}": i for i, (c, p) in enumerate((c[0], p) for c in comps for p in c[1])}
    for frame, comp, point in drop:
        conf[frame, 0, names[f"{comp}/{point}"]] = 0
        data[frame, 0, names[f"{comp}/{point}"]] = 0
    parts = [PoseHeaderComponent(n, list(pts), limbs, [(255, 0, 0)], "XYZC") for n, pts, limbs in comps]
    header = PoseHeader(0.2, PoseHeaderDimensions(width, height, depth), parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        Pose(header, NumPyPoseBody(fps=fps, data=data, confidence=conf)).write(f)


def test_a_square_1000_pixel_holistic_file_is_normalised_not_taken_for_fgdms_own(tmp_path):
    """fgdm writes a 1000-cubed canvas; MediaPipe's files of a square 1000-pixel video can have that header too.
    Theirs carry the points PT lacks (hips, a face), and are normalised as any other."""
    from fgdm.data.io import load_pose, save_pose

    pose = SynthCorpus(1, "train", seed=4)[0].pose
    write_holistic(tmp_path / "square.pose", pose, width=1000, height=1000, depth=1000)
    got = load_pose(tmp_path / "square.pose")
    assert np.abs(got[:, 1]).max() < 1e-3  # the neck at the origin
    assert np.linalg.norm(got[:, 2] - got[:, 5], axis=-1).mean() == pytest.approx(0.334, abs=0.01)
    own = load_pose(save_pose(tmp_path / "own.pose", pose))  # fgdm's own: read back as written
    np.testing.assert_allclose(own, pose, atol=2e-4)


@pytest.fixture
def holistic_dir(tmp_path):
    corpus = SynthCorpus(3, "train", seed=4)
    rows = []
    for i in range(3):
        sample = corpus[i]
        drop = [(5, "RIGHT_HAND_LANDMARKS", "INDEX_FINGER_TIP"), (6, "POSE_LANDMARKS", "NOSE")] if i == 0 else []
        write_holistic(tmp_path / "videos" / f"clip{i}.pose", sample.pose, drop=drop)
        rows.append(f"clip{i}|Signer01|{' '.join(sample.glosses)}|{sample.text}")
    (tmp_path / "train.csv").write_text("id|signer|annotation|translation\n" + "\n".join(rows) + "\n")
    return tmp_path, corpus


def test_holistic_files_import_into_a_pt_directory_that_checks(holistic_dir, capsys):
    root, corpus = holistic_dir
    out = root / "pt"
    assert main(["data", "import", str(root / "videos"), "--glosses", str(root / "train.csv"), "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["sequences"] == 3 and report["splits"]["train"]["fps"] == [25.0]
    assert report["splits"]["train"]["interpolated_joint_values"] == 2  # the two dropped points, counted
    assert main(["data", "check", str(out), "--quiet"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["splits"]["train"]["sequences"] == 3 and check["splits"]["train"]["neck_max_abs"] < 1e-6
    from fgdm.data.pt import read_split

    got = read_split(out, "train")
    assert got.names == ["clip0", "clip1", "clip2"] and got.glosses[1] == list(corpus[1].glosses)
    for i in range(3):  # normalised as PT data: around the shoulders' midpoint (Holistic has no neck point),
        truth = corpus[i].pose  # the median shoulder width scaled to 0.334
        truth = truth - (truth[:, 2:3] + truth[:, 5:6]) / 2
        truth = truth * 0.334 / np.median(np.linalg.norm(truth[:, 2, :2] - truth[:, 5, :2], axis=-1))
        for root, wrist in ((8, 7), (29, 4)):  # MediaPipe gives hand depth relative to the hand's own wrist:
            truth[:, root : root + 21, 2] += (truth[:, wrist, 2] - truth[:, root, 2])[:, None]  # at the arm's
        if i == 0:  # the undetected points: interpolated between their neighbouring frames
            for frame, joint in ((5, 37), (6, 0)):
                truth[frame, joint] = (truth[frame - 1, joint] + truth[frame + 1, joint]) / 2
        np.testing.assert_allclose(got.poses[i], truth, atol=2e-3)
        shoulders = np.linalg.norm(got.poses[i][:, 2] - got.poses[i][:, 5], axis=-1)
        np.testing.assert_allclose(np.median(shoulders), 0.334, atol=1e-3)


def test_a_csv_row_without_its_pose_file_is_an_error(holistic_dir, capsys):
    root, _ = holistic_dir
    (root / "videos" / "clip2.pose").unlink()
    assert main(["data", "import", str(root / "videos"), "--glosses", str(root / "train.csv"), "--out",
                 str(root / "pt"), "--quiet"]) == 1  # fmt: skip
    assert "no .pose file for 1 CSV rows" in capsys.readouterr().err


def test_an_import_replaces_a_lazy_synth_manifest_and_refuses_an_id_in_two_splits(holistic_dir, capsys):
    root, _ = holistic_dir
    out = root / "pt"
    assert main(["synth", "--out", str(out), "--lazy", "--num-train", "5", "--num-dev", "2", "--num-test", "2",
                 "--quiet"]) == 0  # fmt: skip
    assert main(["data", "import", str(root / "videos"), "--glosses", str(root / "train.csv"), "--out", str(out),
                 "--overwrite", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["data", "check", str(out), "--quiet"]) == 0  # the imported files, not the manifest's sentences
    assert list(json.loads(capsys.readouterr().out)["splits"]) == ["train"]
    csvs = root / "csvs"
    csvs.mkdir()
    (csvs / "train.csv").write_text((root / "train.csv").read_text())
    (csvs / "test.csv").write_text("id|signer|annotation|translation\nclip1|Signer01|REGEN|es regnet\n")
    assert main(["data", "import", str(root / "videos"), "--glosses", str(csvs), "--out", str(root / "pt2"),
                 "--quiet"]) == 1  # fmt: skip
    assert "the id 'clip1' is in the train split too" in capsys.readouterr().err


def test_recordings_at_another_frame_rate_are_brought_to_25_fps(tmp_path, capsys):
    from fgdm.data.pt import read_split

    pose = SynthCorpus(1, "train", seed=4)[0].pose
    write_holistic(tmp_path / "a" / "clip0.pose", pose, fps=25.0)
    write_holistic(tmp_path / "b" / "clip0.pose", np.repeat(pose, 2, axis=0)[:-1], fps=50.0)  # each frame twice
    (tmp_path / "train.csv").write_text("id|signer|annotation|translation\nclip0|Signer01|REGEN|es regnet\n")
    got = {}
    for rate in ("a", "b"):
        assert main(["data", "import", str(tmp_path / rate), "--glosses", str(tmp_path / "train.csv"), "--out",
                     str(tmp_path / f"pt-{rate}"), "--quiet"]) == 0  # fmt: skip
        split = json.loads(capsys.readouterr().out)["splits"]["train"]
        assert split["resampled_to_25_fps"] == (rate == "b") and split["frames"] == len(pose)
        got[rate] = read_split(tmp_path / f"pt-{rate}", "train").poses[0]
    np.testing.assert_allclose(got["b"], got["a"], atol=2e-3)  # the same motion at PT's rate


def test_resampling_keeps_the_duration_and_is_exact_on_linear_motion():
    from fgdm.data.holistic import resample

    t = np.arange(31, dtype=np.float32)  # 1.2 s at 25 fps
    pose = (t[:, None, None] * np.array([0.01, -0.02, 0.03], dtype=np.float32)).repeat(2, axis=1)  # (31, 2, 3)
    assert resample(pose, 25.0, 25.0) is pose
    at_30 = resample(pose, 25.0, 30.0)
    assert len(at_30) == 37 and at_30.dtype == np.float32  # 1.2 s at 30 fps
    np.testing.assert_allclose(at_30[:, 0], np.arange(37)[:, None] * (25 / 30) * [0.01, -0.02, 0.03], atol=1e-5)
    np.testing.assert_allclose(resample(at_30, 30.0, 25.0), pose, atol=1e-5)  # and back
    assert len(resample(pose, 25.0, 8.0)) == 11 and len(resample(pose[:1], 50.0, 25.0)) == 1


def test_a_hand_stays_at_its_wrists_depth_where_the_body_wrist_was_not_seen(tmp_path):
    """MediaPipe gives a hand's depth relative to the hand's own wrist: it is placed at the body wrist's depth,
    which must be interpolated first where the body wrist was missed (not taken as the missing value, 0)."""
    from fgdm.data.io import read_pose_report

    pose = SynthCorpus(1, "train", seed=4)[0].pose
    pose[..., 2] += 0.3  # the signer away from depth 0, as in a video, where the missing value would stand out
    write_holistic(tmp_path / "seen.pose", pose)
    drop = [(f, "POSE_LANDMARKS", "RIGHT_WRIST") for f in range(5, 10)]
    write_holistic(tmp_path / "missed.pose", pose, drop=drop)
    seen, _, n_seen, _ = read_pose_report(tmp_path / "seen.pose")
    missed, _, n_missed, absent = read_pose_report(tmp_path / "missed.pose")
    assert n_seen == 0 and n_missed == 5 and absent == 0  # the five wrist values; the hand itself was seen
    root = 29  # right_hand_root
    depth = missed[:, root, 2]
    neighbours = (depth[4] + depth[10]) / 2
    assert np.abs(depth[5:10] - neighbours).max() < 0.05  # the hand's depth carries on through the gap
    assert np.abs(depth[5:10] - seen[5:10, root, 2]).max() < 0.05
    np.testing.assert_allclose(missed[5:10, 30:50] - missed[5:10, root : root + 1],  # the hand's shape untouched
                               seen[5:10, 30:50] - seen[5:10, root : root + 1], atol=1e-4)  # fmt: skip
