import json

import imageio.v3 as iio
import pytest

from fgdm.cli import main


def test_synth_check_render_end_to_end(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--num-train", "6", "--num-dev", "2", "--num-test", "2", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["rendered_sequences"] == 10
    assert (out / "src_vocab.txt").read_text().startswith("<unk>\n<pad>\n<s>\n</s>\n")
    assert main(["data", "check", str(out), "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["sequences"] == 6 and report["splits"]["test"]["joints"] == 50
    assert report["splits"]["dev"]["neck_max_abs"] == 0.0
    assert main(["render", str(out), "--split", "dev", "--index", "1", "--out", str(tmp_path / "a.gif")]) == 0
    assert iio.imread(tmp_path / "a.gif").shape[0] > 10


def test_lazy_manifest_renders_the_same_samples(tmp_path, capsys):
    from fgdm.data.sources import open_corpus

    assert main(["synth", "--out", str(tmp_path / "lazy"), "--lazy", "--num-train", "7096", "--quiet"]) == 0
    assert sum(f.stat().st_size for f in (tmp_path / "lazy").iterdir()) < 200_000  # no gigabytes of text
    corpus = open_corpus(tmp_path / "lazy", "train")
    assert len(corpus) == 7096 and corpus[7095].pose.shape[1:] == (50, 3)


def test_skip_frames_thins_a_lazy_manifest_as_it_thins_files(tmp_path, capsys):
    from fgdm.config import DataConfig
    from fgdm.data.sources import build_corpus

    for lazy in ([], ["--lazy"]):
        args = [
            "synth",
            "--out",
            str(tmp_path / f"d{len(lazy)}"),
            "--num-train",
            "2",
            "--num-dev",
            "1",
            "--num-test",
            "1",
        ]
        assert main([*args, "--quiet", *lazy]) == 0
    capsys.readouterr()
    files, lazy = (build_corpus(DataConfig(path=str(tmp_path / d), skip_frames=2), "test") for d in ("d0", "d1"))
    full = build_corpus(DataConfig(path=str(tmp_path / "d0")), "test")[0].pose
    assert lazy[0].pose.shape == files[0].pose.shape == full[::2].shape and len(full) > 20
    assert (lazy.frame_counts() == files.frame_counts()).all()
    assert main(["data", "check", str(tmp_path / "d1"), "--skip-frames", "2", "--split", "test", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["test"]["frames"]["total"] == len(full[::2])


def test_a_manifest_with_a_negative_size_is_refused_naming_the_file(tmp_path):
    from fgdm.data.pt import DataFormatError
    from fgdm.data.sources import MANIFEST, SynthManifest

    (tmp_path / MANIFEST).write_text('{"seed": 1, "sizes": {"train": -3, "dev": 2}}')
    with pytest.raises(DataFormatError, match=r"synth\.json.*sizes must be ≥ 0, got \{'train': -3\}"):
        SynthManifest.load(tmp_path)


def test_data_check_reports_invalid_data_with_exit_status_1(tmp_path, capsys):
    out = tmp_path / "data"
    main(["synth", "--out", str(out), "--num-train", "3", "--num-dev", "1", "--num-test", "1", "--quiet"])
    skels = out / "train.skels"
    lines = skels.read_text().split("\n")
    lines[1] = lines[1] + " 1.0"
    skels.write_text("\n".join(lines))
    capsys.readouterr()
    assert main(["data", "check", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "train.skels:2:" in err and "not a multiple of 151" in err


def test_csv_splits_keep_every_row_unless_capped_in_both_modes(tmp_path, capsys):
    from fgdm.data.sources import open_corpus

    csv = tmp_path / "x.train.corpus.csv"
    rows = [f"s{i}|Signer01|REGEN NORD|im norden regen" for i in range(3)]
    csv.write_text("id|signer|annotation|translation\n" + "\n".join(rows) + "\n")
    assert main(["synth", "--out", str(tmp_path / "all"), "--glosses", str(csv), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["rendered_sequences"] == 3  # no silent default cap
    for lazy in ([], ["--lazy"]):
        out = tmp_path / f"cap{len(lazy)}"
        assert main(["synth", "--out", str(out), "--glosses", str(csv), "--num-train", "2", "--quiet", *lazy]) == 0
        capsys.readouterr()
        corpus = open_corpus(out, "train")
        assert len(corpus) == 2 and corpus[1].name == "s1"


def test_synth_renders_the_same_files_in_parallel(tmp_path, capsys):
    args = ["synth", "--num-train", "6", "--num-dev", "2", "--num-test", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    for split in ("train", "dev", "test"):
        for ext in ("skels", "gloss", "text", "files"):
            name = f"{split}.{ext}"
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "three"), "--workers", "0"])


def test_an_interrupted_or_replaced_data_set_never_reads_as_whole(tmp_path, monkeypatch, capsys):
    """synth (and data import) replace a data set whole: bad input or an interruption leaves the old one as it was,
    a marked directory (an interruption while the files move in) is refused, and --overwrite leaves no split of
    the data set it replaces."""
    import numpy as np

    from fgdm.data import pt
    from fgdm.data.pt import DataFormatError, read_split
    from fgdm.data.sources import INCOMPLETE, make_synth, open_corpus

    out = tmp_path / "d"
    make_synth(out, sizes={"train": 6, "dev": 2, "test": 2}, seed=0)
    old_dev, before = read_split(out, "dev"), sorted(p.name for p in out.iterdir())
    real, calls = pt.format_skels_line, []

    def interrupted(pose):  # Ctrl-C at the dev split's first pose, the new train split written
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(pose)

    monkeypatch.setattr(pt, "format_skels_line", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_synth(out, sizes={"train": 6, "dev": 2, "test": 2}, seed=1)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == before and read_split(out, "dev").glosses == old_dev.glosses
    bad = tmp_path / "bad.csv"  # an --overwrite whose input is refused keeps the old data set too
    bad.write_text("name|video|start|end|speaker|orth|translation\ns0|v|-1|-1|S1|REGEN NORD| \n")
    assert main(["synth", "--out", str(out), "--glosses", str(bad), "--overwrite", "--quiet"]) == 1
    assert "empty translation" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == before
    for ext in ("skels", "gloss", "text", "files"):  # a split the new data set will not have
        (out / f"extra.{ext}").write_text("x\n")
    assert main(["synth", "--out", str(out), "--num-train", "6", "--num-dev", "2", "--num-test", "2",
                 "--seed", "1", "--overwrite", "--quiet"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.glob("*.skels")) == ["dev.skels", "test.skels", "train.skels"]
    new_dev = read_split(out, "dev")
    assert new_dev.glosses != old_dev.glosses and not np.array_equal(new_dev.poses[0], old_dev.poses[0])
    (out / INCOMPLETE).write_text("")  # as an interruption while the new files move in leaves it
    with pytest.raises(DataFormatError, match="incomplete: an fgdm synth or data import writing it was interrupted"):
        open_corpus(out, "train")


def test_a_split_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """The four files are renamed into place together: a failure while writing leaves the old split as it was."""
    import numpy as np

    from fgdm.data import pt
    from fgdm.data.pt import PTSplit, read_split, write_split

    poses = [np.zeros((3, 50, 3), dtype=np.float32)] * 2
    write_split(tmp_path, "dev", PTSplit(poses, [["A"], ["B"]], ["a", "b"], ["s0", "s1"]))
    monkeypatch.setattr(pt, "format_skels_line", lambda pose: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # the poses are the last file written
        write_split(tmp_path, "dev", PTSplit(poses, [["C"], ["D"]], ["c", "d"], ["t0", "t1"]))
    assert read_split(tmp_path, "dev").glosses == [["A"], ["B"]] and not list(tmp_path.glob("*.tmp"))


def _csv(path, *rows):
    """A tiny PHOENIX-style CSV; ``rows``: (id, annotation) pairs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id|signer|annotation|translation\n" + "".join(f"{i}|Signer01|{a}|satz {i}\n" for i, a in rows))
    return path


def test_a_phoenix14t_annotation_folder_gives_each_split_its_own_csv(tmp_path, capsys):
    """PHOENIX14T's annotations/manual holds a complex annotation of train beside the plain one (and sorts first);
    macOS leaves ._ files beside copies. Each split gets its .split. file, and the summary names it."""
    from fgdm.data.csvs import csv_splits
    from fgdm.data.sources import open_corpus

    manual = tmp_path / "annotations" / "manual"
    plain = _csv(manual / "PHOENIX-2014-T.train.corpus.csv", ("a", "MORGEN REGEN"), ("b", "NORD SONNE"))
    _csv(manual / "PHOENIX-2014-T.train-complex-annotation.corpus.csv", ("a", "__ON__ MORGEN loc-NORD REGEN __OFF__"))
    dev = _csv(manual / "PHOENIX-2014-T.dev.corpus.csv", ("c", "REGEN"))
    test = _csv(manual / "PHOENIX-2014-T.test.corpus.csv", ("d", "SONNE"))
    (manual / "._PHOENIX-2014-T.train.corpus.csv").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    assert csv_splits(manual) == {"train": plain, "dev": dev, "test": test}
    assert main(["synth", "--out", str(tmp_path / "out"), "--lazy", "--glosses", str(manual), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["csv"]["train"] == str(plain)
    train = open_corpus(tmp_path / "out", "train")
    assert [train[i].glosses for i in range(len(train))] == [("MORGEN", "REGEN"), ("NORD", "SONNE")]
    assert "__ON__" not in (tmp_path / "out" / "src_vocab.txt").read_text()
    # test.csv beside extra_test_set.csv: the split's own file; a bare name is train
    other = tmp_path / "other"
    own = _csv(other / "test.csv", ("e", "REGEN"))
    _csv(other / "extra_test_set.csv", ("f", "SONNE"))
    assert csv_splits(other) == {"test": own}
    assert csv_splits(_csv(tmp_path / "constrained_dev.csv", ("g", "A"))) == {"dev": tmp_path / "constrained_dev.csv"}
    assert csv_splits(_csv(tmp_path / "glosses.csv", ("h", "A"))) == {"train": tmp_path / "glosses.csv"}


def test_a_csv_folder_that_leaves_a_split_in_doubt_is_refused_naming_the_files(tmp_path, capsys):
    from fgdm.data.csvs import csv_splits
    from fgdm.data.pt import DataFormatError

    two = tmp_path / "two"
    _csv(two / "phoenix_train.csv", ("a", "REGEN"))
    _csv(two / "my-train.csv", ("b", "SONNE"))
    with pytest.raises(DataFormatError, match=r"two: 2 CSVs could be the train split: my-train.csv, "
                       r"phoenix_train.csv; keep one of them here \(move or rename the others: the split as a "
                       r"dot-separated part of the name, as in train.csv, beats phoenix_train.csv, which beats "
                       r"trainset.csv\), since one CSV passed itself is read as one split alone"):  # fmt: skip
        csv_splits(two)
    assert (
        main(["data", "import", str(tmp_path), "--glosses", str(two), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    )
    assert "2 CSVs could be the train split" in capsys.readouterr().err  # data import reads CSVs the same way
    both = _csv(tmp_path / "both" / "train_dev.csv", ("c", "REGEN"))
    with pytest.raises(DataFormatError, match=r"train_dev.csv: the file name names the splits train and dev"):
        csv_splits(both.parent)
    with pytest.raises(DataFormatError, match=r"train_dev.csv: the file name names the splits train and dev"):
        csv_splits(both)
    with pytest.raises(DataFormatError, match=r"annotations: no CSV here names a split .* subfolder\(s\) manual/"):
        csv_splits(_csv(tmp_path / "annotations" / "manual" / "dev.csv", ("d", "A")).parent.parent)
    with pytest.raises(DataFormatError, match=r"no CSV here names a split .*\(it has glosses.csv\)"):
        csv_splits(_csv(tmp_path / "plain" / "glosses.csv", ("e", "A")).parent)


@pytest.mark.parametrize(
    "manifest, problem",
    [
        ('{"sedd": 3}', r"unknown key\(s\) sedd \(the keys are seed, sizes, csv\)"),
        ('{"seed": 1.9}', r"seed is 1\.9, not a whole number"),
        ('{"seed": true}', r"seed is True, not a whole number"),
        ('{"seed": "3"}', r"seed is '3', not a whole number"),
        ('{"sizes": {"train": 2.7}}', r"sizes are whole numbers, got \{'train': 2\.7\}"),
        ('{"sizes": {"train": true}}', r"sizes are whole numbers, got \{'train': True\}"),
        ('{"sizes": [3]}', r"sizes and csv map splits to values"),
        ('{"csv": {"train": 3}}', r"csv gives each split a file's path, got \{'train': 3\}"),
        ("[1, 2]", r"a JSON object, not \[1, 2\]"),
    ],
)
def test_a_manifest_key_or_value_read_other_than_written_is_refused_naming_the_file(tmp_path, manifest, problem):
    from fgdm.data.pt import DataFormatError
    from fgdm.data.sources import MANIFEST, SynthManifest

    (tmp_path / MANIFEST).write_text(manifest)
    with pytest.raises(DataFormatError, match=rf"synth\.json: invalid synthetic manifest: {problem}"):
        SynthManifest.load(tmp_path)


def test_a_manifest_is_read_back_exactly_as_saved(tmp_path):
    from fgdm.data.sources import SynthManifest

    saved = SynthManifest(seed=7, sizes={"train": 0, "dev": 3}, csv={"dev": "x.dev.csv"})
    saved.save(tmp_path)
    loaded = SynthManifest.load(tmp_path)
    assert loaded == saved and type(loaded.seed) is int and loaded.splits() == ["train", "dev"]


def test_a_csv_whose_name_holds_its_split_inside_a_word_is_still_that_split(tmp_path):
    """devset.csv, trainval.csv: a split named inside a word counts where no file names it more clearly."""
    from fgdm.data.csvs import csv_splits
    from fgdm.data.pt import DataFormatError

    for name in ("train.csv", "devset.csv", "testset.csv", "contest_notes.txt"):
        (tmp_path / name).write_text("id|signer|annotation|translation\n", encoding="utf-8")
    assert {s: p.name for s, p in csv_splits(tmp_path).items()} == {
        "train": "train.csv", "dev": "devset.csv", "test": "testset.csv"
    }  # fmt: skip
    assert list(csv_splits(tmp_path / "devset.csv")) == ["dev"]
    (tmp_path / "phoenix_dev.csv").write_text("id|signer|annotation|translation\n", encoding="utf-8")
    assert csv_splits(tmp_path)["dev"].name == "phoenix_dev.csv"  # delimited beats inside a word
    (tmp_path / "train_test.csv").write_text("id|signer|annotation|translation\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="names the splits train and test"):
        csv_splits(tmp_path / "train_test.csv")
