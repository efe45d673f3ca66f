"""Text metrics of back-translations as pure functions (docs/model.md §8).

- BLEU-n: corpus BLEU with sacrebleu, whitespace tokens (``tokenize="none"``), no smoothing
  (``smooth_method="floor"`` with value 0), cumulative n = 1 … 4, × 100.
- ROUGE-L: longest-common-subsequence F-measure with β = 1.2, per sentence, averaged, × 100.
- WER: corpus-level word error rate, (S + D + I) / N × 100, with the counts, over a unit-cost alignment
  (a substitution, deletion or insertion costs 1: the standard definition; sclite and the SLT code align with
  substitutions costing 4 and insertions and deletions 3, which can choose other counts and a higher rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Cumulative corpus BLEU-1 … BLEU-4 (× 100) of whitespace-tokenised sentences."""
    from sacrebleu.metrics import BLEU

    _same_length(hypotheses, references)
    out = {}
    for n in range(1, 5):
        metric = BLEU(tokenize="none", max_ngram_order=n, smooth_method="floor", smooth_value=0.0,
                      effective_order=False)  # fmt: skip
        out[f"bleu{n}"] = float(metric.corpus_score(list(hypotheses), [list(references)]).score)
    return out


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_sentence(hypothesis: str, reference: str, beta: float = 1.2) -> float:
    """ROUGE-L F-measure of one sentence pair, in [0, 1]: (1 + β²) P R / (R + β² P)."""
    h, r = hypothesis.split(), reference.split()
    lcs = lcs_length(h, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    return (1 + beta**2) * p * rec / (rec + beta**2 * p)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str], beta: float = 1.2) -> float:
    """Mean sentence ROUGE-L F (β = 1.2) × 100; NaN for no sentences."""
    _same_length(hypotheses, references, empty=True)
    if not hypotheses:
        return float("nan")
    return 100.0 * float(np.mean([rouge_l_sentence(h, r, beta) for h, r in zip(hypotheses, references, strict=True)]))


@dataclass(frozen=True)
class WERResult:
    wer: float  # × 100
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    def counts(self) -> dict[str, int]:
        """The edits and the reference's length, as reports and ``fgdm score`` write them."""
        return {"sub": self.substitutions, "del": self.deletions, "ins": self.insertions, "ref": self.reference_words}


def edit_counts(hypothesis: Sequence[str], reference: Sequence[str]) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of a minimum-edit alignment of hypothesis to reference.

    Unit cost (Levenshtein): each substitution, deletion and insertion costs 1, so S + D + I is the edit distance;
    sclite's and the SLT code's weights (substitution 4, insertion and deletion 3) are not used. Among alignments
    of minimal total cost, ties prefer substitutions over deletions over insertions.
    """
    n, m = len(reference), len(hypothesis)
    # cost[i][j]: edits between reference[:i] and hypothesis[:j]; ops track (S, D, I)
    cost = [[(0, 0, 0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = (i, 0, i, 0)
    for j in range(1, m + 1):
        cost[0][j] = (j, 0, 0, j)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if reference[i - 1] == hypothesis[j - 1]:
                cost[i][j] = cost[i - 1][j - 1]
                continue
            c, s, d, ins = cost[i - 1][j - 1]
            sub = (c + 1, s + 1, d, ins)
            c, s, d, ins = cost[i - 1][j]
            dele = (c + 1, s, d + 1, ins)
            c, s, d, ins = cost[i][j - 1]
            inse = (c + 1, s, d, ins + 1)
            cost[i][j] = min(sub, dele, inse, key=lambda t: t[0])
    _, s, d, ins = cost[n][m]
    return s, d, ins


def wer(hypotheses: Sequence[str], references: Sequence[str]) -> WERResult:
    """Corpus-level word error rate: total edits over total reference words, × 100.

    Tokens are the whitespace-separated words as written (case and punctuation count), aligned at unit cost
    (:func:`edit_counts`): the standard WER, not sclite's weighted alignment (substitution 4, insertion and
    deletion 3).
    """
    _same_length(hypotheses, references)
    S = D = I = N = 0
    for h, r in zip(hypotheses, references, strict=True):
        s, d, i = edit_counts(h.split(), r.split())
        S, D, I, N = S + s, D + d, I + i, N + len(r.split())
    if N == 0:  # edits over nothing: no rate to report (a silent 11,700 % helps nobody)
        raise ValueError(f"WER is undefined: {len(references)} references and no reference words among them")
    return WERResult(100.0 * (S + D + I) / N, S, D, I, N)


def text_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """BLEU-1 … 4, ROUGE-L and WER in one dictionary (all × 100)."""
    return {**bleu(hypotheses, references), "rouge_l": rouge_l(hypotheses, references),
            "wer": wer(hypotheses, references).wer}  # fmt: skip


def _same_length(hypotheses: Sequence[str], references: Sequence[str], empty: bool = False) -> None:
    """Lists of sentences (strings), as many hypotheses as references; none at all only where ``empty``."""
    for what, given in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(given, (str, bytes)):  # scored as a list, a string's characters would be its sentences
            raise TypeError(f"{what}: a list of sentences, got one string {given[:40]!r} (give [{given[:20]!r}])")
        odd = next((x for x in given if not isinstance(x, str)), None)
        if odd is not None:
            raise TypeError(f"{what}: each sentence a string of words, got {odd!r:.60}")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references and not empty:
        raise ValueError("no sentences to score")
