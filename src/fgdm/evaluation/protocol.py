"""The evaluation protocol (docs/model.md §8): every system scored against the same references, one row each.

Rows: ground truth (the back-translator's ceiling), the model, the trivial mean-pose baseline (DTW-MJE
rewards static average motion, so a model must beat it), and optionally poses made by another system.
Each row: BLEU, ROUGE and WER of the back-translation, DTW-MJE (all, body, hands), FID and diversity
of the pose-encoder features, the finger bone-length ratio and the handshape agreement
(:func:`fgdm.evaluation.scores.score_system`).

:class:`Evaluator` holds the frozen back-translator and the references, loaded once (``fgdm evaluate``
and the benchmarks use it); :func:`evaluate` is the whole protocol in one call.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np
import torch

from fgdm.choices import LengthMode
from fgdm.data.corpus import Corpus, Sample
from fgdm.data.hypotheses import names_elsewhere, read_hypotheses
from fgdm.data.sources import SPLITS, build_corpus, data_splits, open_corpus
from fgdm.data.vocab import Vocabulary, tokenize_text
from fgdm.evaluation.backtranslation import LoadedBackTranslator, load_backtranslator
from fgdm.evaluation.html import Example
from fgdm.evaluation.report import DEFINITIONS
from fgdm.evaluation.scores import Reference, System, Translation, score_system
from fgdm.sampling import LongSequenceWarning, generate_for, load_for_sampling
from fgdm.version import __version__

# % of the reference glosses or text words outside the back-translator's vocabularies that it warns of (a test
# split of the corpus it was trained on has a few %), and beyond which it asks whether it is another language's
UNKNOWN_WARNING, UNKNOWN_FOREIGN = 10.0, 50.0


def mean_pose(train: Corpus, limit: int | None = 2000) -> np.ndarray:
    """The training set's mean pose (J, 3), over all frames of (at most ``limit``) sequences."""
    n = len(train) if limit is None else min(limit, len(train))
    total, frames = None, 0
    for i in range(n):
        p = train[i].pose.astype(np.float64)
        total = p.sum(0) if total is None else total + p.sum(0)
        frames += len(p)
    return (total / max(frames, 1)).astype(np.float32)


def _unknown(tokens: Sequence[str], vocab: Vocabulary, what: str) -> tuple[float, str]:
    """The % of ``tokens`` outside ``vocab``, and a phrase that says it (naming the commonest)."""
    unknown = Counter(t for t in tokens if t not in vocab)
    n = sum(unknown.values())
    share = 100.0 * n / max(len(tokens), 1)
    shown = " ".join(t for t, _ in unknown.most_common(5))
    return share, f"{n} of {len(tokens)} reference {what} ({share:.1f} %{', e.g. ' + shown if n else ''})"


def unknown_to(bt: LoadedBackTranslator, samples: Sequence[Sample]) -> tuple[dict[str, float], str]:
    """The % of the references' glosses and text words (:func:`reference_text`) outside the back-translator's
    gloss and text vocabularies, and a sentence that says it."""
    glosses = _unknown([g for s in samples for g in s.glosses], bt.gloss_vocab, "glosses")
    words = _unknown([w for s in samples for w in tokenize_text(s.text)], bt.text_vocab, "text words")
    shares = {"glosses": round(glosses[0], 2), "text_words": round(words[0], 2)}
    return shares, f"{glosses[1]} and {words[1]} are not in the back-translator's vocabularies"


class Evaluator:
    """The frozen back-translator, the evaluation samples and the ground truth's back-translation.

    Warns where more than :data:`UNKNOWN_WARNING` (10) % of the references' glosses or text words are outside the
    back-translator's vocabularies, beyond :data:`UNKNOWN_FOREIGN` (50) % whether it read another language (or that
    they are unseen in a training split it knows); ``unknown`` holds both shares, ``notes`` the warnings.

    Args:
        bt: the back-translator.
        samples: the references (their poses are the ground truth row).
        train: the training corpus, for the mean-pose row (None: no such row).
    """

    def __init__(
        self,
        bt: LoadedBackTranslator,
        samples: Sequence[Sample],
        train: Corpus | None = None,
        batch_size: int = 32,
        progress: bool = False,
    ) -> None:
        if not samples:
            raise ValueError("nothing to evaluate: the evaluation split is empty")
        self.bt, self.samples, self.train = bt, list(samples), train
        self.batch_size, self.progress = batch_size, progress
        self.notes: list[str] = []
        self.unknown, said = unknown_to(bt, self.samples)
        worst = max(self.unknown.values())
        if worst > UNKNOWN_FOREIGN:  # the training split's glosses known: its own corpus, whose other splits differ
            ours = train is not None and _unknown(list(chain(*train.gloss_sequences())), bt.gloss_vocab, "")[0] < 10
            why = "unseen in the training split, whose glosses it knows." if ours else "another language or corpus?"
            self.note(f"{said}: {why} Its BLEU, ROUGE and WER of these references then say little")
        elif worst > UNKNOWN_WARNING:
            self.note(f"{said}: it cannot read them back, which lowers every row's BLEU, ROUGE and WER, the "
                      "ground truth's too")  # fmt: skip

    @functools.cached_property
    def ref(self) -> Reference:
        """The ground truth back-translated, on first use: after the hypotheses are read, whose errors come first."""
        return Reference.build(self.bt, self.samples, self.batch_size, self.progress)

    def note(self, message: str, category: type[Warning] = UserWarning) -> None:
        """Warns of ``message`` and keeps it for the report's notes."""
        warnings.warn(message, category, stacklevel=3)
        self.notes.append(message)

    @classmethod
    def open(
        cls,
        backtranslator: Path | str,
        data: Path | str | None = None,
        split: str = "test",
        limit: int | None = None,
        device: str = "auto",
        batch_size: int = 32,
        progress: bool = False,
    ) -> Evaluator:
        """Loads the back-translator and ``split`` of ``data`` (default: the data it was trained on), read at
        the back-translator's frame rate (``data.skip_frames``), and its ``train`` split for the mean-pose row;
        data without a train split has no such row, which a warning and the notes say."""
        bt = load_backtranslator(backtranslator, device=device)
        skip = bt.cfg.data.skip_frames
        directory = data if data is not None else bt.cfg.data.path
        train: Corpus | None
        if directory is not None:
            corpus = open_corpus(directory, split, skip)
            train = open_corpus(directory, "train", skip) if "train" in data_splits(directory) else None
        else:
            corpus, train = build_corpus(bt.cfg.data, split), build_corpus(bt.cfg.data, "train")
        n = len(corpus) if limit is None else min(limit, len(corpus))
        from tqdm.auto import tqdm

        if n < 2:
            limited = f" (--limit {limit})" if limit is not None else ""
            raise ValueError(f"{n} sequence(s) of the {split} split to evaluate{limited}: FID and diversity need 2")
        samples = [corpus[i] for i in tqdm(range(n), desc=f"load {split}", disable=not progress)]
        ev = cls(bt, samples, train, batch_size, progress)
        if train is None:
            ev.note(f"{directory} has no train split: the report leaves out the mean-pose row (the training set's "
                    "mean pose, the floor a model must beat on DTW-MJE)")  # fmt: skip
        return ev

    @property
    def skip_frames(self) -> int:
        return self.bt.cfg.data.skip_frames

    def score(self, system: System, translated: Translation | None = None, examples: bool = True) -> dict:
        """One report row for ``system``."""
        row = score_system(self.bt, self.ref, system, self.batch_size, self.progress, translated)
        if not examples:  # (a learning curve's point: its scores alone)
            row.pop("examples")
            row.pop("back_translations")
        return row

    def ground_truth(self) -> System:
        return System("ground truth", [s.pose for s in self.samples])

    def mean_pose(self) -> System:
        """The training set's mean pose held for each reference's length."""
        if self.train is None:
            raise ValueError("the mean-pose row needs the training corpus")
        mean = mean_pose(self.train)
        return System("mean pose", [np.repeat(mean[None], len(s.pose), axis=0) for s in self.samples])

    def reference_rows(self, examples: bool = True) -> list[dict]:
        """Ground truth (the ceiling) and, with a training corpus, the mean pose (the floor a model must beat)."""
        rows = [self.score(self.ground_truth(), self.ref.translated, examples)]
        if self.train is not None:
            rows.append(self.score(self.mean_pose(), examples=examples))
        return rows

    def report(self, systems: Sequence[System]) -> dict:
        """Every system under one protocol, ground truth first."""
        rows = [self.score(self.ground_truth(), self.ref.translated)]
        rows += [self.score(system) for system in systems]
        # the references as scored (texts tokenised and lower-cased), in the order of each row's back_translations
        references = {"names": [s.name for s in self.samples], "glosses": self.ref.gloss, "texts": self.ref.text}
        return {"sequences": len(self.samples), "definitions": DEFINITIONS, "rows": rows, "references": references}


def _language(data) -> str:
    """Which data a model was trained on, for telling two apart: a directory, or the embedded language's seed."""
    if data.path is None:
        return f"the embedded synthetic language of seed {data.synth_seed}"
    return str(Path(data.path).resolve())


def hypothesis_labels(hypotheses: Sequence[str | Path]) -> list[str]:
    """Each --hyp folder's row: its name, or its parent's where it is named for a split (``other/test/``: other), or
    the path as given where two would read alike."""
    paths = [Path(os.path.abspath(h)) for h in hypotheses]
    labels = [p.parent.name if p.name in SPLITS and p.parent.name else p.name for p in paths]
    return [str(h) if labels.count(label) > 1 else label for h, label in zip(hypotheses, labels, strict=True)]


def evaluate(
    backtranslator: Path | str,
    checkpoint: Path | str | None = None,
    data: Path | str | None = None,
    split: str = "test",
    length: LengthMode | str | None = None,
    hypotheses: Sequence[Path | str] | Path | str = (),
    steps: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    batch_size: int = 32,
    device: str = "auto",
    progress: bool = False,
    examples: int = 0,
    precision: str = "32",
    compile: bool | str = False,
) -> dict:
    """The whole protocol: samples ``checkpoint`` (if given) on ``split`` and scores it beside ground truth,
    the mean pose and the poses in each ``hypotheses`` directory (one or a list of them;
    :func:`fgdm.data.hypotheses.read_hypotheses`, read before any sampling; what reading their ``.pose`` files
    changed is warned of and in the notes), in that order. ``length``: the frame counts to sample (None: the
    checkpoint config's ``testing.length``, :meth:`fgdm.choices.LengthMode.from_config`). ``examples``: keep the
    first N generated sequences beside the true ones for ``report.html``; ``precision`` and ``compile``: the generator's
    (:func:`fgdm.sampling.load_for_sampling`). The report dictionary (:func:`fgdm.evaluation.report.write_report`
    writes it); its ``meta`` records what the sampled poses depend on: the seed, the batch size (by float rounding
    only: :func:`fgdm.sampling.generate_poses`), the device (its random generator), the precision, torch.compile's
    mode (by float rounding only) and the sampling steps and η as resolved from the checkpoint's config."""
    length = LengthMode.parse(length) if length is not None and not isinstance(length, LengthMode) else length
    hypotheses = [hypotheses] if isinstance(hypotheses, (str, os.PathLike)) else list(hypotheses)  # one folder
    ev = Evaluator.open(backtranslator, data, split, limit, device, batch_size, progress)
    unused = [k for k, v, plain in (("length", length, None), ("steps", steps, None), ("seed", seed, 0),
              ("precision", precision, "32"), ("compile", compile, False)) if v != plain]  # fmt: skip
    if checkpoint is None and unused:  # they shape sampling, and nothing is sampled: never silently ignored
        warnings.warn(f"{', '.join(unused)}: no checkpoint is sampled, so they change nothing", stacklevel=2)
    if checkpoint is None and not hypotheses:  # a ceiling check, or a call that forgot its model: said once the
        # arguments are known to be good (an error then comes alone), before the long work
        warnings.warn("no checkpoint and no hypotheses (--checkpoint, --hyp): the report scores no model, only the "
                      "ground truth (the back-translator's ceiling) and the baselines", stacklevel=2)  # fmt: skip
    names, fps = [s.name for s in ev.samples], 25.0 / ev.skip_frames
    # the other systems first: a mismatch fails before the sampling (and the references' back-translation)
    lengths, labels = [len(s.pose) for s in ev.samples], hypothesis_labels(hypotheses)
    # names another split has too (files of one such split could pass for another's), read where needed
    elsewhere = functools.cache(lambda: names_elsewhere(data if data is not None else ev.bt.cfg.data, split))
    others = []
    for h, label in zip(hypotheses, labels, strict=True):
        got = read_hypotheses(h, split, names, fps, allow_extra=limit is not None, lengths=lengths, elsewhere=elsewhere,
                              glosses=[s.glosses for s in ev.samples])  # fmt: skip
        for said in got.notes(fps):  # files filled in, normalised, resampled, out of convention: the report says
            ev.note(f"--hyp {h}: {said}")
        others.append(System(label, got.poses))
    systems, sampling = [], {"steps": None, "eta": None, "precision": None, "compile": None}
    device_used = str(next(ev.bt.model.parameters()).device)
    if checkpoint is not None:
        loaded = load_for_sampling(checkpoint, device=device, precision=precision, compile=compile)
        length = length if length is not None else LengthMode.from_config(loaded.cfg)
        if _language(loaded.cfg.data) != _language(ev.bt.cfg.data):
            ev.note(f"the generator was trained on {_language(loaded.cfg.data)}, the back-translator on "
                    f"{_language(ev.bt.cfg.data)}: their scores mean something only for one sign language")  # fmt: skip
        if loaded.cfg.data.skip_frames != ev.skip_frames:
            raise ValueError(f"the checkpoint samples at skip_frames={loaded.cfg.data.skip_frames}, the "
                             f"back-translator was trained at {ev.skip_frames}: they must match")  # fmt: skip
        where = f"the {split} split of " + (str(data) if data is not None else "the back-translator's data")
        loaded.vocab.require_mostly_known((s.glosses for s in ev.samples), where, limit=0.9)  # as fgdm generate
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", LongSequenceWarning)
            poses = generate_for(loaded, ev.samples, length, steps=steps, seed=seed, batch_size=batch_size,
                                 progress=progress)  # fmt: skip
        for w in said:  # sequences longer than it learnt: the report's notes say so too, as of --hyp's oddities
            if issubclass(w.category, LongSequenceWarning):
                ev.note(f"sampling: {w.message}", LongSequenceWarning)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        sampling = loaded.sampling(steps)
        device_used = str(next(loaded.model.parameters()).device)
        systems.append(System(f"FGDM ({Path(checkpoint).name}, step {loaded.step})", poses))
        shown = [
            Example(s.name, " ".join(s.glosses), p, s.pose)
            for s, p in zip(ev.samples[:examples], poses[:examples], strict=True)
        ]
    report = ev.report([*systems, *([ev.mean_pose()] if ev.train is not None else []), *others])
    if examples and checkpoint is not None:  # for report.html: not part of the JSON
        report |= {"_examples": shown, "_fps": fps}
    sampled = {"checkpoint": str(checkpoint), "step": loaded.step, "length": str(length), **sampling, "seed": seed,
               "batch_size": batch_size} if checkpoint is not None else {}  # fmt: skip
    report["meta"] = {"split": split, **sampled, "backtranslator": str(backtranslator),
                      "backtranslator_step": ev.bt.step, "backtranslator_weights": ev.bt.weights, "fps": fps,
                      "data": str(data) if data is not None else str(ev.bt.cfg.data.path or "the embedded language"),
                      "device": device_used, "hypotheses": [str(h) for h in hypotheses],
                      "versions": {"fgdm": __version__, "torch": torch.__version__},  # sampled poses depend on them
                      "unknown_to_backtranslator_percent": ev.unknown, "notes": list(ev.notes)}  # fmt: skip
    return report
