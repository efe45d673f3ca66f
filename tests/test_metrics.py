"""Metrics against values worked out by hand (docs/model.md §8)."""

import json
import math

import numpy as np
import pytest

from fgdm.metrics.dtw import dtw_cost, dtw_mje, dtw_mje_parts, frame_cost
from fgdm.metrics.features import diversity, frechet_distance
from fgdm.metrics.text import bleu, edit_counts, rouge_l, rouge_l_sentence, wer


def test_bleu_on_tiny_corpora_by_hand():
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(
        {"bleu1": 100.0, "bleu2": 100.0, "bleu3": 100.0, "bleu4": 100.0}
    )
    s = bleu(["a b c d"], ["a b c e"])  # precisions 3/4, 2/3, 1/2, 0/1; no brevity penalty
    assert s["bleu1"] == pytest.approx(75.0)
    assert s["bleu2"] == pytest.approx(100 * math.sqrt(3 / 4 * 2 / 3))
    assert s["bleu3"] == pytest.approx(100 * (3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3))
    assert s["bleu4"] == 0.0  # no smoothing
    assert bleu(["a b"], ["a b c d"])["bleu1"] == pytest.approx(100 * math.exp(1 - 4 / 2))  # brevity penalty
    # corpus level: n-gram counts are pooled over sentences before the ratio
    assert bleu(["a b", "c x"], ["a b", "c d"])["bleu1"] == pytest.approx(75.0)


def test_bleu_tokenizes_on_whitespace_only():
    assert bleu(["wetter, morgen"], ["wetter , morgen"])["bleu1"] < 100


def test_rouge_l_with_beta_1_2():
    # LCS("a b c d", "a c d e f") = 3: P = 3/4, R = 3/5
    p, r, b2 = 3 / 4, 3 / 5, 1.2**2
    assert rouge_l_sentence("a b c d", "a c d e f") == pytest.approx((1 + b2) * p * r / (r + b2 * p))
    assert rouge_l(["a b c d", "x"], ["a c d e f", "y"]) == pytest.approx(50 * (1 + b2) * p * r / (r + b2 * p))
    assert rouge_l(["same words"], ["same words"]) == pytest.approx(100.0)


def test_wer_counts_substitutions_deletions_insertions():
    assert edit_counts(["a", "x", "c", "d", "e"], ["a", "b", "c", "d"]) == (1, 0, 1)
    assert edit_counts(["a", "c"], ["a", "b", "c", "d"]) == (0, 2, 0)
    assert edit_counts([], ["a", "b"]) == (0, 2, 0)
    r = wer(["a x c d e", "a c"], ["a b c d", "a b c d"])  # corpus level: 4 edits over 8 words
    assert r.wer == pytest.approx(50.0) and (r.substitutions, r.deletions, r.insertions) == (1, 2, 1)
    assert wer(["a b"], ["a b"]).wer == 0.0


def _walk(S=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.3, (S, 50, 3)), axis=0).astype(np.float32)


def test_dtw_of_a_sequence_with_itself_and_a_time_warped_copy():
    x = _walk()
    assert dtw_mje(x, x) == 0.0
    warped = np.repeat(x, [1 + (i % 3 == 0) for i in range(len(x))], axis=0)  # every third frame held twice
    assert dtw_mje(warped, x) == pytest.approx(0.0, abs=1e-9)
    delayed = np.concatenate([x[:1].repeat(5, 0), x[:-5]])  # the same motion 5 frames late
    assert dtw_mje(delayed, x) < 0.2 * dtw_mje(x[::-1], x)


def test_dtw_against_a_shifted_copy_is_the_shift():
    x = _walk()
    delta = 0.01  # every coordinate moved by delta: L1 frame cost 150 · delta on the diagonal
    assert dtw_mje(x + delta, x) == pytest.approx(150 * delta, rel=1e-5)
    parts = dtw_mje_parts([x + delta], [x])
    assert parts["body"] == pytest.approx(8 * 3 * delta, rel=1e-5)
    assert parts["hands"] == pytest.approx(42 * 3 * delta, rel=1e-5)


def test_frame_cost_is_the_summed_absolute_difference_without_its_big_temporary():
    rng = np.random.default_rng(4)
    hyp, ref = rng.normal(size=(23, 50, 3)).astype(np.float32), rng.normal(size=(31, 50, 3)).astype(np.float32)
    h, r = hyp.reshape(23, -1).astype(np.float64), ref.reshape(31, -1).astype(np.float64)
    expected = np.abs(h[:, None, :] - r[None, :, :]).sum(-1)  # the (S_hyp, S_ref, 150) formula it replaces
    cost = frame_cost(hyp, ref)
    assert cost.shape == (23, 31) and cost.dtype == np.float64
    np.testing.assert_allclose(cost, expected, rtol=1e-12, atol=0)
    hands = list(range(8, 50))
    part = np.abs(hyp[:, None, hands].astype(np.float64) - ref[None, :, hands]).sum((-1, -2))
    np.testing.assert_allclose(frame_cost(hyp, ref, hands), part, rtol=1e-12, atol=0)


def test_wer_aligns_at_unit_cost():
    """The standard WER: every edit costs 1. sclite's weights (substitution 4, insertion and deletion 3) align
    this pair with 2 deletions and 3 insertions (cost 15 < 3 · 4 + 3), 125 % instead of 100 %."""
    assert edit_counts(["a", "d", "a", "b", "c"], ["b", "c", "c", "b"]) == (3, 0, 1)
    assert wer(["a d a b c"], ["b c c b"]).wer == pytest.approx(100.0)


def test_dtw_cost_small_matrix_by_hand():
    cost = np.array([[1.0, 2.0, 9.0], [9.0, 1.0, 9.0], [9.0, 9.0, 1.0]])
    assert dtw_cost(cost) == 3.0
    assert dtw_cost(np.array([[1.0, 1.0, 1.0]])) == 3.0


def test_fid_of_identical_and_shifted_feature_sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.arange(8) * 0.1
    assert frechet_distance(a, a + shift) == pytest.approx(float((shift**2).sum()), rel=1e-6)
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(a, a[:, :4])


def test_diversity_is_zero_for_identical_and_grows_with_spread():
    same = np.ones((10, 4))
    rng = np.random.default_rng(0)
    assert diversity(same) == 0.0
    assert diversity(rng.normal(size=(50, 4)) * 2) > diversity(rng.normal(size=(50, 4)))


def test_score_command(tmp_path, capsys):
    from fgdm.cli import main

    (tmp_path / "hyp.txt").write_text("a b c d\nx y\n")
    (tmp_path / "ref.txt").write_text("a b c e\nx y\n")
    assert main(["score", "--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["wer"] == pytest.approx(100 / 6, abs=1e-4) and out["bleu1"] == pytest.approx(100 * 5 / 6, abs=1e-4)
    assert set(out) >= {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "wer"}


def test_score_tokenises_text_as_evaluate_does_unless_as_is(tmp_path, capsys):
    """evaluate's BLEU and ROUGE lower-case the references and split punctuation off; its WER (of glosses) takes
    the tokens as written: score computes each the same way."""
    from fgdm.cli import main
    from fgdm.data.pt import DataFormatError
    from fgdm.evaluation.scores import score_text_files

    (tmp_path / "hyp.txt").write_text("es regnet heute im norden .\n")
    (tmp_path / "ref.txt").write_text("Es regnet heute im Norden.\n")
    args = ["score", "--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt")]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bleu4"] == pytest.approx(100.0) and out["rouge_l"] == pytest.approx(100.0) and out["tokenized"]
    assert out["wer"] == pytest.approx(60.0)  # es≠Es, norden≠Norden., one "." too many: WER is not tokenised
    assert main([*args, "--as-is"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["wer"] == pytest.approx(60.0) and out["tokenized"] is False and out["bleu1"] == pytest.approx(50.0)
    (tmp_path / "ref.txt").write_text("ein satz\n\n")
    (tmp_path / "hyp.txt").write_text("ein satz\nnoch einer\n")
    with pytest.raises(DataFormatError, match=r"ref\.txt:2: an empty reference"):
        score_text_files(tmp_path / "hyp.txt", tmp_path / "ref.txt")


def test_fid_does_not_pass_disp_which_scipy_1_18_removed(monkeypatch):
    """SciPy ≥ 1.18's sqrtm takes no ``disp``; the FID must work with that signature and with the one in use."""
    import scipy.linalg

    real = scipy.linalg.sqrtm

    def sqrtm_without_disp(a, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"sqrtm() got unexpected arguments {args} {kwargs}")
        return real(a)

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 6)), rng.normal(1.0, 2.0, size=(50, 6))
    expected = frechet_distance(a, b)
    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm_without_disp)
    assert frechet_distance(a, b) == pytest.approx(expected) and expected > 1.0
