import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from fgdm.data.pt import DataFormatError, PTSplit, read_split, write_split


def test_round_trip_reproduces_files_byte_for_byte(synth_dir: Path, tmp_path: Path):
    data = read_split(synth_dir, "dev")
    write_split(tmp_path, "dev", data)
    for suffix in ("skels", "gloss", "text", "files"):
        assert (tmp_path / f"dev.{suffix}").read_bytes() == (synth_dir / f"dev.{suffix}").read_bytes()


def test_reader_shapes_and_skip_frames(synth_dir: Path):
    full = read_split(synth_dir, "dev")
    half = read_split(synth_dir, "dev", skip_frames=2)
    assert all(p.shape[1:] == (50, 3) and p.dtype == np.float32 for p in full.poses)
    for a, b in zip(full.poses, half.poses, strict=True):
        np.testing.assert_array_equal(a[::2], b)


def _set_token(line: str, i: int, value: str) -> str:
    tokens = line.split()
    tokens[i] = value
    return " ".join(tokens)


def _corrupt(src: Path, dst: Path, suffix: str, line: int, fn) -> None:
    shutil.copytree(src, dst)
    path = dst / f"dev.{suffix}"
    lines = path.read_text().split("\n")
    lines[line - 1] = fn(lines[line - 1])
    path.write_text("\n".join(lines))


@pytest.mark.parametrize(
    ("suffix", "fn", "message"),
    [
        ("skels", lambda s: s + " 0.5", "not a multiple of 151"),
        ("skels", lambda s: _set_token(s, 10, "abc"), "value 11 ('abc', frame 1) is not a number"),
        # float() reads these as 10, 12 and 1: a digit separator, Arabic-Indic and full-width digits
        ("skels", lambda s: _set_token(s, 160, "1_0"), "value 161 ('1_0', frame 2) is not a number"),
        ("skels", lambda s: _set_token(s, 3, "\u0661\u0662"), "value 4 ('\u0661\u0662', frame 1) is not a number"),
        ("skels", lambda s: _set_token(s, 3, "\uff11"), "value 4 ('\uff11', frame 1) is not a number"),
        ("skels", lambda s: _set_token(s, 160, "inf"), "frame 2, joint 3 (right_elbow, 0-based) coordinate x is inf"),
        ("skels", lambda s: " ".join(s.split()[:151] * 2), "counter"),
        ("skels", lambda s: "", "empty line"),
        ("gloss", lambda s: "   ", "empty gloss line"),
    ],
)
def test_malformed_lines_name_file_line_and_problem(synth_dir, tmp_path, suffix, fn, message):
    _corrupt(synth_dir, tmp_path / "d", suffix, 3, fn)
    with pytest.raises(DataFormatError) as err:
        read_split(tmp_path / "d", "dev")
    assert err.value.path.name == f"dev.{suffix}" and err.value.line == 3
    assert message in str(err.value) and f"dev.{suffix}:3:" in str(err.value)


def test_differing_line_counts_and_missing_files(synth_dir, tmp_path):
    shutil.copytree(synth_dir, tmp_path / "d")
    text = tmp_path / "d" / "dev.text"
    text.write_text("\n".join(text.read_text().split("\n")[:-2]) + "\n")
    with pytest.raises(DataFormatError, match=r"differ in line count: .*dev.text 5"):
        read_split(tmp_path / "d", "dev")
    (tmp_path / "d" / "dev.files").unlink()
    with pytest.raises(DataFormatError, match=r"dev.files: file not found"):
        read_split(tmp_path / "d", "dev")


def test_a_byte_order_mark_is_not_part_of_the_first_token(synth_dir, tmp_path):
    for ext in ("skels", "gloss", "text", "files"):
        shutil.copy(synth_dir / f"dev.{ext}", tmp_path / f"dev.{ext}")
    for ext in ("gloss", "text"):
        path = tmp_path / f"dev.{ext}"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Windows editors save UTF-8
    plain, marked = read_split(synth_dir, "dev"), read_split(tmp_path, "dev")
    assert marked.glosses == plain.glosses and marked.texts == plain.texts
    assert not marked.glosses[0][0].startswith("\ufeff")


def test_absurd_magnitudes_and_bad_bytes_are_refused_with_file_and_line(synth_dir, tmp_path):
    for ext in ("skels", "gloss", "text", "files"):
        shutil.copy(synth_dir / f"dev.{ext}", tmp_path / f"dev.{ext}")
    skels = tmp_path / "dev.skels"
    lines = skels.read_text().split("\n")
    lines[2] = "5000.0 " + lines[2].split(" ", 1)[1]
    skels.write_text("\n".join(lines))
    beyond = r"x is 5000: beyond ±1000, not in the PT convention \(the neck at the origin, the shoulders about 0.334"
    with pytest.raises(DataFormatError, match=rf"dev.skels:3: frame 1, joint 0 \(head, 0-based\) coordinate {beyond}"):
        read_split(tmp_path, "dev")
    (tmp_path / "dev.gloss").write_bytes(b"REGEN\nNORD \xff\n")
    with pytest.raises(DataFormatError, match=r"dev.gloss:2: not UTF-8 text"):
        read_split(tmp_path, "dev")


def test_a_vocabulary_token_in_the_glosses_or_a_name_twice_is_refused_with_its_line(tmp_path):
    poses = [np.zeros((2, 50, 3), dtype=np.float32)] * 3
    write_split(tmp_path, "dev", PTSplit(poses=poses, glosses=[["A"], ["<pad>", "B"], ["C"]], texts=["a", "b", "c"],
                                         names=["s0", "s1", "s2"]))  # fmt: skip
    with pytest.raises(DataFormatError, match=r"dev.gloss:2: <pad> is a vocabulary's own token, not a gloss"):
        read_split(tmp_path, "dev")
    write_split(tmp_path, "dev", PTSplit(poses=poses, glosses=[["A"], ["B"], ["C"]], texts=["a", "b", "c"],
                                         names=["s0", "s1", "s0"]))  # fmt: skip
    with pytest.raises(DataFormatError, match=r"dev.files:3: the name 's0' again \(first on line 1\)"):
        read_split(tmp_path, "dev")


def test_a_missing_split_names_the_splits_there(synth_dir, tmp_path):
    from fgdm.data.sources import open_corpus

    shutil.copytree(synth_dir, tmp_path / "d")
    for ext in ("skels", "gloss", "text", "files"):
        (tmp_path / "d" / f"test.{ext}").unlink()
    with pytest.raises(DataFormatError, match=r"no test split here \(it has train, dev\): --split chooses one"):
        open_corpus(tmp_path / "d", "test")
    with pytest.raises(DataFormatError, match=r"train.skels: a file, not a data directory: give the directory that"):
        open_corpus(tmp_path / "d" / "train.skels", "train")


def test_training_without_a_dev_split_says_it_needs_one(synth_dir, tmp_path, capsys):
    """Its advice was '--split chooses one', which fgdm train does not take."""
    from fgdm.cli import main

    shutil.copytree(synth_dir, tmp_path / "d")
    for ext in ("skels", "gloss", "text", "files"):
        (tmp_path / "d" / f"dev.{ext}").unlink()
    argv = ["train", "configs/tiny.yaml", "--set", f"data.path={tmp_path / 'd'}", "--set",
            f"training.output_dir={tmp_path / 'run'}", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no dev split here (it has train, test): training reads train.* and validates on dev.*" in err, err
    assert not (tmp_path / "run").exists()


def test_data_check_says_when_poses_are_2d(synth_dir, tmp_path):
    """dgs-pt holds z = 0 everywhere: a model trained on it still outputs z, which counts in DTW-MJE."""
    from fgdm.data.pt import PTSplit, write_split
    from fgdm.data.stats import check_directory

    assert check_directory(synth_dir)["depth"] is True
    for split in ("train", "dev"):
        data = read_split(synth_dir, split)
        flat = [np.concatenate([p[..., :2], np.zeros_like(p[..., 2:])], axis=-1) for p in data.poses]
        write_split(tmp_path / "flat", split, PTSplit(flat, data.glosses, data.texts, data.names))
    with pytest.warns(UserWarning, match=r"in every split, z is 0 in every frame \(2D poses\)"):
        assert check_directory(tmp_path / "flat")["depth"] is False
    # training on them without diffusion.standardise says so too (data check alone did)
    from fgdm.cli import main

    argv = ["train", "configs/tiny.yaml", "--set", f"data.path={tmp_path / 'flat'}", "--set", "training.max_steps=1",
            "--set", "training.val_every=5", "--quiet", "--set"]  # fmt: skip
    with pytest.warns(
        UserWarning, match=r"flat \(train\): z is 0 in every frame \(2D poses\); a model trained on them"
    ):
        assert main([*argv, f"training.output_dir={tmp_path / 'a'}"]) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv, f"training.output_dir={tmp_path / 'b'}", "--set", "diffusion.standardise=true"]) == 0
    assert not [w for w in caught if "2D poses" in str(w.message)]


def test_poses_out_of_the_pt_convention_are_named_by_data_check_training_and_render(synth_dir, tmp_path):
    """Pixel coordinates passed data check without a word and rendered as blank GIFs."""
    from fgdm.cli import main
    from fgdm.data.pt import PTSplit, write_split
    from fgdm.data.stats import check_directory

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_directory(synth_dir)  # the convention: no warning
    for split in ("train", "dev"):
        data = read_split(synth_dir, split)
        write_split(tmp_path / "px", split, PTSplit([p * 300 + 200 for p in data.poses], data.glosses, data.texts,
                                                    data.names))  # fmt: skip
    problem = r"not in the PT convention \(the neck at the origin, the shoulders about 0.334 apart, y down\), e.g. "
    with pytest.warns(UserWarning, match=rf"px: 24 of the train split's 24 sequences are {problem}train/synth-0000"):
        check_directory(tmp_path / "px")
    argv = ["train", "configs/tiny.yaml", "--set", f"data.path={tmp_path / 'px'}", "--set", "training.max_steps=1",
            "--set", "training.val_every=5", "--set", f"training.output_dir={tmp_path / 'run'}", "--quiet"]  # fmt: skip
    with pytest.warns(UserWarning, match=rf"px \(train\): 24 of 24 sequences read are {problem}"):
        main(argv)
    with pytest.warns(UserWarning, match=r"a.gif: sequence 0 lies mostly outside the picture \(x 1\d\d"):
        assert main(["render", str(tmp_path / "px"), "--split", "dev", "--out", str(tmp_path / "a.gif")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["render", str(synth_dir), "--split", "dev", "--out", str(tmp_path / "b.gif")]) == 0


def _copy_split(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for ext in ("skels", "gloss", "text", "files"):
        shutil.copy(src / f"dev.{ext}", dst / f"dev.{ext}")
    return dst


def test_text_files_name_the_true_line_of_bad_bytes_and_refuse_invisible_marks(synth_dir, tmp_path):
    from fgdm.data.pt import text_lines

    bom = b"\xef\xbb\xbf"
    (tmp_path / "a.gloss").write_bytes(bom + b"REGEN\nGL\xdcCK\n")  # latin-1 Ü after a byte-order mark
    with pytest.raises(DataFormatError, match=r"a.gloss:2: not UTF-8 text \(byte 3 of the line"):
        text_lines(tmp_path / "a.gloss")
    (tmp_path / "b.gloss").write_bytes(bom + b"A\n" + bom + b"B\n")  # two files joined by cat
    with pytest.raises(DataFormatError, match=r"b.gloss:2: a byte-order mark \(U\+FEFF"):
        text_lines(tmp_path / "b.gloss")
    (tmp_path / "c.gloss").write_bytes(b"A\rB\rC\r")  # CR-only line ends
    with pytest.raises(DataFormatError, match=r"c.gloss:1: a carriage return \(CR\) inside the line"):
        text_lines(tmp_path / "c.gloss")
    (tmp_path / "d.gloss").write_bytes("GLU\u0308CK\r\n".encode())  # decomposed Ü, CRLF
    assert text_lines(tmp_path / "d.gloss") == ["GL\u00dcCK"]


def test_an_empty_translation_is_refused_and_names_are_taken_without_surrounding_spaces(synth_dir, tmp_path):
    d = _copy_split(synth_dir, tmp_path / "d")
    text = (d / "dev.text").read_text().split("\n")
    (d / "dev.text").write_text("\n".join([text[0], "  ", *text[2:]]))
    with pytest.raises(DataFormatError, match=r"dev.text:2: empty translation line"):
        read_split(d, "dev")
    d = _copy_split(synth_dir, tmp_path / "e")
    names = (d / "dev.files").read_text().split("\n")
    (d / "dev.files").write_text("\n".join([names[0] + " ", *names[1:]]))
    assert read_split(d, "dev").names == read_split(synth_dir, "dev").names
    (d / "dev.files").write_text("\n".join([names[0], names[0] + " ", *names[2:]]))
    with pytest.raises(DataFormatError, match=r"dev.files:2: the name .* again \(first on line 1\)"):
        read_split(d, "dev")


def test_a_csv_of_reserved_tokens_or_empty_translations_is_refused_with_its_line(tmp_path):
    from fgdm.data.csvs import read_phoenix_csv

    head = "name|video|start|end|speaker|orth|translation\n"
    (tmp_path / "a.csv").write_text(head + "s0|v|-1|-1|S1|REGEN NORD|es regnet\ns1|v|-1|-1|S1|DRUCK <unk> TIEF|tief\n")
    with pytest.raises(DataFormatError, match=r"a.csv:3: <unk> is a vocabulary's own token"):
        read_phoenix_csv(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text(head + "s0|v|-1|-1|S1|REGEN NORD| \n")
    with pytest.raises(DataFormatError, match=r"b.csv:2: empty translation"):
        read_phoenix_csv(tmp_path / "b.csv")


def test_a_gloss_typed_decomposed_finds_its_composed_entry():
    from fgdm.data.vocab import SPECIALS, Vocabulary

    vocab = Vocabulary([*SPECIALS, "GL\u00dcCK"])
    assert "GLU\u0308CK" in vocab and vocab.encode(["GLU\u0308CK", "X"]) == [4, vocab.unk_index]


def test_a_frame_rate_file_saved_with_a_byte_order_mark_and_crlf_is_read(tmp_path):
    from fgdm.data.io import read_frame_rate

    (tmp_path / "dev.fps").write_bytes(b"\xef\xbb\xbf12.5\r\n")
    assert read_frame_rate(tmp_path, "dev") == 12.5


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_waits_for_the_renames_that_belong_together(sig):
    """Held off until the block ends, also with other threads running (the system may deliver to any of them),
    then raised; the handlers before it are back."""
    import os
    import signal
    import threading
    import time

    from fgdm.runtime import signals_held

    number = getattr(signal, sig)

    def stop(*args):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    # Python's own SIGINT handler, also where the test runs with SIGINT ignored (a shell's background job)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
    order = []
    try:
        with signals_held():
            os.kill(os.getpid(), number)
            time.sleep(0.1)
            order.append("renamed")
    except KeyboardInterrupt:
        order.append("stopped")
    finally:
        handler = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    assert order == ["renamed", "stopped"] and handler is stop  # the handler before the block is back


@pytest.mark.parametrize(
    ("char", "kind"),
    [
        ("\u200b", "an invisible or control character, U+200B (ZERO WIDTH SPACE)"),
        ("\u200d", "an invisible or control character, U+200D (ZERO WIDTH JOINER)"),
        ("\u00ad", "an invisible or control character, U+00AD (SOFT HYPHEN)"),
        ("\u200e", "an invisible or control character, U+200E (LEFT-TO-RIGHT MARK)"),
        ("\ufe0f", "an invisible or control character, U+FE0F (VARIATION SELECTOR-16)"),
        ("\u3164", "an invisible or control character, U+3164 (HANGUL FILLER)"),
        ("\x00", "an invisible or control character, U+0000 (a control character)"),
        ("\x0b", "an invisible or control character, U+000B (a control character)"),
        ("\x85", "an invisible or control character, U+0085 (a control character)"),
        ("\u00a0", "an unusual space, U+00A0 (NO-BREAK SPACE)"),
        ("\u2009", "an unusual space, U+2009 (THIN SPACE)"),
        ("\u3000", "an unusual space, U+3000 (IDEOGRAPHIC SPACE)"),
        ("\u2028", "an unusual space, U+2028 (LINE SEPARATOR)"),
    ],
)
def test_a_character_that_splits_or_makes_a_gloss_unseen_is_refused_with_its_line_and_code_point(
    synth_dir, tmp_path, char, kind
):
    """MILD+ZERO WIDTH SPACE would be a gloss of its own, MILD+NO-BREAK SPACE+REGEN two glosses: every file of
    glosses or names (.gloss, .files, a vocabulary, a CSV's ids and annotations) refuses such characters, naming
    where."""
    from fgdm.data.csvs import read_phoenix_csv

    d = _copy_split(synth_dir, tmp_path / "d")
    glosses = (d / "dev.gloss").read_text(encoding="utf-8").split("\n")
    glosses[1] = f"MILD{char}REGEN NORD"
    (d / "dev.gloss").write_text("\n".join(glosses), encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"dev.gloss:2: {re.escape(kind)}, at character 5: "):
        read_split(d, "dev")
    csv = tmp_path / "x.train.corpus.csv"
    csv.write_text(f"id|signer|annotation|translation\na|S1|REGEN|es regnet\nb|S1|MILD NORD{char}|mild\n")
    if char in "\x00\x0b":  # a control character: refused in any column of the line, before its fields are read
        code = re.escape(f"U+{ord(char):04X}")
        with pytest.raises(DataFormatError, match=rf"corpus.csv:3: a control character, {code}, at character 15: "):
            read_phoenix_csv(csv)
        return
    with pytest.raises(DataFormatError, match=rf"corpus.csv:3: annotation: {re.escape(kind)}, at character 10"):
        read_phoenix_csv(csv)


def test_free_text_keeps_a_no_break_space_which_its_tokeniser_reads_as_a_space(synth_dir, tmp_path):
    """Translations are tokenised into words apart from the glosses (a no-break space is a space there): .text
    files, a CSV's translations and other columns, and fgdm score's files are read with it."""
    from fgdm.data.csvs import read_phoenix_csv
    from fgdm.evaluation.scores import score_text_files

    d = _copy_split(synth_dir, tmp_path / "d")
    texts = (d / "dev.text").read_text(encoding="utf-8").split("\n")
    texts[1] = "am tag 20\u00a0grad"
    (d / "dev.text").write_text("\n".join(texts), encoding="utf-8")
    assert read_split(d, "dev").texts[1] == "am tag 20\u00a0grad"
    csv = tmp_path / "x.train.corpus.csv"
    csv.write_text("id|video|signer|annotation|translation\na|v\u00a01|S1|REGEN|20\u00a0grad\n", encoding="utf-8")
    assert read_phoenix_csv(csv)[0].text == "20\u00a0grad"
    (tmp_path / "h.txt").write_text("am tag 20\u00a0grad\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("am tag 20 grad\n", encoding="utf-8")
    assert score_text_files(tmp_path / "h.txt", tmp_path / "r.txt")["bleu4"] == 100.0


def test_tabs_umlauts_and_windows_line_ends_are_read_as_they_show(synth_dir, tmp_path):
    from fgdm.data.pt import text_lines

    (tmp_path / "a.gloss").write_bytes("GL\u00dcCK\tREGEN\r\nSCH\u00d6N \u00dcBER\r\n".encode())
    assert [line.split() for line in text_lines(tmp_path / "a.gloss")] == [
        ["GL\u00dcCK", "REGEN"],
        ["SCH\u00d6N", "\u00dcBER"],
    ]


def test_a_coordinate_names_its_joint_which_counts_from_0():
    """'frame 4, joint 15 coordinate z is nan': frames counted from 1, joints from 0, and nothing said so."""
    from fgdm.data.pt import parse_skels_line

    frames = np.zeros((5, 151))
    frames[:, -1] = np.arange(5) / 5
    frames[3, 15 * 3 + 2] = np.nan
    line = " ".join(f"{v:g}" for v in frames.ravel())
    with pytest.raises(DataFormatError, match=r"a.skels:7: frame 4, joint 15 \(left_index_3, 0-based\) coordinate z "
                       r"is nan \(not finite\)$"):  # fmt: skip
        parse_skels_line(line, Path("a.skels"), 7)
    frames = np.zeros((1, 7))
    frames[0, 4] = 2000  # another skeleton: no name to give
    with pytest.raises(DataFormatError, match=r"frame 1, joint 1 \(0-based\) coordinate y is 2000: beyond ±1000"):
        parse_skels_line(" ".join(f"{v:g}" for v in frames.ravel()), Path("a.skels"), 1, num_joints=2)


def test_frames_without_the_counter_column_are_named_as_such(synth_dir, tmp_path):
    """300 values are no whole number of 151-value frames, but two frames of joints without PT's counter."""
    drop_counters = lambda s: " ".join(t for i, t in enumerate(s.split()) if i % 151 != 150)  # noqa: E731
    _corrupt(synth_dir, tmp_path / "d", "skels", 2, drop_counters)
    with pytest.raises(DataFormatError, match=r"dev.skels:2: \d+ values are not a multiple of 151 .*left over; \d+ "
                       r"frames of 150 values would fit: written without the counter column \(PT's last value of each "
                       r"frame, its progress 0…1\)\?$"):  # fmt: skip
        read_split(tmp_path / "d", "dev")
    _corrupt(synth_dir, tmp_path / "e", "skels", 2, lambda s: s + " 0.5")  # not a multiple of 150 either
    with pytest.raises(DataFormatError, match=r"1 value left over$"):
        read_split(tmp_path / "e", "dev")


def test_a_blank_last_line_is_named_when_line_counts_differ(synth_dir, tmp_path):
    """An editor's extra newline at the end made 'differ in line count' with no hint of which line is extra."""
    d = _copy_split(synth_dir, tmp_path / "d")
    with (d / "dev.gloss").open("a") as f:
        f.write("\n")
    with pytest.raises(DataFormatError, match=r"dev.files 6; the last line of dev.gloss is blank: remove it$"):
        read_split(d, "dev")
    with (d / "dev.text").open("a") as f:
        f.write("  \r\n")
    with pytest.raises(DataFormatError, match=r"the last line of dev.gloss and dev.text is blank: remove it$"):
        read_split(d, "dev")
    with (d / "dev.text").open("a") as f:
        f.write("\n")  # two lines more than .skels: not one stray newline
    with pytest.raises(DataFormatError, match=r"differ in line count: [^;]*$"):
        read_split(d, "dev")


def test_a_split_given_fields_of_the_wrong_type_names_the_field():
    """PTSplit(glosses, poses, …) was taken and failed later inside numpy."""
    poses, glosses, texts, names = [np.zeros((2, 50, 3), dtype=np.float32)], [["A", "B"]], ["a b"], ["s0"]
    PTSplit(poses, glosses, texts, names)
    PTSplit([], [], [], [])
    fields = r" \(the fields, in order: poses, glosses, texts, names\)$"
    for args, problem in (
        ((glosses, poses, texts, names), r"PTSplit.poses is a list of \(S, J, 3\) arrays, but entry 0 is a list"),
        (([np.zeros((2, 150))], glosses, texts, names), r"poses .* entry 0 is an array of shape \(2, 150\)"),
        ((poses, ["A B"], texts, names), r"glosses is a list of lists of glosses \(str\), but entry 0 is a str"),
        ((poses, [["A", 1]], texts, names), r"glosses .* entry 0 is a list holding an int"),
        ((poses, glosses, "a b", names), r"PTSplit.texts is a list of str, but it is a str"),
        ((poses, glosses, texts, [None]), r"PTSplit.names is a list of str, but entry 0 is None"),
    ):
        with pytest.raises(ValueError, match=problem + fields):
            PTSplit(*args)
