import pytest

from fgdm.data.vocab import SPECIALS, UnknownTokenWarning, Vocabulary


def test_built_from_corpus_by_frequency_then_alphabet():
    v = Vocabulary.from_corpus([["B", "A", "C"], ["C", "B"], ["C"]])
    assert v.itos == ["<unk>", "<pad>", "<s>", "</s>", "C", "B", "A"]
    assert v.encode(["A", "C"]) == [6, 4]


def test_unknown_glosses_map_to_unk_with_a_counted_warning():
    v = Vocabulary.from_corpus([["A", "B"]])
    with pytest.warns(UnknownTokenWarning, match=r"3 of 4 glosses \(2 types\).*X \(2\)"):
        ids = v.encode_all([["A", "X"], ["X", "Y"]])
    assert ids == [[v.stoi["A"], 0], [0, 0]]
    with pytest.warns(
        UnknownTokenWarning, match=r"^none of the 2 glosses \(1 type\) is in the vocabulary; all map to <unk>: X \(2\)$"
    ):  # another language's
        v.encode_all([["X"], ["X"]])


def test_glosses_typed_by_hand_are_offered_the_closest_known_ones():
    v = Vocabulary.from_corpus([["MORGEN", "NORD", "REGEN", "SONNE"]])
    with pytest.warns(UnknownTokenWarning, match=r"2 of 4 glosses \(2 types\) .*: NORDD \(1\), SONE \(1\); "
                      r"did you mean NORD for NORDD, SONNE for SONE\?$"):  # fmt: skip
        assert v.encode_all([["MORGEN", "NORDD", "SONE", "REGEN"]], suggest=True)[0][1:3] == [0, 0]
    with pytest.warns(UnknownTokenWarning, match=r": NORDD \(1\), WIND \(1\)$"):  # nothing close to WIND
        v.encode_all([["NORDD", "WIND"]])  # and corpora are not offered any
    with pytest.warns(UnknownTokenWarning, match=r"1 of 2 glosses is not .*: WIND \(1\)$"):
        v.encode_all([["WIND", "NORD"]], suggest=True)
    with pytest.warns(UnknownTokenWarning, match=r": nordd \(1\); did you mean NORD for nordd\?$"):  # case too
        v.encode_all([["MORGEN", "nordd"]], suggest=True)
    with pytest.raises(ValueError, match=r"none of 'NORDD SONE' is in the vocabulary \(4 glosses\) \(did you mean "
                       r"NORD for NORDD, SONNE for SONE\?\)$"):  # fmt: skip
        v.require_known(["NORDD", "SONE"])  # refused: no known gloss, so no sentence to warn about


def test_a_tie_suggests_the_known_gloss_listed_first_the_more_frequent():
    """ICH is as close to ICH1 as to ICH2: difflib offered ICH2, the last in string order, though ICH1 is the
    more frequent; a vocabulary built from a corpus lists it first."""
    v = Vocabulary.from_corpus([["ICH2", "ICH1", "ICH3"], ["ICH1"]])
    assert v.itos[len(SPECIALS)] == "ICH1"
    with pytest.raises(ValueError, match=r"\(did you mean ICH1 for ICH, ICH1 for ich\?\)$"):
        v.require_known(["ICH", "ich"])
    v = Vocabulary([*SPECIALS, "ICH3", "ICH2", "ICH1", "DU"])  # a vocabulary file's order, kept
    with pytest.warns(UnknownTokenWarning, match=r"did you mean ICH3 for ICH\?$"):
        v.encode_all([["ICH", "DU"]], suggest=True)
    with pytest.warns(UnknownTokenWarning, match=r"did you mean ICH2 for ICH22\?$"):  # a closer one still wins
        v.encode_all([["ICH22", "DU"]], suggest=True)


def test_read_and_write_src_vocab(tmp_path):
    v = Vocabulary.from_corpus([["REGEN", "SONNE"]])
    v.save(tmp_path / "src_vocab.txt")
    assert Vocabulary.from_file(tmp_path / "src_vocab.txt") == v
    (tmp_path / "bad.txt").write_text("<pad>\n<unk>\n<s>\n</s>\nA\n")
    with pytest.raises(ValueError, match="starts with <unk> <pad>"):
        Vocabulary.from_file(tmp_path / "bad.txt")
    (tmp_path / "bad2.txt").write_text("<unk>\n<pad>\n<s>\n</s>\nA B\n")
    with pytest.raises(ValueError, match=r"bad2.txt:5"):
        Vocabulary.from_file(tmp_path / "bad2.txt")


def test_decode_stops_at_eos():
    v = Vocabulary.from_corpus([["a", "b"]])
    assert v.decode([2, v.stoi["a"], 1, v.stoi["b"], 3, v.stoi["a"]]) == ["a", "b"]


def test_a_vocabulary_file_errs_with_its_line_and_takes_a_byte_order_mark(tmp_path):
    from fgdm.data.pt import DataFormatError

    path = tmp_path / "v.txt"
    path.write_bytes(b"\xef\xbb\xbf<unk>\r\n<pad>\r\n<s>\r\n</s>\r\nREGEN\r\n")  # as a Windows editor saves it
    assert Vocabulary.from_file(path).itos == ["<unk>", "<pad>", "<s>", "</s>", "REGEN"]
    path.write_text("<unk>\n<pad>\n<s>\n</s>\nREGEN\nNORD\nREGEN\n")
    with pytest.raises(DataFormatError, match=r"v.txt:7: the token 'REGEN' again \(first on line 5\)"):
        Vocabulary.from_file(path)
    path.write_bytes(b"<unk>\n<pad>\n<s>\n</s>\nF\xfcR\n")
    with pytest.raises(DataFormatError, match=r"v.txt:5: not UTF-8 text \(byte 2 of the line"):
        Vocabulary.from_file(path)
    path.write_text("<unk>\n<pad>\n<s>\n</s>\nA\tB\n")
    with pytest.raises(DataFormatError, match=r"v.txt:5: a vocabulary line holds exactly one token"):
        Vocabulary.from_file(path)
    with pytest.raises(DataFormatError, match=r"nope.txt: vocabulary file not found"):
        Vocabulary.from_file(tmp_path / "nope.txt")


def test_a_gloss_with_an_invisible_character_or_unusual_space_is_refused_in_files_and_on_the_command_line(tmp_path):
    from fgdm.data.pt import DataFormatError
    from fgdm.data.vocab import gloss_tokens

    path = tmp_path / "v.txt"
    path.write_text("<unk>\n<pad>\n<s>\n</s>\nMILD\nMILD\u200b\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"v.txt:6: an invisible or control character, U\+200B \(ZERO WIDTH"):
        Vocabulary.from_file(path)
    with pytest.raises(ValueError, match=r"--gloss: an invisible or control character, U\+200B"):
        gloss_tokens("REGEN MILD\u200b")
    assert gloss_tokens(" MILD  REGEN\t") == ["MILD", "REGEN"]
    with pytest.raises(ValueError, match=r"--gloss: an unusual space, U\+00A0 \(NO-BREAK SPACE\), at character 5"):
        gloss_tokens("MILD\u00a0REGEN")
    with pytest.raises(ValueError, match=r"--gloss: an invisible or control character, U\+2060 \(WORD JOINER\)"):
        gloss_tokens("MILD REGEN\u2060")


def test_a_sentence_given_as_one_string_is_refused_not_spelt_out():
    """encode_all takes each sentence as a list of tokens; a string would be read letter by letter (17 'glosses'
    of one letter each, sampled with a mere warning): it is refused, with the list it probably meant."""
    vocab = Vocabulary([*SPECIALS, "MORGEN", "NORD", "REGEN"])
    with pytest.raises(ValueError, match=r"sentence 1 is one string, 'MORGEN NORD': give its glosses as a list, "
                       r"e.g. \['MORGEN', 'NORD'\]"):  # fmt: skip
        vocab.encode_all([["REGEN"], "MORGEN NORD"])
    with pytest.raises(ValueError, match=r"one string, 'MORGEN NORD': give a list of sentences, each a list of its "
                       r"glosses, e.g. \[\['MORGEN', 'NORD'\]\]"):  # fmt: skip
        vocab.encode_all("MORGEN NORD")
    with pytest.raises(ValueError, match=r"a list of strings, \['MORGEN', 'NORD'\]: .* e.g. \[\['MORGEN', 'NORD'\]\]"):
        vocab.encode_all(["MORGEN", "NORD"])  # one sentence's glosses, not two sentences
    with pytest.raises(ValueError, match=r"e.g. \[\['MORGEN', 'NORD'\], \['REGEN'\]\]"):
        vocab.encode_all(["MORGEN NORD", "REGEN"])  # each string a sentence
    assert vocab.encode_all(s for s in [("MORGEN", "NORD")]) == [[4, 5]]  # any iterable of token sequences
