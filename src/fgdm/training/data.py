"""The data module both trainers share: glosses and poses of a corpus, batched by length."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from fgdm.config import DataConfig, TrainingConfig
from fgdm.data.corpus import Cached, Corpus
from fgdm.data.dataset import BucketBatchSampler, Collate, PoseDataset
from fgdm.data.sources import build_corpus, build_vocab, is_manifest
from fgdm.data.stats import shared_recordings, thinned
from fgdm.data.vocab import Vocabulary


class EpochBatches(Sampler[list[int]]):
    """The training batches by step: step k of a run takes batch k mod n of epoch k // n (n batches an epoch),
    each epoch shuffled afresh (:meth:`BucketBatchSampler.set_epoch`). An iteration starts at the trainer's
    step and ends with its epoch, so a resumed run, whose iteration Lightning starts afresh mid-epoch, takes the
    batches a run that went straight through would have taken."""

    def __init__(self, batches: BucketBatchSampler, trainer: L.Trainer) -> None:
        self.batches, self.trainer = batches, trainer

    def __iter__(self) -> Iterator[list[int]]:
        epoch, done = divmod(self.trainer.global_step, len(self.batches))
        self.batches.set_epoch(epoch)
        return iter(list(self.batches)[done:])

    def __len__(self) -> int:
        return len(self.batches)


class PoseDataModule(L.LightningDataModule):
    """Train/dev datasets of glosses and poses with length-bucketed, rank-aware batching (both trainers').

    Args:
        data: where the corpus comes from.
        training: batch size, seed and loader workers.
        eval_batch_size: the dev batches' size.
        vocab: the gloss vocabulary (default: :func:`build_vocab` on the training split).
    """

    def __init__(
        self, data: DataConfig, training: TrainingConfig, eval_batch_size: int, vocab: Vocabulary | None = None
    ) -> None:
        super().__init__()
        self.data_cfg, self.training_cfg, self.eval_batch_size = data, training, eval_batch_size
        self.corpora: dict[str, Corpus] = {}
        for split in ("train", "dev"):
            if len(self.corpus(split)) == 0:
                where = data.path or "the embedded synthetic data"
                raise ValueError(f"the {split} split of {where} has no sequences: training needs train and dev data")
        self.vocab = vocab or build_vocab(data, self.corpora["train"])
        self.datasets: dict[str, PoseDataset] = {}
        median = float(np.median(self.corpora["train"].frame_counts())) if data.skip_frames > 1 else np.inf
        if problem := thinned(median, data.skip_frames, f"data.skip_frames {data.skip_frames}"):
            warnings.warn(problem, stacklevel=2)
        if data.path is not None and not is_manifest(Path(data.path)):  # (synthetic names are the split's own)
            for problem in shared_recordings(data.path, ["train", "dev"]):
                warnings.warn(f"{problem}: training would validate on what it trains on", stacklevel=2)

    def corpus(self, split: str) -> Corpus:
        """The split's corpus, built once and cached: what the pose statistics read before training is what the
        first epoch reads."""
        if split not in self.corpora:
            advice = "training reads train.* and validates on dev.* (a few sentences set apart from train)"
            self.corpora[split] = Cached(build_corpus(self.data_cfg, split, advice))
        return self.corpora[split]

    def dataset(self, split: str) -> PoseDataset:
        if split not in self.datasets:
            self.datasets[split] = PoseDataset(self.corpus(split), self.vocab)
        return self.datasets[split]

    def _sampler(self, split: str, world: int = 1, rank: int = 0) -> BucketBatchSampler:
        train = split == "train"
        return BucketBatchSampler(
            self.dataset(split).frame_counts(), self.training_cfg.batch_size if train else self.eval_batch_size,
            shuffle=train, seed=self.training_cfg.seed, num_replicas=world, rank=rank,
            limit=None if train else self.training_cfg.val_batches,
        )  # fmt: skip

    @functools.cached_property
    def dev_batches(self) -> int:
        """How many dev batches a validation takes, over all ranks (``training.val_batches`` or all): on each
        rank, batch i of the dev loader is batch i · world_size + rank of them, a filler from that many on. The dev
        batches are never shuffled, so this is counted once (every validation step of every rank asks)."""
        return self._sampler("dev").real_batches

    def _loader(self, split: str) -> DataLoader:
        ds = self.dataset(split)
        trainer = self.trainer  # set while Lightning runs this module (None in a plain loop over the loader)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        on_gpu = trainer is not None and trainer.strategy.root_device.type == "cuda"
        sampler = self._sampler(split, world, rank)
        shuffle = split == "train"
        size = self.training_cfg.batch_size
        if shuffle and rank == 0 and size * world > len(ds):  # said: the steps are not what the config suggests
            each = f" × {world} processes" if world > 1 else ""
            warnings.warn(f"training.batch_size {size}{each} > the {len(ds)} training sequences: every step is one "
                          "batch of them all" + (", some repeated to fill each process's" if world > 1 else ""),
                          stacklevel=2)  # fmt: skip
        return DataLoader(
            ds,
            batch_sampler=EpochBatches(sampler, trainer) if shuffle and trainer is not None else sampler,
            collate_fn=Collate(self.vocab.pad_index),
            num_workers=self.training_cfg.num_workers,
            # its own stream for the workers' seeds: starting an epoch's iteration draws none from torch's, which
            # the training draws (timesteps, noise) use, so a resumed run draws what a straight one would
            generator=torch.Generator().manual_seed(self.training_cfg.seed),
            persistent_workers=self.training_cfg.num_workers > 0,
            pin_memory=on_gpu,  # page-locked batches copy to the GPU asynchronously
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev")
