"""Synthetic corpora rendered deterministically by index, from the grammar or a PHOENIX-style CSV.

Nothing is stored but sentences: sample i of a split is rendered on demand from
``(seed, split, i)``, so a full PHOENIX14T-sized corpus costs no disk and any sample can be
reproduced alone. :func:`write_pt` writes PT files when files are wanted.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from fgdm.data.corpus import Sample
from fgdm.data.pt import DataFormatError, PTSplit, refuse_repeats, text_lines, write_split
from fgdm.data.synth.grammar import Sentence, WeatherGrammar
from fgdm.data.synth.lexicon import Lexicon, stable_rng
from fgdm.data.synth.signer import SignAnimator, Signer
from fgdm.data.vocab import odd_character, odd_character_problem, token_problem

NUM_SIGNERS = 9  # as PHOENIX14T
RENDERER_VERSION = 3  # raise when rendering changes what a sentence looks like (invalidates frame caches)


@dataclass(frozen=True)
class CSVRow:
    """One PHOENIX-style annotation row."""

    name: str
    signer: str
    glosses: tuple[str, ...]
    text: str
    line: int = 0  # its 1-based line in the file (0: not from a file)


def read_phoenix_csv(path: Path | str) -> list[CSVRow]:
    """Reads ``id|signer|annotation|translation`` rows (PHOENIX14T's ``*.corpus.csv``).

    The header names the columns (extra columns are allowed); each row has as many fields as the header, and ids
    are unique. Errors name the file and line.
    """
    path = Path(path)
    rows: list[CSVRow] = []
    lines: list[tuple[int, str]] = []  # each row's line and id
    # one row a line (QUOTE_NONE: no field spans lines), so the reader's rows keep the file's line numbers
    reader = csv.reader(text_lines(path, "file not found", tokens=False), delimiter="|", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    need = ("name", "signer", "orth", "translation")
    aliases = {"id": "name", "annotation": "orth", "speaker": "signer"}
    if header is None:
        raise DataFormatError(path, 1, "empty file (expected a header id|signer|annotation|translation)")
    if not "".join(header).strip():
        raise DataFormatError(path, 1, "a blank line: the header id|signer|annotation|translation is the first line")
    cols = [aliases.get(h.strip().lower(), h.strip().lower()) for h in header]  # Name|Speaker|Orth|Translation too
    missing = [c for c in need if c not in cols]
    names = {v: k for k, v in aliases.items() if k != "speaker"}  # the names the header may use (PHOENIX14T's)
    if missing:
        other = next((sep for sep in ",;\t" if len(header) == 1 and sep in header[0]), None)  # another separator
        quoted = all(map(_quoted, header))
        problem = (f"its columns are separated by {other!r}, not '|'" if other else
                   "its fields are in double quotes (a spreadsheet's export?), which this format has none of: "
                   "remove them" if quoted else f"it lacks {', '.join(names.get(c, c) for c in missing)}")  # fmt: skip
        raise DataFormatError(path, 1, f"header {'|'.join(header)!r}: {problem} (expected id|signer|annotation|"
                              "translation, separated by '|')")  # fmt: skip
    idx = {c: cols.index(c) for c in need}
    for lineno, fields in enumerate(reader, start=2):
        if not "".join(fields).strip():  # a blank line, spaces only included
            continue
        if len(fields) != len(cols):  # more: a '|' inside a field, which this format cannot hold
            raise DataFormatError(path, lineno, f"{len(fields)} fields, the header has {len(cols)}")
        for column in ("name", "orth"):  # glosses and ids: a no-break space would split one unseen (free text may)
            if _quoted(fields[idx[column]]):  # the quotes would stay in the id, the first and the last gloss
                raise DataFormatError(path, lineno, f"{header[idx[column]].strip()} {fields[idx[column]].strip()}: "
                                      "in double quotes (a spreadsheet's export?), which this format has none of: "
                                      "remove them")  # fmt: skip
            at = odd_character(fields[idx[column]])
            if at is not None:
                raise DataFormatError(path, lineno, f"{header[idx[column]].strip()}: "
                                      f"{odd_character_problem(fields[idx[column]], at)}")  # fmt: skip
        glosses = tuple(fields[idx["orth"]].split())
        if not glosses:
            raise DataFormatError(path, lineno, "empty annotation (no glosses)")
        problem = next(filter(None, map(token_problem, glosses)), None)  # a vocabulary's own token (<pad>, ...)
        if problem:
            raise DataFormatError(path, lineno, problem)
        if not fields[idx["translation"]].strip():
            raise DataFormatError(path, lineno, "empty translation")
        name = fields[idx["name"]].strip()
        if not name:
            raise DataFormatError(path, lineno, "empty id")
        lines.append((lineno, name))
        rows.append(CSVRow(name, fields[idx["signer"]], glosses, fields[idx["translation"]].strip(), lineno))
    if not rows:
        raise DataFormatError(path, None, "no rows after the header")
    refuse_repeats(path, lines, "id")
    return rows


def _quoted(field: str) -> bool:
    """A CSV field in double quotes, as a spreadsheet's export writes them."""
    field = field.strip()
    return len(field) > 1 and field[0] == field[-1] == '"'


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
