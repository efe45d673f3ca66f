"""Files made on other systems and by other tools: read as meant, or refused naming the file, the line and what to
do; never read as something else (UTF-16 text taken for text full of NULs, a Mac's ``._`` file taken for a split)."""

import gzip
import json
import shutil
import unicodedata

import numpy as np
import pytest

from fgdm.cli import main
from fgdm.config import ConfigError, load_config
from fgdm.data.pt import DataFormatError, available_splits, parse_skels_line, read_split, text_lines
from fgdm.data.vocab import Vocabulary


@pytest.fixture
def split(synth_dir, tmp_path):
    """A copy of the shared synthetic data set to spoil."""
    return shutil.copytree(synth_dir, tmp_path / "d")


def test_text_in_another_encoding_is_named_with_the_conversion(split):
    text = split / "dev.text"
    plain = text.read_text(encoding="utf-8")
    ascii_only = plain.encode("ascii", errors="replace").decode("ascii")
    for encoded, said, line in [
        (ascii_only.encode("utf-16-le"), "UTF-16LE text without a byte-order mark", None),  # NULs, which UTF-8 takes
        (ascii_only.encode("utf-16-be"), "UTF-16BE text without a byte-order mark", None),
        (plain.encode("utf-16"), "UTF-16 text (it starts with UTF-16's byte-order mark)", None),
        (gzip.compress(plain.encode()), "gzip-compressed, not text: decompress it", None),
        ("Gut\nGrüße\n".encode("latin-1"), "(byte 3 of the line, 0xFC: invalid start byte); 'ü' in Windows-1252", 2),
        ("It\x92s\n".encode("latin-1"), "(byte 3 of the line, 0x92: invalid start byte); '’' in Windows-1252", 1),
        ("Καλημέρα κόσμε.\nΤι κάνεις;\n".encode("utf-16-le"), "UTF-16LE text without a byte-order mark", None),
    ]:
        text.write_bytes(encoded)
        with pytest.raises(DataFormatError) as err:
            text_lines(text, tokens=False)
        assert said in str(err.value) and err.value.line == line, str(err.value)
        said = str(err.value)
        assert ("iconv -f" in said and "mv dev.text.utf8 dev.text" in said) or "gzip -dc dev.text >" in said
    text.write_bytes(b"\x00" * 64)  # zeroed by a crash: not UTF-16, whatever its NULs say
    with pytest.raises(DataFormatError, match=r"dev.text: NUL bytes, no text"):
        text_lines(text, tokens=False)
    text.write_bytes("Grüß".encode()[:-1])  # cut inside a character: the decoder's reason, no encoding guessed
    with pytest.raises(
        DataFormatError, match=r"dev.text:1: not UTF-8 text \(byte 5 of the line, 0xC3: unexpected end of data\)$"
    ):
        text_lines(text, tokens=False)


def test_a_control_character_in_free_text_is_refused_naming_the_line(split):
    """Free text was left unchecked: a NUL or an escape went into the back-translator's sentences."""
    text = split / "dev.text"
    lines = text.read_text().split("\n")
    lines[1] = lines[1][:4] + "\x00" + lines[1][4:]
    text.write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match=r"dev.text:2: a control character, U\+0000, at character 5: no text"):
        read_split(split, "dev")
    lines[1] = lines[1].replace("\x00", "\x0b")  # a word processor's soft line break
    text.write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match=r"U\+000B, at character 5: .*soft line break or page break\? replace"):
        read_split(split, "dev")
    lines[1] = lines[1].replace("\x0b", "\t")  # a tab is a space between words
    text.write_text("\n".join(lines))
    assert "\t" in read_split(split, "dev").texts[1]


def test_hidden_and_compressed_files_are_no_splits_and_compressed_ones_are_said(split):
    (split / "._dev.skels").write_bytes(b"\x00\x05\x16\x07Mac OS X")  # a Mac's metadata beside the data
    assert available_splits(split) == ["train", "dev", "test"]
    skels = split / "test.skels"
    (split / "test.skels.gz").write_bytes(gzip.compress(skels.read_bytes()))
    skels.unlink()
    with pytest.warns(UserWarning, match=r"test.skels.gz: gzip-compressed, so not read as a split: decompress it"):
        assert available_splits(split) == ["train", "dev"]
    with pytest.raises(DataFormatError, match=r"test.skels: file not found.*test.skels.gz is beside it: gzip"):
        read_split(split, "test")


def test_a_blank_last_line_in_every_file_of_a_split_is_named(split):
    for suffix in ("skels", "gloss", "text", "files"):
        with (split / f"dev.{suffix}").open("a") as f:
            f.write("\n")
    with pytest.raises(DataFormatError, match=r"the last line of each file of split 'dev' is blank .*: remove it$"):
        read_split(split, "dev")
    vocab = split / "src_vocab.txt"
    vocab.write_text(vocab.read_text() + "\n\n")
    with pytest.raises(DataFormatError, match=r"holds exactly one token, got '' \(blank lines at the file's end"):
        Vocabulary.from_file(vocab)


def test_skels_written_by_a_spreadsheet_are_named_as_such():
    frame = [f"{v:.3f}" for v in np.linspace(-0.5, 0.5, 150)] + ["0.0"]
    with pytest.raises(DataFormatError, match=r"1 value is not .* 0 whole frames and 1 value left over; the values "
                       r"are separated by ',': a .skels separates them by spaces$"):  # fmt: skip
        parse_skels_line(",".join(frame), "a.skels", 1)
    german = [v.replace(".", ",") for v in frame]  # a German spreadsheet: decimal commas, ';' between the values
    with pytest.raises(DataFormatError, match=r"separated by ';' with decimal commas: .* and writes decimal points$"):
        parse_skels_line(";".join(german), "a.skels", 1)
    with pytest.raises(DataFormatError, match=r"value 1 \('-0,500', frame 1\) is not a number: a decimal comma\?"):
        parse_skels_line(" ".join(german), "a.skels", 1)
    with pytest.raises(DataFormatError, match=r"value 1 \('-0.500,', frame 1\) is not a number: values separated by"):
        parse_skels_line(", ".join(frame), "a.skels", 1)


def test_a_config_in_another_encoding_names_its_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes("model:\n  width: 8  # Grüße\n".encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"c.yaml:2: not UTF-8 text \(byte 17 of the line, 0xFC: invalid start byte\); 'ü' in"
    ):
        load_config(cfg)
    cfg.write_bytes("model:\n  width: 8\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"c.yaml: UTF-16 text"):
        load_config(cfg)


def test_a_csv_header_in_other_case_reads_and_a_quoted_one_is_named(tmp_path):
    from fgdm.data.csvs import read_phoenix_csv

    csv = tmp_path / "x.csv"
    csv.write_text("Name|Speaker|Orth|Translation\na|s|A B|ein Satz\n")
    assert [(r.name, r.glosses) for r in read_phoenix_csv(csv)] == [("a", ("A", "B"))]
    csv.write_text('"id"|"signer"|"annotation"|"translation"\n"a"|"s"|"A B"|"ein Satz"\n')
    with pytest.raises(DataFormatError, match=r"x.csv:1: .*its fields are in double quotes .*: remove them"):
        read_phoenix_csv(csv)


def test_names_saved_decomposed_by_a_mac_match_the_references(tmp_path, monkeypatch, capsys):
    """A Mac writes 'ü' in file names as 'u' + a combining mark; fgdm reads names in .files composed."""
    from fgdm.data.hypotheses import read_hypotheses
    from fgdm.data.synth.corpus import SynthCorpus
    from test_import import write_holistic

    corpus = SynthCorpus(2, "test", seed=4)
    composed = ["test/Grüße-0", "test/Grüße-1"]
    hyp = tmp_path / "hyp" / "test"
    hyp.mkdir(parents=True)
    for name, sample in zip(composed, corpus, strict=True):
        np.save(hyp / f"{unicodedata.normalize('NFD', name.split('/')[1])}.npy", sample.pose)
    got = read_hypotheses(tmp_path / "hyp", "test", composed, 25.0, lengths=[len(s.pose) for s in corpus])
    assert [len(p) for p in got.poses] == [len(s.pose) for s in corpus]
    # data import: decomposed .pose names (in any case of the suffix) for composed CSV ids; a Mac's ._ file is none
    videos = tmp_path / "videos"
    rows = []
    for i, sample in enumerate(corpus):
        write_holistic(videos / unicodedata.normalize("NFD", f"Grüße{i}.POSE"), sample.pose)
        rows.append(f"Grüße{i}|s|{' '.join(sample.glosses)}|{sample.text}")
    (videos / "._Grüße0.pose").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    shutil.copytree(videos, videos / ".Trashes")  # hidden folders hold no data either (their copies would be seconds)
    (tmp_path / "test.csv").write_text("id|signer|annotation|translation\n" + "\n".join(rows) + "\n")
    assert main(["data", "import", str(videos), "--glosses", str(tmp_path / "test.csv"), "--out",
                 str(tmp_path / "pt-Grüße"), "--quiet"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    report = json.loads(said)
    assert report["splits"]["test"]["sequences"] == 2 and report["unused_pose_files"] == []
    assert "pt-Grüße" in said  # the command's JSON keeps names as they are written (not pt-Gr\\u00fc\\u00dfe)


def test_a_home_in_a_path_the_shell_left_alone_is_the_home(synth_dir, tmp_path, monkeypatch, capsys):
    """--out=~/x.gif reaches fgdm unexpanded; it wrote a folder named '~' in the current directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(synth_dir), "--split", "dev", "--out=~/x.gif"]) == 0
    assert (tmp_path / "home" / "x.gif").is_file() and not (tmp_path / "~").exists()


def test_score_names_blank_lines_at_a_files_end(tmp_path):
    from fgdm.evaluation.scores import score_text_files

    (tmp_path / "h.txt").write_text("ein Satz\nnoch einer\n\n")
    (tmp_path / "r.txt").write_text("ein Satz\nnoch einer\n")
    with pytest.raises(ValueError, match=r"h.txt has 3 lines but .*r.txt has 2; the last 1 line\(s\) of .*h.txt are"):
        score_text_files(tmp_path / "h.txt", tmp_path / "r.txt")
    (tmp_path / "h.txt").write_text("ein Satz\n")
    with pytest.raises(ValueError, match=r"h.txt has 1 line but .*r.txt has 2$"):
        score_text_files(tmp_path / "h.txt", tmp_path / "r.txt")


def test_a_result_goes_out_escaped_where_the_output_cannot_show_its_names(tmp_path, monkeypatch):
    """The commands' JSON keeps names as written; a terminal or pipe in ASCII (PYTHONIOENCODING=ascii) gets them
    escaped rather than an error after the work was done."""
    import io
    import sys

    from fgdm.cli.commands import print_json

    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", out)
    print_json({"out": "Grüße"})
    out.flush()
    assert json.loads(out.buffer.getvalue()) == {"out": "Grüße"} and b"\\u00fc" in out.buffer.getvalue()
    out.reconfigure(errors="backslashreplace")  # as fgdm's main sets it: still JSON's escapes, not Python's \xfc
    print_json({"out": "Grüße"})
    out.flush()
    assert json.loads(out.buffer.getvalue().split(b"}", 1)[1]) == {"out": "Grüße"}


def test_a_file_written_under_an_ascii_output_is_said_escaped_not_an_error(tmp_path):
    """PYTHONIOENCODING=ascii: the command's line naming the file it wrote came after the work, as an error (exit 1,
    and the file there)."""
    import os
    import subprocess
    import sys

    np.save(tmp_path / "a.npy", np.zeros((2, 50, 3), np.float32))
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "fgdm.cli", "render", "a.npy", "--out", "grüße.gif"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, encoding="ascii", errors="replace")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote gr\\xfc\\xdfe.gif" in done.stdout and (tmp_path / "grüße.gif").is_file()
