"""The data module both trainers share: glosses and poses of a corpus, batched by length."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from fgdm.config import DataConfig, TrainingConfig
from fgdm.data.corpus import Cached, Corpus
from fgdm.data.dataset import BucketBatchSampler, Collate, PoseDataset
from fgdm.data.sources import build_corpus, build_vocab
from fgdm.data.vocab import Vocabulary


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

    def corpus(self, split: str) -> Corpus:
        """The split's corpus, built once and cached: what the pose statistics read before training is what the
        first epoch reads."""
        if split not in self.corpora:
            self.corpora[split] = Cached(build_corpus(self.data_cfg, split))
        return self.corpora[split]

    def dataset(self, split: str) -> PoseDataset:
        if split not in self.datasets:
            self.datasets[split] = PoseDataset(self.corpus(split), self.vocab)
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        ds = self.dataset(split)
        trainer = self._trainer if hasattr(self, "_trainer") else None
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        on_gpu = trainer is not None and trainer.strategy.root_device.type == "cuda"
        sampler = BucketBatchSampler(
            ds.frame_counts(), batch_size, shuffle=shuffle, seed=self.training_cfg.seed, num_replicas=world, rank=rank
        )
        return DataLoader(
            ds,
            batch_sampler=sampler,
            collate_fn=Collate(self.vocab.pad_index),
            num_workers=self.training_cfg.num_workers,
            persistent_workers=self.training_cfg.num_workers > 0,
            pin_memory=on_gpu,  # page-locked batches copy to the GPU asynchronously
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.training_cfg.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", False, self.eval_batch_size)
