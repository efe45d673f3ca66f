"""Torch dataset over a corpus, padding (one :func:`pad_sequences` for every batch), length-bucketed batching."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from fgdm.data.corpus import Cached, Corpus
from fgdm.data.vocab import Vocabulary, warn_unknown


def pad_sequences(
    sequences: Sequence[torch.Tensor | np.ndarray | Sequence[int]],
    value: float | int = 0,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacks variable-length sequences along a new batch dimension, padded at the end with ``value``.

    Shape: B sequences of (n_b, *F) → ((B, max n_b, *F) tensor, (B, max n_b) bool mask, True on real items).
    Gloss or token ids are padded with the vocabulary's ``<pad>`` id, poses with zeros.
    """
    items = [torch.as_tensor(s, dtype=dtype) for s in sequences]
    if not items:
        raise ValueError("pad_sequences: no sequences")
    lengths = [len(t) for t in items]
    out = items[0].new_full((len(items), max(lengths), *items[0].shape[1:]), value)
    mask = torch.zeros(len(items), max(lengths), dtype=torch.bool)
    for b, (t, n) in enumerate(zip(items, lengths, strict=True)):
        out[b, :n], mask[b, :n] = t, True
    return out, mask


def mask_counts(frame_mask: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
    """(B, 2): each sequence's frame and gloss counts, from its (B, S) and (B, L) masks (:attr:`Batch.counts`)."""
    return torch.stack((frame_mask.sum(1), gloss_mask.sum(1)), 1)


@dataclass
class Batch:
    """A padded batch. Masks are True on valid (non-padded) positions.

    Attributes:
        gloss: (B, L) long, padded with the vocabulary's ``<pad>`` id.
        gloss_mask: (B, L) bool.
        pose: (B, S, J, 3) float, zero on padded frames.
        frame_mask: (B, S) bool.
        texts, names: per sample.
        index: (B,) long, the samples' corpus indices.
        counts: (B, 2) long, each sample's frame and gloss counts, on the host wherever the batch goes (the SCG
            branch reads them there: on a GPU, reading them from the masks would wait for the kernels queued
            before). Counted from the masks when the batch is made on the host, if not given.
    """

    gloss: torch.Tensor
    gloss_mask: torch.Tensor
    pose: torch.Tensor
    frame_mask: torch.Tensor
    texts: list[str]
    names: list[str]
    index: torch.Tensor
    counts: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.counts is None and self.frame_mask.device.type == "cpu":
            self.counts = mask_counts(self.frame_mask, self.gloss_mask)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """The batch with ``fn`` applied to each of its tensors but the host's counts."""
        return Batch(
            fn(self.gloss), fn(self.gloss_mask), fn(self.pose), fn(self.frame_mask), self.texts, self.names,
            fn(self.index), self.counts,
        )  # fmt: skip

    def to(self, device: torch.device | str) -> Batch:
        """The batch on ``device``; pinned tensors are copied asynchronously, pageable ones blocking."""
        return self._map(lambda t: t.to(device, non_blocking=t.is_pinned()))

    def pin_memory(self) -> Batch:
        """The batch in page-locked memory (torch's DataLoader calls this with ``pin_memory=True``)."""
        return self._map(lambda t: t.pin_memory())

    def __len__(self) -> int:
        return self.gloss.shape[0]


class PoseDataset(Dataset):
    """Samples of a corpus as tensors: ``gloss`` (L,) long, ``pose`` (S, J, 3) float.

    Unknown glosses map to ``<unk>``; one warning counts them when the dataset is built.
    With ``cache``, each sample is rendered or read once and kept (:class:`~fgdm.data.corpus.Cached`; a
    corpus that is already cached keeps its cache, shared with whoever else reads it).
    """

    def __init__(self, corpus: Corpus, vocab: Vocabulary, cache: bool = True) -> None:
        self.corpus, self.vocab = Cached.of(corpus) if cache else corpus, vocab
        unknown: Counter[str] = Counter()
        self.gloss_ids = [vocab.encode(g, unknown) for g in corpus.gloss_sequences()]
        warn_unknown(unknown, "glosses", sum(len(ids) for ids in self.gloss_ids))
        self.unknown = unknown
        self._lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.corpus)

    def frame_counts(self) -> np.ndarray:
        if self._lengths is None:
            self._lengths = self.corpus.frame_counts()
        return self._lengths

    def __getitem__(self, index: int) -> dict:
        sample = self.corpus[index]
        return {
            "gloss": torch.tensor(self.gloss_ids[index], dtype=torch.long),
            "pose": torch.from_numpy(np.ascontiguousarray(sample.pose, dtype=np.float32)),
            "text": sample.text,
            "name": sample.name,
            "index": index,
        }


class Collate:
    """Pads a list of dataset items into a :class:`Batch`."""

    def __init__(self, pad_index: int = Vocabulary.pad_index) -> None:
        self.pad_index = pad_index

    def __call__(self, items: list[dict]) -> Batch:
        gloss, gloss_mask = pad_sequences([it["gloss"] for it in items], self.pad_index, torch.long)
        pose, frame_mask = pad_sequences([it["pose"] for it in items], 0.0, torch.float32)
        return Batch(
            gloss, gloss_mask, pose, frame_mask, [it["text"] for it in items], [it["name"] for it in items],
            torch.tensor([it["index"] for it in items], dtype=torch.long),
        )  # fmt: skip


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so padding stays small.

    Indices are shuffled, cut into pools of ``pool`` batches, sorted by length inside a pool and
    cut into batches; the batch order is shuffled again; ``limit`` keeps the first that many. With
    ``num_replicas > 1`` each rank gets every ``num_replicas``-th batch, for distributed training: batch i of
    rank r is batch i · num_replicas + r of one process's order, and every rank gets as many batches (the last
    ranks' missing ones are filled with batches from the start: see :attr:`real_batches`). Deterministic for a
    given ``seed`` and epoch (:meth:`set_epoch`).
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        pool: int = 50,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        limit: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.pool, self.seed, self.epoch = pool, seed, 0
        self.num_replicas, self.rank, self.limit = num_replicas, rank, limit

    @property
    def real_batches(self) -> int:
        """How many batches one process's order holds (after ``limit``): on a rank, batches whose index
        i · num_replicas + rank is at least this many are fillers, repeated so that every rank takes as many steps;
        an evaluation over all ranks leaves them out to count each sequence once."""
        return len(self._ordered())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        batches = self._ordered()
        if self.num_replicas > 1:
            per_rank = (
                len(batches) // self.num_replicas if self.drop_last else math.ceil(len(batches) / self.num_replicas)
            )
            total = per_rank * self.num_replicas
            batches = (batches * math.ceil(total / max(len(batches), 1)))[:total] if batches else []
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def _ordered(self) -> list[list[int]]:
        """One process's batches of this epoch, in order."""
        n = len(self.lengths)
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        batches = []
        chunk = self.batch_size * self.pool
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches += [part[i : i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches[: self.limit] if self.limit is not None else batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
