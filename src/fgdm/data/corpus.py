"""Corpora: indexable collections of sign-language samples, from PT files or rendered on the fly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from fgdm.data.pt import PTSplit, read_split


@dataclass(frozen=True)
class Sample:
    """One sequence.

    Attributes:
        glosses: gloss tokens (L,).
        pose: (S, J, 3) float32 skeleton sequence.
        text: spoken-language translation.
        name: a stable identifier (the PT ``.files`` line).
    """

    glosses: tuple[str, ...]
    pose: np.ndarray
    text: str
    name: str


@runtime_checkable
class Corpus(Protocol):
    """What datasets, training and evaluation need from a source of samples."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...

    def gloss_sequences(self) -> list[tuple[str, ...]]:
        """Gloss tokens of every sample, without loading poses."""
        ...

    def frame_counts(self) -> np.ndarray:
        """(N,) frame count of every sample, for length bucketing, without rendering poses."""
        ...

    def texts(self) -> list[str]:
        """Spoken-language translation of every sample, without loading poses."""
        ...


class PTCorpus:
    """A split of a Progressive-Transformers data directory, held in memory."""

    def __init__(self, split: PTSplit) -> None:
        self.split = split

    @classmethod
    def read(cls, directory: Path | str, split: str, skip_frames: int = 1) -> PTCorpus:
        return cls(read_split(directory, split, skip_frames=skip_frames))

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> Sample:
        s = self.split
        return Sample(tuple(s.glosses[index]), s.poses[index], s.texts[index], s.names[index])

    def gloss_sequences(self) -> list[tuple[str, ...]]:
        return [tuple(g) for g in self.split.glosses]

    def frame_counts(self) -> np.ndarray:
        return np.array([len(p) for p in self.split.poses], dtype=np.int64)

    def texts(self) -> list[str]:
        return list(self.split.texts)


class Subsampled:
    """Every k-th frame of another corpus (the anchors' ``skip_frames``)."""

    def __init__(self, corpus: Corpus, k: int) -> None:
        if k < 1:
            raise ValueError(f"skip_frames must be ≥ 1, got {k}")
        self.corpus, self.k = corpus, k

    def __len__(self) -> int:
        return len(self.corpus)

    def __getitem__(self, index: int) -> Sample:
        s = self.corpus[index]
        return Sample(s.glosses, s.pose[:: self.k], s.text, s.name)

    def gloss_sequences(self) -> list[tuple[str, ...]]:
        return self.corpus.gloss_sequences()

    def frame_counts(self) -> np.ndarray:
        return (self.corpus.frame_counts() + self.k - 1) // self.k

    def texts(self) -> list[str]:
        return self.corpus.texts()


class Cached:
    """Another corpus whose samples are kept once loaded: synthetic corpora render every sample on demand
    (a few milliseconds each), and training reads each one once per epoch and once more for the pose
    statistics. A PHOENIX-sized synthetic corpus at 25 fps holds about 0.6 GB."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._samples: dict[int, Sample] = {}

    @classmethod
    def of(cls, corpus: Corpus) -> Cached:
        """``corpus`` itself if it is already cached, else a cache over it."""
        return corpus if isinstance(corpus, Cached) else cls(corpus)

    def __len__(self) -> int:
        return len(self.corpus)

    def __getitem__(self, index: int) -> Sample:
        if (sample := self._samples.get(index)) is None:
            sample = self._samples[index] = self.corpus[index]
        return sample

    def gloss_sequences(self) -> list[tuple[str, ...]]:
        return self.corpus.gloss_sequences()

    def frame_counts(self) -> np.ndarray:
        if len(self._samples) == len(self):  # all loaded: counting is free (a synthetic corpus would plan again)
            return np.array([len(self._samples[i].pose) for i in range(len(self))], dtype=np.int64)
        return self.corpus.frame_counts()

    def texts(self) -> list[str]:
        return self.corpus.texts()
