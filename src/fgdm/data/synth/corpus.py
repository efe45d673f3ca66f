"""Synthetic corpora rendered deterministically by index, from the grammar or a PHOENIX-style CSV.

Nothing is stored but sentences: sample i of a split is rendered on demand from
``(seed, split, i)``, so a full PHOENIX14T-sized corpus costs no disk and any sample can be
reproduced alone. :func:`write_pt` writes PT files when files are wanted.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from fgdm.data.corpus import Sample
from fgdm.data.csvs import CSVRow, read_phoenix_csv
from fgdm.data.pt import PTSplit, write_split
from fgdm.data.synth.grammar import Sentence, WeatherGrammar
from fgdm.data.synth.lexicon import Lexicon, stable_rng
from fgdm.data.synth.signer import SignAnimator, Signer

NUM_SIGNERS = 9  # as PHOENIX14T
RENDERER_VERSION = 3  # raise when rendering changes what a sentence looks like (invalidates frame caches)


class SynthCorpus:
    """A split of the synthetic sign language, rendered on demand.

    Args:
        size: number of sentences (ignored when ``rows`` are given).
        split: the split name; different splits draw different sentences.
        seed: one seed is one sign language (lexicon) and one corpus.
        rows: render these PHOENIX-style rows instead of grammar sentences ("phoenix-synth").
        frames_cache: a file where :meth:`frame_counts` keeps its result (planning every sentence of a
            PHOENIX-sized split takes about a minute); reused only if it was made for the same sentences.
    """

    def __init__(
        self,
        size: int,
        split: str = "train",
        seed: int = 0,
        rows: Sequence[CSVRow] | None = None,
        frames_cache: Path | str | None = None,
    ) -> None:
        self.split, self.seed = split, seed
        self.frames_cache = Path(frames_cache) if frames_cache is not None else None
        self.lexicon = Lexicon(seed)
        self.animator = SignAnimator(self.lexicon)
        self.grammar = WeatherGrammar()
        self.rows = list(rows) if rows is not None else None
        self.size = len(self.rows) if self.rows is not None else size
        self._sentences: list[tuple[Sentence, str, str]] | None = None
        self._signers = [Signer.sample(stable_rng(seed, "signer", k)) for k in range(NUM_SIGNERS)]

    @classmethod
    def from_csv(cls, path: Path | str, split: str, seed: int = 0) -> SynthCorpus:
        return cls(0, split=split, seed=seed, rows=read_phoenix_csv(path))

    def __len__(self) -> int:
        return self.size

    def sentence(self, index: int) -> tuple[Sentence, str, str]:
        """(sentence, signer id, name) of sample ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} samples")
        if self.rows is not None:
            row = self.rows[index]
            return Sentence(row.glosses, row.text), row.signer, row.name
        rng = stable_rng(self.seed, self.split, "sentence", index)
        sentence = self.grammar.sample(rng)
        signer = f"Signer{int(rng.integers(NUM_SIGNERS)) + 1:02d}"
        return sentence, signer, f"{self.split}/synth-{index:05d}"

    def _signer(self, signer_id: str) -> Signer:
        digits = "".join(ch for ch in signer_id if ch.isdigit())
        k = (int(digits) - 1) if digits else int(stable_rng(signer_id).integers(NUM_SIGNERS))
        return self._signers[k % NUM_SIGNERS]

    def _motion_rng(self, index: int) -> np.random.Generator:
        return stable_rng(self.seed, self.split, "motion", index)

    def __getitem__(self, index: int) -> Sample:
        sentence, signer_id, name = self.sentence(index)
        pose = self.animator.animate(list(sentence.glosses), self._signer(signer_id), self._motion_rng(index))
        return Sample(sentence.glosses, pose, sentence.text, name)

    def gloss_sequences(self) -> list[tuple[str, ...]]:
        return [self.sentence(i)[0].glosses for i in range(self.size)]

    def texts(self) -> list[str]:
        return [self.sentence(i)[0].text for i in range(self.size)]

    def fingerprint(self) -> str:
        """A digest of what this split renders: seed, split, renderer version and every sentence."""
        digest = hashlib.sha256(f"{RENDERER_VERSION}|{self.seed}|{self.split}|{self.size}".encode())
        for i in range(self.size):
            sentence, signer_id, _ = self.sentence(i)
            digest.update(f"|{signer_id}|{' '.join(sentence.glosses)}".encode())
        return digest.hexdigest()

    def frame_counts(self) -> np.ndarray:
        key = self.fingerprint() if self.frames_cache is not None else ""
        if self.frames_cache is not None and self.frames_cache.is_file():
            try:
                with np.load(self.frames_cache) as cached:
                    if str(cached["key"]) == key and len(cached["counts"]) == self.size:
                        return cached["counts"].astype(np.int64)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                pass  # unreadable or foreign: plan again and overwrite
        counts = []
        for i in range(self.size):
            sentence, signer_id, _ = self.sentence(i)
            counts.append(
                self.animator.frame_count(list(sentence.glosses), self._signer(signer_id), self._motion_rng(i))
            )
        result = np.array(counts, dtype=np.int64)
        if self.frames_cache is not None:
            try:  # written whole or not at all; a read-only data directory just goes without the cache
                tmp = self.frames_cache.with_name(self.frames_cache.name + ".tmp.npz")
                np.savez(tmp, key=np.array(key), counts=result)
                tmp.replace(self.frames_cache)
            except OSError:
                pass
        return result


def write_pt(corpus: SynthCorpus, directory: Path | str, progress: bool = True, workers: int = 1) -> None:
    """Renders every sample of ``corpus`` and writes them as PT files ``directory/{split}.*``.

    ``workers`` > 1 renders in that many processes (the same samples, in the same order).
    """
    indices = range(len(corpus))
    bar = {"desc": f"render {corpus.split}", "disable": not progress, "total": len(corpus)}
    if workers > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            samples = list(tqdm(pool.imap(corpus.__getitem__, indices, chunksize=16), **bar))
    else:
        samples = [corpus[i] for i in tqdm(indices, **bar)]
    write_split(
        directory,
        corpus.split,
        PTSplit(
            poses=[s.pose for s in samples],
            glosses=[list(s.glosses) for s in samples],
            texts=[s.text for s in samples],
            names=[s.name for s in samples],
        ),
    )
