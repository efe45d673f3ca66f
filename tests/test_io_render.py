import re
import warnings

import imageio.v3 as iio
import numpy as np
import pytest

from fgdm.data.hypotheses import read_hypotheses
from fgdm.data.io import load_any, save_npy, save_pose
from fgdm.data.pt import PTSplit, write_split
from fgdm.data.synth.corpus import SynthCorpus
from fgdm.render import save_animation


@pytest.fixture(scope="module")
def pose():
    return SynthCorpus(1, "test", seed=0)[0].pose[:30]


def test_an_exported_pose_file_follows_pose_formats_holistic_conventions(tmp_path, pose):
    from pose_format import Pose
    from pose_format.utils.generic import detect_known_pose_format, pose_normalization_info

    from fgdm.data import holistic

    path = save_pose(tmp_path / "a.pose", pose, fps=12.5)
    p = Pose.read(path.read_bytes())
    names = ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS", "POSE_WORLD_LANDMARKS"]
    assert [c.name for c in p.header.components] == names  # video_to_pose's
    # the components pose-format's usual preprocessing asks for by name (the face is there, empty)
    p.get_components(["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"])
    assert not p.body.confidence[:, :, holistic.start("FACE_LANDMARKS") : holistic.start("LEFT_HAND_LANDMARKS")].any()
    assert detect_known_pose_format(p) == "holistic" and p.body.fps == 12.5  # the fps it was sampled at
    assert pose_normalization_info(p.header) is not None  # pose-format finds the shoulders by name
    assert (p.header.dimensions.width, p.header.dimensions.height) == (1000, 1000)

    def at(component: str, point: str) -> np.ndarray:
        return np.asarray(p.body.data[:, 0, p.header.get_point_index(component, point)])

    # image conventions: pixels on the canvas, the head above the neck (y down), the signer's right shoulder
    # on the image's left (the camera faces the signer), each hand component at its own arm's wrist
    head, r_sh, l_sh = (
        at("POSE_LANDMARKS", "NOSE"),
        at("POSE_LANDMARKS", "RIGHT_SHOULDER"),
        at("POSE_LANDMARKS", "LEFT_SHOULDER"),
    )
    assert ((head[..., :2] > 0) & (head[..., :2] < 1000)).all()
    assert (head[:, 1] < (r_sh[:, 1] + l_sh[:, 1]) / 2).all() and (r_sh[:, 0] < l_sh[:, 0]).all()
    np.testing.assert_allclose(np.linalg.norm(r_sh[:, :2] - l_sh[:, :2], axis=-1), 0.334 * 600, rtol=0.02)
    for side in ("LEFT", "RIGHT"):
        np.testing.assert_allclose(at(f"{side}_HAND_LANDMARKS", "WRIST")[:, :2], at("POSE_LANDMARKS",
                                   f"{side}_WRIST")[:, :2], atol=0.5 * 600)  # fmt: skip
    hidden = p.header.get_point_index("POSE_LANDMARKS", "LEFT_HIP")
    assert (np.asarray(p.body.confidence)[:, 0, hidden] == 0).all()  # points PT lacks are not drawn
    # read back exactly, the neck (implicit in Holistic) as the shoulders' midpoint
    back = load_any(path)
    others = [j for j in range(50) if j != 1]
    np.testing.assert_allclose(back[:, others], pose[:, others], atol=1e-4)
    np.testing.assert_allclose(back[:, 1], (pose[:, 2] + pose[:, 5]) / 2, atol=1e-4)


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


def test_an_mp4_ffmpeg_left_short_is_refused_and_the_old_file_kept(tmp_path, pose, monkeypatch):
    """A full disk: ffmpeg says so on its own output only, and imageio writes on; the frames are counted."""
    import imageio_ffmpeg

    path = save_animation(tmp_path / "a.mp4", pose[:5])
    before = path.read_bytes()
    count = imageio_ffmpeg.count_frames_and_secs
    monkeypatch.setattr(imageio_ffmpeg, "count_frames_and_secs", lambda p: (count(p)[0] - 1, 0.0))
    with pytest.raises(OSError, match=r"ffmpeg wrote 29 of its 30 frames \(a full disk\?\)") as err:
        save_animation(path, pose)
    assert err.value.filename == str(path) and path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no temporary left


def test_a_name_near_the_file_systems_limit_is_written_and_errors_name_the_file_once(tmp_path, pose):
    name = "x" * 245 + ".gif"  # 249 bytes: its temporary, with the process and thread, was longer than 255
    assert save_animation(tmp_path / name, pose[:3]).is_file()
    from fgdm.runtime import replacing

    (tmp_path / "d.txt").mkdir()
    with pytest.raises(OSError) as err, replacing(tmp_path / "d.txt") as tmp:  # the rename over a folder fails
        tmp.write_text("x")
    assert err.value.filename == str(tmp_path / "d.txt") and "->" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.txt", name]


def test_one_title_as_a_string_and_poses_as_lists_are_taken(tmp_path, pose):
    from fgdm.render import save_comparison

    one = iio.imread(save_animation(tmp_path / "a.gif", pose[:3], "MORGEN NORD REGEN"))  # (was 17 titles for 1)
    assert one.shape[0] == 3
    gif, sheet = save_comparison(tmp_path / "c.gif", pose[:4].tolist(), pose[:4].tolist())  # (the sheet failed)
    assert gif.is_file() and sheet.is_file()


def _refs(n: int) -> list[np.ndarray]:
    return [np.full((10 + i, 50, 3), float(i), dtype=np.float32) for i in range(n)]


def test_hypotheses_are_matched_by_name_not_by_listing_order(tmp_path):
    from fgdm.data.hypotheses import load_hypotheses

    poses = _refs(3)
    for name, pose in zip(["2", "10", "1"], poses, strict=True):  # as text, "10" sorts before "2"
        save_npy(tmp_path / f"{name}.npy", pose)
    got = load_hypotheses(tmp_path, "test", ["1", "2", "10"], fps=25.0)
    assert [float(p[0, 0, 0]) for p in got] == [2.0, 0.0, 1.0]


def test_hypotheses_with_missing_or_extra_names_are_refused(tmp_path):
    from fgdm.data.hypotheses import load_hypotheses
    from fgdm.data.pt import DataFormatError

    for name, pose in zip(["a", "b", "zz"], _refs(3), strict=True):
        save_npy(tmp_path / f"{name}.npy", pose)
    with pytest.raises(DataFormatError, match=r"missing \['c'\] \(1 in all\), extra \['zz'\] \(1 in all\)"):
        load_hypotheses(tmp_path, "test", ["a", "b", "c"], fps=25.0)
    assert len(load_hypotheses(tmp_path, "test", ["a", "b"], fps=25.0, allow_extra=True)) == 2  # a --limit run


def test_hypotheses_are_brought_to_the_references_frame_rate(tmp_path):
    from fgdm.data.hypotheses import load_hypotheses
    from fgdm.data.pt import PTSplit, write_split

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
    # no whole multiple of the references' rate (12.5 fps against 25; 30 fps): interpolated over time, and said
    got = read_hypotheses(posed, "test", ["s0", "s1"], fps=25.0)
    assert [len(p) for p in got.poses] == [10, 21] and np.allclose(got.poses[1][::2], poses[1], atol=1e-5)
    assert got.notes(25.0) == [
        "1 sequence was brought to the references' 25 fps by linear interpolation over time (1 at 12.5 fps: no "
        "whole multiple of it)"
    ]
    save_pose(posed / "s1.pose", poses[1], fps=30.0)
    assert len(load_hypotheses(posed, "test", ["s0", "s1"], fps=12.5)[1]) == 5  # 11 frames at 30 fps: 0.33 s


def test_a_rate_file_beside_npy_files_in_their_split_folder_is_read(tmp_path):
    """--help says {split}.fps beside the files; a test.fps inside test/ beside them was ignored, and the files,
    taken as 25 fps, lost every other frame: the scores were wrong without a word."""
    from fgdm.data.hypotheses import load_hypotheses

    refs = [p[::2] for p in _refs(2)]
    for i, p in enumerate(refs):
        save_npy(tmp_path / "h" / "test" / f"s{i}.npy", np.repeat(p, 4, axis=0))  # at 50 fps
    (tmp_path / "h" / "test" / "test.fps").write_text("50\n")
    got = load_hypotheses(tmp_path / "h", "test", ["test/s0", "test/s1"], fps=12.5, lengths=[len(p) for p in refs])
    assert all(np.array_equal(g, r) for g, r in zip(got, refs, strict=True))


def test_hypotheses_out_of_the_pt_convention_are_named(tmp_path):
    """Millimetres, centimetres, pixels or y up were scored as they were (DTW-MJE 24,100 for millimetres) without a
    word; .npy and .skels hypotheses are now checked for the convention's shoulders, neck and head. Noise on every
    joint is not taken for such a fault."""
    refs = [s.pose for s in SynthCorpus(3, "test", seed=0)]
    rng = np.random.default_rng(0)
    cases = {"mm": lambda p: p * 1000, "cm": lambda p: p * 100, "px": lambda p: p * 300 + 200,
             "yup": lambda p: p * np.array([1, -1, 1], np.float32),
             "noisy": lambda p: p + rng.normal(0, 0.1, p.shape)}  # fmt: skip
    said = {}
    for case, change in cases.items():
        for i, p in enumerate(refs):
            save_npy(tmp_path / case / f"s{i}.npy", (change(p) if i == 1 else p).astype(np.float32))
        notes = read_hypotheses(tmp_path / case, "test", ["s0", "s1", "s2"], fps=25.0).notes(25.0)
        said[case] = notes[0] if notes else ""
    assert said["mm"].startswith("1 sequence is not in the PT convention (the neck at the origin, the shoulders")
    assert "e.g. s1: its shoulders are 3" in said["mm"] and "e.g. s1: its shoulders are 3" in said["cm"]
    assert "s1: its neck is 2" in said["px"] or "s1: its shoulders are 1" in said["px"]
    assert "s1: its head is below its neck (y up? PT's y points down)" in said["yup"]
    assert said["noisy"] == ""


def test_npy_hypotheses_as_long_as_the_references_ask_for_their_rate(tmp_path):
    """A model's output saved as .npy is at the references' rate; taken as the data's 25 fps, it would be cut to
    half its frames and scored as a much worse system, silently."""
    from fgdm.data.hypotheses import load_hypotheses
    from fgdm.data.pt import DataFormatError

    refs = [p[::2] for p in _refs(3)]  # the references at 12.5 fps
    lengths = [len(p) for p in refs]
    for i, p in enumerate(refs):
        save_npy(tmp_path / "model" / f"s{i}.npy", p)
    with pytest.raises(DataFormatError, match=r"carry no frame rate.*median length ratio 1\.00.*test\.fps"):
        load_hypotheses(tmp_path / "model", "test", ["s0", "s1", "s2"], fps=12.5, lengths=lengths)
    (tmp_path / "model" / "test.fps").write_text("12.5\n")
    got = load_hypotheses(tmp_path / "model", "test", ["s0", "s1", "s2"], fps=12.5, lengths=lengths)
    assert [len(p) for p in got] == lengths
    for i, p in enumerate(_refs(3)):  # at the data's 25 fps: twice as long, brought down as before
        save_npy(tmp_path / "native" / f"s{i}.npy", p)
    got = load_hypotheses(tmp_path / "native", "test", ["s0", "s1", "s2"], fps=12.5, lengths=lengths)
    assert [len(p) for p in got] == lengths


def test_hypotheses_are_matched_by_their_path_to_names_in_folders(tmp_path):
    from fgdm.data.hypotheses import load_hypotheses
    from fgdm.data.pt import DataFormatError

    names = ["test/s0", "test/s1"]  # PT names carry their split's folder
    for i, pose in enumerate(_refs(2)):
        save_npy(tmp_path / "nested" / "test" / f"s{i}.npy", pose)
        save_npy(tmp_path / "flat" / f"s{i}.npy", pose)
    for layout in ("nested", "flat"):
        got = load_hypotheses(tmp_path / layout, "test", names, fps=25.0)
        assert [float(p[0, 0, 0]) for p in got] == [0.0, 1.0]
    with pytest.raises(DataFormatError, match=r"missing \['test/s1', 'dev/s0'\]"):  # two folders: by path only
        load_hypotheses(tmp_path / "flat", "test", ["test/s1", "dev/s0"], fps=25.0)
    for text in ("nan", "-25", "inf", "fast"):
        (tmp_path / "flat" / "test.fps").write_text(text + "\n")
        with pytest.raises(DataFormatError, match=r"test.fps:1: not a frame rate"):
            load_hypotheses(tmp_path / "flat", "test", names, fps=25.0)


def test_render_plays_its_inputs_at_their_own_frame_rate(tmp_path, capsys):
    from PIL import Image

    from fgdm.cli import main

    pose = SynthCorpus(1, "test", seed=0)[0].pose[:6]
    save_pose(tmp_path / "slow.pose", pose, fps=12.5)
    save_pose(tmp_path / "fast.pose", pose, fps=25.0)
    save_npy(tmp_path / "a.npy", pose)
    save_npy(tmp_path / "t0.npy", SynthCorpus(1, "test", seed=0)[0].pose[:12])  # a 25 fps sequence: np.save's

    def ms(*argv: str) -> int:
        assert main(["render", *argv, "--out", str(tmp_path / "x.gif"), "--overwrite"]) == 0
        with Image.open(tmp_path / "x.gif") as im:
            return im.info["duration"]

    assert ms(str(tmp_path / "slow.pose")) == 80 and ms(str(tmp_path / "fast.pose")) == 40
    capsys.readouterr()
    # a .npy says no rate: it counts as PT's 25 fps (as --help and evaluate say), beside a 12.5 fps .pose too,
    # keeping every second frame as the 25 fps .pose does, so that both play the same motion at one speed; warned
    with pytest.warns(UserWarning, match=r"t0\.npy: a \.npy holds no frame rate, taken as 25 fps beside inputs at "
                      r"12\.5 fps; if it is at another rate, give --fps"):  # fmt: skip
        assert ms(str(tmp_path / "t0.npy"), str(tmp_path / "slow.pose")) == 80
    assert ": 6 frames at 12.5 fps, 2 panel(s)" in capsys.readouterr().out  # not its 12 at half speed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same rate as the .npy's, or the .npy alone: nothing to warn of
        assert ms(str(tmp_path / "t0.npy"), str(tmp_path / "fast.pose")) == 40 and ms(str(tmp_path / "t0.npy")) == 40
    assert ms(str(tmp_path / "a.npy")) == 40 and ms(str(tmp_path / "fast.pose"), "--fps", "10") == 100
    assert ms(str(tmp_path / "a.npy"), str(tmp_path / "slow.pose"), "--fps", "12.5") == 80  # a model's 12.5 fps .npy
    # a model's 12.5 fps output beside its 25 fps data: the faster keeps every second frame, both play as recorded
    assert ms(str(tmp_path / "slow.pose"), str(tmp_path / "fast.pose")) == 80
    assert "6 frames at 12.5 fps" in capsys.readouterr().out
    save_pose(tmp_path / "odd.pose", pose, fps=30.0)
    assert main(["render", str(tmp_path / "fast.pose"), str(tmp_path / "odd.pose"), "--out",
                 str(tmp_path / "y.gif")]) == 1  # fmt: skip
    assert "frame rates differ" in capsys.readouterr().err and not (tmp_path / "y.gif").exists()


def test_render_says_what_it_cannot_do_before_reading_and_what_it_did_after(tmp_path, capsys):
    """A name that is no animation fails first; --fps beside inputs at different rates, poses in other units or y
    up, and a GIF that keeps one frame in k are said; a failed write names the file asked for, not its temporary."""
    from fgdm.cli import main

    pose = SynthCorpus(1, "test", seed=0)[0].pose[:6]
    save_pose(tmp_path / "slow.pose", pose, fps=12.5)
    save_pose(tmp_path / "fast.pose", pose, fps=25.0)
    (tmp_path / "dir.gif").mkdir()
    for out, said in (("", r"\. is a directory: name the animation file"),
                      (".gif", r"\.gif: an animation's name ends in"),
                      (str(tmp_path), "is a directory: name the animation file to write"),
                      ("x.webm", "unsupported animation format '.webm'")):  # fmt: skip
        assert main(["render", str(tmp_path / "missing.npy"), "--out", out, "--overwrite"]) == 1  # before reading
        assert re.search(said, capsys.readouterr().err)
    assert main(["render", str(tmp_path / "fast.pose"), "--out", str(tmp_path / "dir.gif"), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "dir.gif" in err and ".tmp" not in err
    with pytest.warns(UserWarning, match=r"--fps 25 plays every input's frames at that rate, so inputs recorded at "
                      r"12\.5 and 25 fps run at different speeds; without --fps they play in step"):  # fmt: skip
        main(["render", str(tmp_path / "slow.pose"), str(tmp_path / "fast.pose"), "--out", str(tmp_path / "a.gif"),
              "--fps", "25"])  # fmt: skip
    assert main(["render", str(tmp_path / "fast.pose"), "--out", str(tmp_path / "b.gif"), "--fps", "100"]) == 0
    assert "b.gif: 3 frames at 50 fps (one in 2 of 6 at 100 fps: a GIF plays at most 50 a second)" in (
        capsys.readouterr().out
    )
    for name, moved, said in (("cm", pose * 100, r"its shoulders are 33\.\d apart"),
                              ("up", pose * [1, -1, 1], r"its head is below its neck \(y up\?")):  # fmt: skip
        save_npy(tmp_path / f"{name}.npy", moved)
        with pytest.warns(UserWarning, match=rf"{name}\.npy: not in the PT convention .*: {said}"):
            assert main(["render", str(tmp_path / f"{name}.npy"), "--out", str(tmp_path / f"{name}.gif")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in the convention: nothing to say; a model's output is not judged
        assert main(["render", str(tmp_path / "fast.pose"), "--out", str(tmp_path / "c.gif")]) == 0
        save_animation(tmp_path / "d.gif", pose * 2)
    corpus = tmp_path / "data"
    write_split(corpus, "test", PTSplit([pose, pose], [["A"], ["B"]], ["a", "b"], ["s0", "s1"]))
    assert main(["render", str(corpus), "--index", "2", "--out", str(tmp_path / "d.gif")]) == 1
    assert "--index 2 out of range: " in (err := capsys.readouterr().err) and "test split has 0 to 1" in err


@pytest.mark.parametrize("fps", [8.33, 12.5, 25, 30, 60, 100, 240])
def test_gifs_keep_time_at_any_rate(tmp_path, fps):
    """GIF delays are hundredths of a second and browsers play those under 2 as 10: above 50 fps frames are
    dropped, and delays alternate so that the whole plays at the rate asked."""
    from PIL import Image

    from fgdm.gif import gif_timing

    pose = SynthCorpus(1, "test", seed=0)[0].pose[:30]
    path = save_animation(tmp_path / "a.gif", pose, fps=fps)
    delays = []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            delays.append(im.info["duration"])
    assert min(delays) >= 20 and len(delays) == len(gif_timing(len(pose), fps)[0])
    assert sum(delays) == pytest.approx(1000 * len(pose) / fps, abs=10 * max(1, fps // 50))


def test_an_animation_rate_out_of_range_is_refused_before_writing(tmp_path):
    pose = SynthCorpus(1, "test", seed=0)[0].pose[:5]
    for fps, suffix in ((0.001, ".gif"), (1e-9, ".mp4"), (5000.0, ".gif"), (float("nan"), ".gif")):
        with pytest.raises(ValueError, match=r"an animation plays at 0\.01 to 1000"):
            save_animation(tmp_path / f"x{suffix}", pose, fps=fps)
    assert not list(tmp_path.iterdir())


def test_a_pose_file_is_not_written_at_a_rate_no_reader_takes(tmp_path):
    pose = SynthCorpus(1, "test", seed=0)[0].pose[:5]
    for fps in (0.0, -25.0, float("nan"), 0.5, 2000.0):  # the last two: rates fgdm's reader refuses as no recording's
        with pytest.raises(ValueError, match=r"a \.pose file is read at 1 to 1000 frames per second"):
            save_pose(tmp_path / "a.pose", pose, fps=fps)
    assert not (tmp_path / "a.pose").exists()
    assert len(load_any(save_pose(tmp_path / "a.pose", pose, fps=1.0))) == 5  # the slowest: read back


def test_titles_draw_umlauts_not_boxes():
    """Glosses and names such as SÜD: the title font has the letters (Pillow's built-in one draws boxes)."""
    from fgdm.render import title_font

    font = title_font()

    def glyph(text: str) -> bytes:
        return bytes(font.getmask(text))

    assert glyph("Ü") != glyph("\U000f0000")  # a private-use character no font draws: the missing-glyph box
    assert glyph("ü") != glyph("u")


def _holistic_file(path, pose, people_conf, scale=(1.0, 0.5), fps=25):
    """A MediaPipe-sized Holistic file of ``pose`` for several people, each with its confidence factor."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    from fgdm.data import holistic

    data, conf = holistic.to_holistic(pose)
    header = PoseHeader(0.2, PoseHeaderDimensions(1920, 1080, 0), holistic.components())
    body = NumPyPoseBody(fps=fps, data=np.concatenate([data * s for s in scale[: len(people_conf)]], 1),
                         confidence=np.concatenate([conf * c for c in people_conf], 1))  # fmt: skip
    with open(path, "wb") as f:
        Pose(header, body).write(f)
    return path


def test_a_pose_file_of_several_people_is_read_for_its_one_signer_or_refused(tmp_path, pose):
    from fgdm.data.pt import DataFormatError

    alone = load_any(_holistic_file(tmp_path / "one.pose", pose, [1]))
    # the signer second, nobody seen first: the signer is read, not the empty first person
    np.testing.assert_allclose(load_any(_holistic_file(tmp_path / "second.pose", pose, [0, 1], (0.5, 1.0))), alone,
                               atol=1e-4)  # fmt: skip
    with pytest.raises(DataFormatError, match=r"two.pose: 2 people, 2 of them seen: fgdm reads one signer"):
        load_any(_holistic_file(tmp_path / "two.pose", pose, [1, 1]))


def test_a_non_finite_point_is_named_with_its_frame(tmp_path, pose):
    from pose_format import Pose

    from fgdm.data.pt import DataFormatError

    path = _holistic_file(tmp_path / "a.pose", pose, [1])
    p = Pose.read(path.read_bytes())
    p.body.data[3, 0, p.header.get_point_index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2] = np.nan
    with open(path, "wb") as f:
        p.write(f)
    with pytest.raises(DataFormatError, match=r"a.pose: frame 4, point POSE_LANDMARKS/LEFT_SHOULDER: .* not finite"):
        load_any(path)
    bad = pose.copy()
    bad[2, 7, 1] = np.inf
    np.save(tmp_path / "b.npy", bad)
    with pytest.raises(
        ValueError,
        match=r"b.npy: frame 3 \(index 2\), joint 7 \(left_wrist, 0-based\) coordinate y is inf \(not finite\)",
    ):
        load_any(tmp_path / "b.npy")
    np.save(tmp_path / "c.npy", pose.astype(np.complex64))
    with pytest.raises(ValueError, match=r"c.npy: values of type complex64, expected real numbers"):
        load_any(tmp_path / "c.npy")


def test_a_2d_pose_file_is_refused_as_2d(tmp_path):
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    from fgdm.data import holistic
    from fgdm.data.pt import DataFormatError

    components = holistic.components()
    for c in components:
        c.format = "XYC"
    n = sum(len(c.points) for c in components)
    body = NumPyPoseBody(fps=25, data=np.ones((4, 1, n, 2)), confidence=np.ones((4, 1, n)))
    with open(tmp_path / "a.pose", "wb") as f:
        Pose(PoseHeader(0.2, PoseHeaderDimensions(1920, 1080, 0), components), body).write(f)
    with pytest.raises(DataFormatError, match=r"2D points: fgdm reads x, y and z"):
        load_any(tmp_path / "a.pose")


def test_an_fgdm_pose_file_normalised_by_pose_format_is_read_as_normalised(tmp_path, pose):
    """pose-format's normalize keeps fgdm's 1000³ header but moves the points (shoulders' midpoint at 0, their
    width 1): read as fgdm's canvas, that was a skeleton 0.00167 wide in the wrong place, silently."""
    from pose_format import Pose
    from pose_format.utils.generic import pose_normalization_info

    path = save_pose(tmp_path / "a.pose", pose)
    p = Pose.read(path.read_bytes())
    p.normalize(pose_normalization_info(p.header))
    assert (p.header.dimensions.width, p.header.dimensions.depth) == (1000, 1000)
    with open(tmp_path / "norm.pose", "wb") as f:
        p.write(f)
    back = load_any(tmp_path / "norm.pose")
    width = np.linalg.norm(pose[:, 2, :2] - pose[:, 5, :2], axis=-1)
    assert abs(np.median(np.linalg.norm(back[:, 2, :2] - back[:, 5, :2], axis=-1)) - 0.334) < 1e-3
    neck = (pose[:, 2:3] + pose[:, 5:6]) / 2  # the original, normalised as PT data is
    np.testing.assert_allclose(back, (pose - neck) * 0.334 / np.median(width), atol=1e-3)


def test_an_fgdm_pose_file_far_from_pt_scale_still_reads_back_exactly(tmp_path, pose):
    """An early model's output: shoulders narrow and off the origin, still within fgdm's canvas checks."""
    odd = pose.copy()
    odd[..., :2] = odd[..., :2] * 0.4 + np.array([0.2, -0.15], dtype=np.float32)
    back = load_any(save_pose(tmp_path / "a.pose", odd))
    others = [j for j in range(50) if j != 1]
    np.testing.assert_allclose(back[:, others], odd[:, others], atol=1e-4)


@pytest.mark.parametrize("suffix", [".pose", ".npy"])
def test_a_pose_writer_names_the_file_it_refuses(tmp_path, pose, suffix):
    from fgdm.data.io import save_sequence

    with pytest.raises(ValueError, match=rf"x\{suffix}: no frames"):
        save_sequence(tmp_path / f"x{suffix}", np.zeros((0, 50, 3)))
    with pytest.raises(ValueError, match=rf"x\{suffix}: shape \(3, 49, 3\)"):
        save_sequence(tmp_path / f"x{suffix}", pose[:3, :49])
    assert not list(tmp_path.iterdir())  # nothing written, not even an empty file


def _fgdm_pose(path, pose, edit=None, fps=25.0):
    """fgdm's own .pose of ``pose`` (on its 1000-pixel canvas); ``edit(conf)`` may hide points (confidence 0)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    from fgdm.data import holistic

    data, conf = holistic.to_holistic(pose)
    if edit is not None:
        edit(conf[:, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        Pose(PoseHeader(0.2, PoseHeaderDimensions(1000, 1000, 1000), holistic.components()),
             NumPyPoseBody(fps=fps, data=data, confidence=conf)).write(f)  # fmt: skip
    return path


def test_what_reading_pose_hypotheses_changed_is_counted(tmp_path):
    """A hypothesis .pose with a hand never seen is scored with that hand on its wrist, and one off fgdm's canvas
    normalised: evaluate says so (its notes), from these counts."""
    from fgdm.data.hypotheses import read_hypotheses

    corpus = SynthCorpus(4, "test", seed=0)
    refs = [corpus[i].pose[:20] for i in range(4)]
    names = ["s0", "s1", "s2", "s3"]
    hyp = tmp_path / "h"
    from fgdm.data import holistic

    left, right = holistic.start("LEFT_HAND_LANDMARKS"), holistic.start("RIGHT_HAND_LANDMARKS")

    def no_left_hand(conf):
        conf[:, left : left + 21] = 0  # never seen

    def gaps(conf):
        conf[3:6, right + 8] = 0  # the right index fingertip missed in three frames

    _fgdm_pose(hyp / "s0.pose", refs[0], no_left_hand)
    save_pose(hyp / "s1.pose", refs[1] * 0.2)  # a model's early, shrunken output: off fgdm's canvas
    _fgdm_pose(hyp / "s2.pose", refs[2], gaps)
    save_npy(hyp / "s3.npy", refs[3])
    got = read_hypotheses(hyp, "test", names, fps=25.0)
    assert np.allclose(got.poses[0][:, 8:29], got.poses[0][:, 7:8], atol=1e-4)  # the hand on its wrist
    assert abs(np.linalg.norm(got.poses[1][0, 2] - got.poses[1][0, 5]) - 0.334 * 0.2) > 0.1  # rescaled
    counts = (got.pose_files, got.absent_files, got.absent, got.filled_files, got.interpolated, got.normalised)
    assert counts == (3, 1, 21 * 20, 1, 3, 1)
    assert got.changes() == (
        "of its 3 .pose files scored, 1 has points missing in some frames (3 joint values interpolated between the "
        "frames that show them); 1 has points missing in every frame (420 joint values put at their anchors: a hand "
        "at its body wrist, the head above the neck); 1 is not on fgdm's canvas and normalised as PT data (the neck "
        "at the origin, the median shoulder width scaled to 0.334) rather than read back as written: they are "
        "scored with those changes"
    )
    clean = read_hypotheses(hyp, "test", ["s3"], fps=25.0, allow_extra=True)  # only the .npy scored
    assert clean.changes() == "" and clean.pose_files == 0 and np.array_equal(clean.poses[0], refs[3])


def test_a_flat_folder_is_not_taken_for_a_split_whose_names_another_split_has(tmp_path):
    """The synthetic data names every split's sequences synth-00000 …: files directly in a folder, matched to the
    test split by the folder rule, could be the dev split's outputs, scored against the test references."""
    from fgdm.data.hypotheses import load_hypotheses
    from fgdm.data.pt import DataFormatError

    names = ["test/synth-00000", "test/synth-00001"]
    elsewhere = {"train/synth-00000": "train", "dev/synth-00000": "dev", "dev/synth-00001": "dev"}
    for i, pose in enumerate(_refs(2)):
        save_npy(tmp_path / "H" / f"synth-0000{i}.npy", pose)
        save_npy(tmp_path / "nested" / "test" / f"synth-0000{i}.npy", pose)
        save_npy(tmp_path / "ids" / f"clip{i}.npy", pose)
    with pytest.raises(DataFormatError, match=r"H: its files lie directly in it and the data's train split has their "
                       r"names too \('test/synth-00000' and 'train/synth-00000'\): they could be that split's outputs; "
                       r"put the test split's files in a folder named test and give that folder"):  # fmt: skip
        load_hypotheses(tmp_path / "H", "test", names, fps=25.0, elsewhere=elsewhere)
    for where in (tmp_path / "nested", tmp_path / "nested" / "test"):  # matched by path, or in a folder named test
        got = load_hypotheses(where, "test", names, fps=25.0, elsewhere=elsewhere)
        assert [float(p[0, 0, 0]) for p in got] == [0.0, 1.0]
    # names no other split has (PHOENIX's, imported ids): a flat folder is matched as before
    assert len(load_hypotheses(tmp_path / "H", "test", names, fps=25.0, elsewhere={"dev/x": "dev"})) == 2
    with pytest.raises(DataFormatError, match=r"ids: .* dev split has their names too \('clip1' and 'clip1'\)"):
        load_hypotheses(tmp_path / "ids", "test", ["clip1", "clip0"], fps=25.0, elsewhere={"clip1": "dev"})


def test_the_names_of_the_other_splits_are_read_without_their_poses(tmp_path):
    from fgdm.config import DataConfig
    from fgdm.data.hypotheses import names_elsewhere
    from fgdm.data.pt import PTSplit, write_split
    from fgdm.data.sources import SynthManifest

    for split, n in (("train", 2), ("dev", 1), ("test", 1)):
        names = [f"{split}/s{i}" for i in range(n)]
        write_split(tmp_path, split, PTSplit(_refs(n), [["A"]] * n, ["a"] * n, names))
    assert names_elsewhere(tmp_path, "test") == {"train/s0": "train", "train/s1": "train", "dev/s0": "dev"}
    embedded = names_elsewhere(DataConfig(synth_train=2, synth_dev=1, synth_test=3), "test")
    assert embedded == {"train/synth-00000": "train", "train/synth-00001": "train", "dev/synth-00000": "dev"}
    SynthManifest(seed=0, sizes={"train": 1, "dev": 2, "test": 1}).save(tmp_path / "lazy")
    assert names_elsewhere(tmp_path / "lazy", "dev") == {"train/synth-00000": "train", "test/synth-00000": "test"}


def test_hidden_files_in_a_hypothesis_folder_are_no_part_of_it(tmp_path):
    """Jupyter's .ipynb_checkpoints/ inside the folder turned the folder rule off: the right files were listed as
    extra and the references as missing."""
    from fgdm.data.hypotheses import load_hypotheses

    for i, pose in enumerate(_refs(2)):
        save_npy(tmp_path / f"s{i}.npy", pose)
    save_npy(tmp_path / ".ipynb_checkpoints" / "s0-checkpoint.npy", _refs(3)[2])
    save_npy(tmp_path / ".s1.npy", _refs(3)[2])
    got = load_hypotheses(tmp_path, "test", ["test/s0", "test/s1"], fps=25.0)
    assert [float(p[0, 0, 0]) for p in got] == [0.0, 1.0]


def test_hypotheses_as_pt_files_need_only_skels_and_files(tmp_path):
    """Scoring uses the references' glosses and texts: a system's .gloss and .text may be left out."""
    from fgdm.data.hypotheses import load_hypotheses
    from fgdm.data.pt import DataFormatError, PTSplit, write_split

    write_split(tmp_path, "dev", PTSplit(_refs(2), [["A"], ["B"]], ["a", "b"], ["dev/s0", "dev/s1"]))
    (tmp_path / "dev.gloss").unlink()
    (tmp_path / "dev.text").unlink()
    got = load_hypotheses(tmp_path, "dev", ["dev/s1", "dev/s0"], fps=25.0)
    assert [float(p[0, 0, 0]) for p in got] == [1.0, 0.0]
    (tmp_path / "dev.files").write_text("dev/s0\n")
    with pytest.raises(DataFormatError, match=r": dev\.skels has 2 lines but dev\.files has 1$"):
        load_hypotheses(tmp_path, "dev", ["dev/s0"], fps=25.0)
    (tmp_path / "dev.files").write_text("dev/s0\ndev/s0\n")
    with pytest.raises(DataFormatError, match=r"dev\.files:2: the name 'dev/s0' again \(first on line 1\)"):
        load_hypotheses(tmp_path, "dev", ["dev/s0"], fps=25.0)
    (tmp_path / "dev.files").unlink()
    with pytest.raises(DataFormatError, match=r"dev\.files: file not found \(hypotheses as PT files need \.skels "):
        load_hypotheses(tmp_path, "dev", ["dev/s0"], fps=25.0)


def test_a_pose_file_far_out_names_the_frame_and_the_point_as_read(tmp_path, pose):
    """A nose at a million pixels: the error names where, and the value in the file, not only the normalised one."""
    from pose_format import Pose

    from fgdm.data.pt import DataFormatError

    path = _holistic_file(tmp_path / "huge.pose", pose, [1])
    p = Pose.read(path.read_bytes())
    p.body.data[3, 0, p.header.get_point_index("POSE_LANDMARKS", "NOSE"), 0] = 1e6
    with open(path, "wb") as f:
        p.write(f)
    with pytest.raises(DataFormatError, match=r"huge\.pose: frame 4, point POSE_LANDMARKS/NOSE: \(1e\+06, [-\d.]+, "
                       r"[-\d.e+]+\) as read, x = -?\d+\.?\d* PT units once normalised as PT data, beyond ±1000: not "
                       r"a pose$"):  # fmt: skip
        load_any(path)
    far = pose.copy()
    far[2, 9, 1] = -2000.0
    np.save(tmp_path / "far.npy", far)
    with pytest.raises(
        ValueError,
        match=r"far\.npy: frame 3 \(index 2\), joint 9 \(left_thumb_1, 0-based\) coordinate y is -2000: beyond ±1000",
    ):
        load_any(tmp_path / "far.npy")


def test_hypotheses_named_without_the_split_folder_short_or_in_another_folder(tmp_path):
    """PT hypotheses whose .files leave out PT's test/ matched nothing (files directly in the folder did match);
    sequences of a frame or a tenth of their reference's length are noted; files all in another split's folder
    are named as such."""
    from fgdm.data.pt import DataFormatError, PTSplit, write_split

    refs = [s.pose for s in SynthCorpus(3, "test", seed=0)]
    names, lengths = ["test/s0", "test/s1", "test/s2"], [len(p) for p in refs]
    short = [refs[0], refs[1][:1], refs[2][: len(refs[2]) // 20]]
    write_split(tmp_path / "pt", "test", PTSplit(short, [["A"]] * 3, ["a"] * 3, ["s0", "s1", "s2"]))
    got = read_hypotheses(tmp_path / "pt", "test", names, fps=25.0, lengths=lengths)
    assert [len(p) for p in got.poses] == [len(p) for p in short]
    assert got.notes(25.0) == [
        f"2 sequences are under a tenth of their reference's length (or 1 frame), e.g. test/s1: 1 frame against "
        f"{lengths[1]}"
    ]
    for i, p in enumerate(refs):
        save_npy(tmp_path / "h" / "dev" / f"s{i}.npy", p)
    with pytest.raises(DataFormatError, match=r"extra \['dev/s0', .*; its files lie in dev/, the test split's names"):
        read_hypotheses(tmp_path / "h", "test", names, fps=25.0)


def test_a_pt_split_of_hypotheses_whose_glosses_differ_from_the_references_is_noted(tmp_path):
    """Its .gloss was read and never compared: outputs of other sentences (or in another order) under the
    references' names were scored without a word."""
    from fgdm.data.pt import PTSplit, write_split

    refs = [s.pose for s in SynthCorpus(3, "test", seed=0)]
    ours = [["MORGEN", "REGEN"], ["NORD"], ["SONNE", "WIND"]]
    theirs = [ours[0], ["WIND"], ours[2]]
    write_split(tmp_path / "pt", "test", PTSplit(refs, theirs, ["a"] * 3, ["s0", "s1", "s2"]))
    got = read_hypotheses(tmp_path / "pt", "test", ["s0", "s1", "s2"], fps=25.0, glosses=ours)
    assert got.notes(25.0) == [
        "1 sequence has other glosses in its .gloss than the reference of its name, e.g. s1: 'WIND' against 'NORD' "
        "(outputs of other sentences? each is scored against its name's reference)"
    ]
    assert read_hypotheses(tmp_path / "pt", "test", ["s0", "s1", "s2"], fps=25.0, glosses=theirs).notes(25.0) == []
    assert read_hypotheses(tmp_path / "pt", "test", ["s0", "s1", "s2"], fps=25.0).notes(25.0) == []  # none given
