"""What one row of an evaluation report is made of (docs/model.md §8): a system's back-translation scores (BLEU,
ROUGE-L, WER), DTW-MJE, FID, diversity, the finger ratio and the handshape agreement against one set of
references (:func:`score_system`), and the same text scores of two text files (:func:`score_text_files`,
``fgdm score``). Which systems are scored, and against what: :mod:`fgdm.evaluation.protocol`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fgdm.data.corpus import Sample
from fgdm.data.pt import DataFormatError, text_lines
from fgdm.data.vocab import SPECIALS, tokenize_text
from fgdm.evaluation.backtranslation import LoadedBackTranslator, back_translate
from fgdm.metrics import (
    bleu,
    diversity,
    dtw_mje_parts,
    finger_length_ratio,
    frechet_distance,
    handshape_agreement,
    rouge_l,
    wer,
)

Translation = tuple[list[str], list[str], np.ndarray]  # glosses, texts, (N, D) features: back_translate's


@dataclass
class System:
    """A named set of generated sequences, one per reference sample, in the references' order."""

    name: str
    poses: list[np.ndarray]


def reference_text(text: str) -> str:
    """A sentence as BLEU and ROUGE-L see it: lower-cased words and punctuation marks
    (:func:`fgdm.data.vocab.tokenize_text`), one space apart."""
    return " ".join(tokenize_text(text))


def hypothesis_text(text: str) -> str:
    """:func:`reference_text`, but a vocabulary's own token (``<unk>``, which the back-translator may write) stays
    one token: the back-translator's translations, already in that form, come out unchanged."""
    return " ".join(t for word in text.split() for t in ([word] if word in SPECIALS else tokenize_text(word)))


def text_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L (unrounded) of sentences already in :func:`reference_text`'s form: a report's text
    columns. A report's WER is :func:`fgdm.metrics.wer` of the glosses as written."""
    return {**bleu(hypotheses, references), "rouge_l": rouge_l(hypotheses, references)}


def score_text_files(hyp_path: Path | str, ref_path: Path | str, tokenize: bool = True) -> dict:
    """BLEU-1..4, ROUGE-L and WER of two line-aligned text files (``fgdm score``), each as ``fgdm evaluate``
    computes it from the same strings.

    ``tokenize`` (True): BLEU and ROUGE-L of the lines lower-cased with punctuation split off (the references by
    :func:`reference_text`, the hypotheses by :func:`hypothesis_text`), as evaluate scores the back-translator's
    text; WER of the lines as written, split at whitespace (case and punctuation count), as evaluate scores the
    recognised glosses (``AB-SO``, ``DANKE2*``, ``$INDEX1`` are one token each). False: every metric of the lines
    as written. An empty reference line is refused (it has nothing to score against); an empty hypothesis is a
    system's output and scores what it scores.
    """
    paths = Path(hyp_path), Path(ref_path)
    for path in paths:
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a text file of sentences")
    hyp, ref = (text_lines(path, "file not found", tokens=False) for path in paths)
    if not ref:
        raise ValueError(f"{ref_path}: no sentences to score against")
    if len(hyp) != len(ref):
        longer, extra = (hyp_path, hyp[len(ref) :]) if len(hyp) > len(ref) else (ref_path, ref[len(hyp) :])
        blank = not any(line.strip() for line in extra)
        hint = f"; the last {len(extra)} line(s) of {longer} are blank: remove them" if blank else ""
        raise ValueError(f"{hyp_path} has {len(hyp)} line{'s' * (len(hyp) != 1)} but {ref_path} has {len(ref)}{hint}")
    empty = next((i for i, line in enumerate(ref, 1) if not line.strip()), None)
    if empty is not None:
        raise DataFormatError(paths[1], empty, "an empty reference: every line needs the sentence to score against")
    text = ([hypothesis_text(line) for line in hyp], [reference_text(line) for line in ref]) if tokenize else (hyp, ref)
    w = wer(hyp, ref)  # the glosses' WER: tokens as written
    return {**{k: round(v, 4) for k, v in text_metrics(*text).items()}, "wer": round(w.wer, 4),
            "wer_counts": w.counts(), "wer_tokens": "as written", "sentences": len(hyp),
            "tokenized": tokenize}  # fmt: skip


@dataclass
class Reference:
    """What every system is scored against: the test samples, their reference glosses and text, and the
    back-translation of the ground-truth poses (its features are FID's reference)."""

    samples: Sequence[Sample]
    gloss: list[str]
    text: list[str]
    translated: Translation  # back_translate of the ground truth

    @property
    def features(self) -> np.ndarray:
        return self.translated[2]

    @classmethod
    def build(
        cls, bt: LoadedBackTranslator, samples: Sequence[Sample], batch_size: int = 32, progress: bool = False
    ) -> Reference:
        out = back_translate(bt, [s.pose for s in samples], batch_size, progress, "back-translate ground truth")
        gloss = [" ".join(s.glosses) for s in samples]
        return cls(samples, gloss, [reference_text(s.text) for s in samples], out)


def score_system(
    bt: LoadedBackTranslator,
    ref: Reference,
    system: System,
    batch_size: int = 32,
    progress: bool = False,
    translated: Translation | None = None,
) -> dict:
    """One report row: back-translation scores, DTW-MJE, FID and diversity of ``system`` against ``ref``.

    ``translated``: the system's back-translation when it is already known (the ground truth's is in ``ref``).
    """
    if len(system.poses) != len(ref.samples):
        raise ValueError(f"{system.name}: {len(system.poses)} sequences for {len(ref.samples)} references")
    if translated is None:
        translated = back_translate(bt, system.poses, batch_size, progress, f"back-translate {system.name}")
    glosses, texts, feats = translated
    refs = [s.pose for s in ref.samples]
    w = wer(glosses, ref.gloss)  # the glosses as written, as score_text_files's WER
    return {
        "system": system.name,
        **{k: round(v, 2) for k, v in text_metrics(texts, ref.text).items()},
        "wer": round(w.wer, 2),
        "wer_counts": w.counts(),
        "dtw_mje": {k: round(v, 4) for k, v in dtw_mje_parts(system.poses, refs).items()},
        "fid": round(frechet_distance(ref.features, feats), 4),
        "finger_ratio": round(finger_length_ratio(system.poses, refs), 4),
        "handshape": round(handshape_agreement(system.poses, refs), 2),
        "diversity": round(diversity(feats), 4),
        "examples": [
            {"reference": ref.text[i], "translation": texts[i], "glosses": glosses[i]}
            for i in range(min(3, len(ref.samples)))
        ],
        # every sentence's, in the references' order (the report's "references"): to score again with other tools
        "back_translations": {"glosses": list(glosses), "texts": list(texts)},
    }
