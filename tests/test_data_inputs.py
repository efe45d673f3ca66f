"""Data commands' odd inputs, each named where it is (file, line, problem), and nothing of the user's lost."""

import os
import warnings

import pytest

from fgdm.cli import main
from fgdm.data.csvs import read_phoenix_csv
from fgdm.data.pt import DataFormatError
from fgdm.data.synth.corpus import SynthCorpus
from test_import import write_holistic

SMALL = ["--num-train", "2", "--num-dev", "1", "--num-test", "1", "--quiet"]


def _csv(tmp_path, text: str, name: str = "x.csv"):
    (path := tmp_path / name).write_text(text, encoding="utf-8")
    return path


def test_quoted_ids_and_annotations_are_refused_with_their_line_and_blank_lines_named(tmp_path):
    header = "id|signer|annotation|translation\n"
    quoted = _csv(tmp_path, header + 'a|s|A B|ein Satz\n"c0"|S1|"REGEN NORD"|"es regnet"\n')
    with pytest.raises(DataFormatError, match=r'x.csv:3: id "c0": in double quotes .*: remove them'):
        read_phoenix_csv(quoted)  # not glosses '"REGEN' and 'NORD"' in the vocabulary
    _csv(tmp_path, header + 'c0|S1|"REGEN NORD"|es regnet\n')
    with pytest.raises(DataFormatError, match=r'x.csv:2: annotation "REGEN NORD": in double quotes'):
        read_phoenix_csv(quoted)
    _csv(tmp_path, "\n" + header + "c0|S1|REGEN|x\n")
    with pytest.raises(DataFormatError, match=r"x.csv:1: a blank line: the header .* is the first line"):
        read_phoenix_csv(quoted)
    _csv(tmp_path, header + "c0|S1|REGEN|x\n   \nc1|S1|NORD|y\n")  # spaces only: a blank line, as an empty one
    assert [r.name for r in read_phoenix_csv(quoted)] == ["c0", "c1"]
    assert [r.line for r in read_phoenix_csv(quoted)] == [2, 4]
    _csv(tmp_path, header + 'c0|S1|REGEN|er sagte "ja"\n')  # quotes inside free text are text
    assert read_phoenix_csv(quoted)[0].text == 'er sagte "ja"'


def test_an_overwrite_replaces_the_data_set_not_the_users_files_beside_it(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["synth", "--out", str(out), "--num-train", "2", "--num-dev", "1", "--num-test", "1",
                 "--quiet"]) == 0  # fmt: skip
    (out / "extra.skels").write_text("", encoding="utf-8")  # an old split the new data set has not
    (out / "extra.gloss").write_text("", encoding="utf-8")
    (out / "dev.skels.tmp").write_text("", encoding="utf-8")  # a partly written file of the old set
    mine = {"notes.text": "precious", "draft.tmp": "x", "list.files": "y", "README.md": "z"}
    for name, text in mine.items():
        (out / name).write_text(text, encoding="utf-8")
    assert main(["synth", "--out", str(out), *SMALL]) == 1  # not empty: refused without --overwrite
    assert "is not empty" in capsys.readouterr().err
    assert main(["synth", "--out", str(out), *SMALL, "--overwrite"]) == 0
    left = sorted(p.name for p in out.iterdir())
    assert not {"extra.skels", "extra.gloss", "dev.skels.tmp"} & set(left)
    assert all((out / name).read_text(encoding="utf-8") == text for name, text in mine.items())
    assert {"train.skels", "dev.gloss", "test.files", "src_vocab.txt"} <= set(left)
    capsys.readouterr()
    assert main(["data", "check", str(out), "--quiet"]) == 0  # the user's files are no split


def test_hidden_files_alone_leave_a_directory_empty_for_writing(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    assert main(["synth", "--out", str(out), *SMALL]) == 0
    assert (out / ".DS_Store").read_bytes() == b"\0\0\0\1Bud1"


@pytest.mark.parametrize("kind", ["folder", "broken link"])
def test_a_split_file_that_is_no_file_is_named_as_such(tmp_path, capsys, kind):
    out = tmp_path / "d"
    assert main(["synth", "--out", str(out), *SMALL]) == 0
    for file in ("test.skels", "dev.gloss"):
        (out / file).unlink()
        if kind == "folder":
            (out / file).mkdir()
        else:
            os.symlink(tmp_path / "nowhere", out / file)
    capsys.readouterr()
    assert main(["data", "check", str(out), "--quiet", "--split", "dev"]) == 1
    said = "a folder, not a file" if kind == "folder" else "a broken symbolic link (to "
    assert f"dev.gloss: {said}" in capsys.readouterr().err
    assert main(["data", "check", str(out), "--quiet"]) == 1
    assert f"test.skels: {said}" in capsys.readouterr().err


@pytest.mark.parametrize("damage", [b"PK\x03\x04garbage", b""])
def test_a_damaged_frame_count_cache_is_planned_again(tmp_path, damage):
    cache = tmp_path / ".frames-test.npz"
    counts = SynthCorpus(3, "test", seed=1, frames_cache=cache).frame_counts()
    cache.write_bytes(damage)
    assert (SynthCorpus(3, "test", seed=1, frames_cache=cache).frame_counts() == counts).all()
    assert cache.stat().st_size > len(damage)  # written again


@pytest.mark.parametrize("fps", [1e-5, 0.5, 5000.0])
def test_a_pose_file_at_no_recordings_frame_rate_is_refused_before_resampling(tmp_path, capsys, fps):
    pose = SynthCorpus(1, "train", seed=0)[0].pose[:3]
    write_holistic(tmp_path / "v" / "clip0.pose", pose, fps=fps)
    _csv(tmp_path, "id|signer|annotation|translation\nclip0|S1|REGEN|x\n", "train.csv")
    argv = ["data", "import", str(tmp_path / "v"), "--glosses", str(tmp_path / "train.csv"), "--out",
            str(tmp_path / "out"), "--quiet"]  # fmt: skip
    assert main(argv) == 1
    assert f"clip0.pose: frame rate {fps:g} fps, not a recording's (1 to 1000;" in capsys.readouterr().err


def test_import_names_an_id_in_two_splits_with_both_lines_and_a_file_given_as_the_folder(tmp_path, capsys):
    pose = SynthCorpus(1, "train", seed=0)[0].pose[:3]
    write_holistic(tmp_path / "v" / "clip0.pose", pose)
    header = "id|signer|annotation|translation\n"
    _csv(tmp_path, header + "clip9|S1|NORD|y\nclip0|S1|REGEN|x\n", "a.train.csv")
    _csv(tmp_path, header + "clip0|S1|REGEN|x\n", "a.dev.csv")
    out = str(tmp_path / "out")
    assert main(["data", "import", str(tmp_path / "v"), "--glosses", str(tmp_path), "--out", out, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "a.dev.csv:2: the id 'clip0' is in the train split too (" in err and "a.train.csv:3)" in err
    assert main(["data", "import", str(tmp_path / "v" / "clip0.pose"), "--glosses", str(tmp_path), "--out", out]) == 1
    assert "clip0.pose: directory of .pose files a file: give the folder of the .pose files" in capsys.readouterr().err


def test_compressed_csvs_in_a_folder_are_named_with_the_command(tmp_path):
    from fgdm.data.csvs import csv_splits

    (tmp_path / "train.csv.gz").write_bytes(b"\x1f\x8b\x08\0")
    with pytest.raises(DataFormatError, match=r"train.csv.gz: gzip-compressed, decompress \(gunzip -k train.csv.gz\)"):
        csv_splits(tmp_path)


def test_a_lazy_manifest_whose_csv_moved_is_named_and_a_negative_seed_refused(tmp_path, capsys):
    from fgdm.data.sources import MANIFEST, open_corpus

    csv = _csv(tmp_path, "id|signer|annotation|translation\nc0|S1|REGEN|x\n", "t.train.csv")
    assert main(["synth", "--out", str(tmp_path / "lz"), "--lazy", "--glosses", str(csv), "--quiet"]) == 0
    csv.rename(tmp_path / "moved.csv")
    with pytest.raises(DataFormatError, match=rf"lz/{MANIFEST}: its train split's CSV .*t.train.csv is not found"):
        open_corpus(tmp_path / "lz", "train")
    (tmp_path / "lz" / MANIFEST).write_text('{"seed": -5}', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"seed is -5, not a whole number from 0 to 2\*\*63 - 1"):
        open_corpus(tmp_path / "lz", "train")


def test_render_refuses_a_folder_as_its_output_before_rendering_and_points_a_skels_file_to_its_folder(tmp_path, capsys):
    data = tmp_path / "d"
    assert main(["synth", "--out", str(data), *SMALL]) == 0
    (tmp_path / "x.gif").mkdir()
    assert main(["render", str(data), "--split", "test", "--out", str(tmp_path / "x.gif"), "--overwrite"]) == 1
    assert "x.gif is a directory: --out names the animation's file" in capsys.readouterr().err
    assert main(["render", str(data / "test.skels"), "--out", str(tmp_path / "y.gif")]) == 1
    assert "a PT split's sequences are read from their directory" in capsys.readouterr().err


def test_more_sentences_asked_of_a_csv_than_it_has_rows_are_said(tmp_path):
    csv = _csv(tmp_path, "id|signer|annotation|translation\nc0|S1|REGEN|x\nc1|S1|NORD|y\n", "t.train.csv")
    with pytest.warns(UserWarning, match=r"train: 5 sentences asked for, but .*t.train.csv has 2 rows: all taken"):
        assert main(["synth", "--out", str(tmp_path / "d"), "--glosses", str(csv), "--num-train", "5", "--quiet"]) == 0
    assert (tmp_path / "d" / "train.gloss").read_text(encoding="utf-8").splitlines() == ["REGEN", "NORD"]


def _copy_pt(source, target, splits=("train", "dev")):
    import shutil

    target.mkdir()
    for split in splits:
        for suffix in ("skels", "gloss", "text", "files"):
            shutil.copy(source / f"{split}.{suffix}", target / f"{split}.{suffix}")
    return target


def test_a_splits_files_without_its_skels_are_said_and_a_manifest_beside_pt_files_refused(synth_dir, tmp_path):
    from fgdm.data.sources import SynthManifest, data_splits

    data = _copy_pt(synth_dir, tmp_path / "d")
    for suffix in ("gloss", "text", "files"):  # a test split whose poses were forgotten
        (data / f"test.{suffix}").write_text((data / f"dev.{suffix}").read_text())
    (data / "notes.text").write_text("not a split\n")
    with pytest.warns(UserWarning, match=r"test.files, test.gloss, test.text without a .skels beside them"):
        assert data_splits(data) == ["train", "dev"]
    SynthManifest(seed=0, sizes={"train": 3, "dev": 2}).save(data)  # it would have replaced the real data unsaid
    with pytest.raises(DataFormatError, match=r"synth.json: a synthetic manifest beside PT split files \(dev.skels, "
                       r"train.skels\): a data directory holds one data set"):  # fmt: skip
        data_splits(data)


def test_one_recording_in_two_splits_is_said_by_data_check_and_before_training(synth_dir, tmp_path):
    from fgdm.config import DataConfig, TrainingConfig
    from fgdm.data.stats import check_directory
    from fgdm.training.data import PoseDataModule

    data = _copy_pt(synth_dir, tmp_path / "d")
    train, dev = ((data / f"{s}.files").read_text().splitlines() for s in ("train", "dev"))
    dev[2], dev[4] = train[0], train[5]
    (data / "dev.files").write_text("\n".join(dev) + "\n")
    said = (
        rf"dev.files:3: '{train[0]}' is also .*train.files:1, one recording in two splits \(2 names of dev in train\)"
    )
    with pytest.warns(UserWarning, match=said):
        check_directory(data)
    with pytest.warns(UserWarning, match=said + ": training would validate on what it trains on"):
        PoseDataModule(DataConfig(path=str(data)), TrainingConfig(), 4)
    with warnings.catch_warnings():  # the synthetic data's own names: nothing said
        warnings.simplefilter("error")
        check_directory(synth_dir)


def test_sequences_too_short_for_their_glosses_are_said(tmp_path):
    """data check: fewer frames than glosses. Training with SCG: too few for its CTC (⌈S/4⌉ steps), whose loss
    would be 0 (zero_infinity), unsaid."""
    from fgdm.data.corpus import PTCorpus
    from fgdm.data.pt import PTSplit, write_split
    from fgdm.data.stats import check_directory
    from fgdm.model.scg import SCGBranch
    from fgdm.training.generator import warn_unalignable

    poses = [s.pose for s in (SynthCorpus(3, "train", seed=0)[i] for i in range(3))]
    poses[1] = poses[1][:3]
    glosses = [["REGEN"], ["A", "B", "C", "D"], ["NORD", "NORD"]]
    for split in ("train", "dev"):
        write_split(tmp_path, split, PTSplit(poses=poses, glosses=glosses, texts=["x"] * 3, names=["a", "b", "c"]))
    with pytest.warns(UserWarning, match=r"1 of the train split's 3 sequences has fewer frames than glosses .*b: 3 "
                      r"frames, 4 glosses"):  # fmt: skip
        check_directory(tmp_path)
    assert SCGBranch.alignable(8, ["A", "B"]) and not SCGBranch.alignable(8, ["A", "B", "C"])
    assert not SCGBranch.alignable(8, ["A", "A"]) and SCGBranch.alignable(9, ["A", "A"])  # a blank between alike
    with pytest.warns(UserWarning, match=r"1 of the 3 training sequences are too short .* b: 3 frames, 4 glosses"):
        warn_unalignable(PTCorpus.read(tmp_path, "train"))


def test_data_check_says_when_skip_frames_leaves_no_signing(synth_dir):
    from fgdm.data.stats import check_directory

    with pytest.warns(UserWarning, match=r"--skip-frames 1000 leaves the train sequences 1 frame long"):
        check_directory(synth_dir, ["train"], skip_frames=1000)


def test_a_hand_never_seen_in_an_imported_clip_is_said_by_file(tmp_path, capsys):
    import json

    from fgdm.data.holistic import HAND21

    pose = SynthCorpus(1, "train", seed=0)[0].pose[:4]
    write_holistic(tmp_path / "v" / "clip0.pose", pose)
    write_holistic(tmp_path / "v" / "clip1.pose", pose, drop=[(f, "LEFT_HAND_LANDMARKS", p) for f in range(4)
                                                              for p in HAND21])  # fmt: skip
    _csv(tmp_path, "id|signer|annotation|translation\nclip0|S1|REGEN|x\nclip1|S1|NORD|y\n", "train.csv")
    argv = ["data", "import", str(tmp_path / "v"), "--glosses", str(tmp_path / "train.csv"), "--out",
            str(tmp_path / "out"), "--quiet"]  # fmt: skip
    with pytest.warns(UserWarning, match=r"train: 1 of 2 .pose files never show the left hand \(placed at its "
                      r"wrist\): clip1.pose$"):  # fmt: skip
        assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["train"]["never_seen"] == {"left hand": 1}


def test_an_empty_pose_file_and_a_csv_column_given_twice_are_named(tmp_path):
    from fgdm.data.io import read_pose

    (tmp_path / "empty.pose").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"empty.pose: an empty file \(0 bytes\), not a .pose file"):
        read_pose(tmp_path / "empty.pose")
    csv = _csv(tmp_path, "id|signer|annotation|translation|id\na|S1|REGEN|x|b\n")
    with pytest.raises(DataFormatError, match=r"x.csv:1: header .*: the column id twice"):
        read_phoenix_csv(csv)


def test_a_manifest_is_read_as_every_text_file_and_its_split_names_and_seed_checked(tmp_path):
    from fgdm.data.sources import SynthManifest, open_corpus

    (tmp_path / "synth.json").write_bytes(b'\xef\xbb\xbf{"seed": 0, "sizes": {"train": 3, "dev": 2}}\r\n')
    assert SynthManifest.load(tmp_path).sizes == {"train": 3, "dev": 2}  # a byte-order mark and CRLF, as elsewhere
    for text, said in ((b'{"seed": 0,\n "sizes": {"train": 3,}}', r"synth.json:2: invalid synthetic manifest"),
                       (b'{"sizes": {"tr\xfcn": 3}}', r"synth.json:1: not UTF-8 text .*'ü' in Windows-1252"),
                       (b'{"sizes": {"../x": 3}}', r"split '../x': a split's name is a plain word"),
                       (b'{"seed": 18446744073709551616}', r"seed is 18446744073709551616, not a whole")):  # fmt: skip
        (tmp_path / "synth.json").write_bytes(text)
        with pytest.raises(DataFormatError, match=said):
            SynthManifest.load(tmp_path)
    with pytest.raises(ValueError, match=r"split '../dev': a split's name is a plain word"):
        open_corpus(tmp_path, "../dev")


def test_a_key_set_twice_and_an_empty_config_file_are_said(tmp_path):
    from fgdm.config import load_config

    with pytest.warns(UserWarning, match=r"--set training.max_steps=2, then --set training.max_steps=3: "
                      r"training.max_steps given twice, the last taken"):  # fmt: skip
        assert load_config(None, ["training.max_steps=2", "training.max_steps=3"]).training.max_steps == 3
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    with pytest.warns(UserWarning, match=r"empty.yaml: no settings \(empty, or comments only\)"):
        load_config(tmp_path / "empty.yaml")
