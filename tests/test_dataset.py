from collections import Counter

import numpy as np
import torch

from fgdm.config import DataConfig, TrainingConfig
from fgdm.data.corpus import Cached, PTCorpus, Subsampled
from fgdm.data.dataset import BucketBatchSampler, Collate, PoseDataset
from fgdm.data.synth.corpus import SynthCorpus
from fgdm.data.vocab import Vocabulary


def test_collate_pads_and_masks(synth_dir):
    corpus = PTCorpus.read(synth_dir, "dev")
    ds = PoseDataset(corpus, Vocabulary.from_file(synth_dir / "src_vocab.txt"))
    batch = Collate()([ds[0], ds[1], ds[2]])
    lengths = [len(corpus[i].pose) for i in range(3)]
    glosses = [len(corpus[i].glosses) for i in range(3)]
    assert batch.pose.shape == (3, max(lengths), 50, 3)
    assert batch.frame_mask.sum(1).tolist() == lengths
    assert batch.gloss_mask.sum(1).tolist() == glosses
    for b in range(3):
        assert torch.equal(batch.pose[b, : lengths[b]], torch.from_numpy(corpus[b].pose))
        assert batch.pose[b, lengths[b] :].abs().sum() == 0
        assert (batch.gloss[b, glosses[b] :] == Vocabulary.pad_index).all()
    assert batch.index.tolist() == [0, 1, 2]


def test_bucketing_covers_every_index_once_and_reduces_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(40, 200, 500)
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=1)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(500))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    naive = sum(16 * lengths[i : i + 16].max() for i in range(0, 500, 16))
    assert padded < 0.75 * naive
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_distributed_ranks_get_disjoint_equal_shares():
    lengths = np.arange(100)
    shards = [list(BucketBatchSampler(lengths, 8, seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1])
    seen = [i for shard in shards for b in shard for i in b]
    assert set(seen) == set(range(100))


class CountingCorpus:
    """A synthetic corpus that counts how often each sample is rendered."""

    def __init__(self, corpus):
        self.corpus, self.renders = corpus, Counter()

    def __len__(self):
        return len(self.corpus)

    def __getitem__(self, index):
        self.renders[index] += 1
        return self.corpus[index]

    def gloss_sequences(self):
        return self.corpus.gloss_sequences()

    def frame_counts(self):
        return self.corpus.frame_counts()

    def texts(self):
        return self.corpus.texts()


def test_cached_corpus_loads_each_sample_once_and_passes_the_rest_through():
    counting = CountingCorpus(Subsampled(SynthCorpus(6, "dev", seed=3), 2))
    cached = Cached.of(counting)
    assert Cached.of(cached) is cached and len(cached) == 6
    first = [cached[i] for i in range(6)]
    again = [cached[i] for i in range(6)]
    assert all(a is b for a, b in zip(first, again, strict=True)) and set(counting.renders.values()) == {1}
    assert counting.renders.total() == 6
    assert cached.texts() == SynthCorpus(6, "dev", seed=3).texts() == [s.text for s in first]
    assert cached.gloss_sequences() == [s.glosses for s in first]
    assert cached.frame_counts().tolist() == [len(s.pose) for s in first] == counting.frame_counts().tolist()
    assert counting.renders.total() == 6  # none of them rendered a pose
    part = Cached(counting)
    part[0]
    assert part.frame_counts().tolist() == counting.frame_counts().tolist()  # not all loaded: asks the corpus


def test_training_renders_each_synthetic_sample_once(monkeypatch):
    """The pose statistics read the training split before the first epoch; the epoch reuses what they read."""
    from fgdm.data import sources
    from fgdm.training.data import PoseDataModule
    from fgdm.training.generator import pose_sample

    built = []
    monkeypatch.setattr(sources, "SynthCorpus", lambda *a, **k: built.append(CountingCorpus(SynthCorpus(*a, **k)))
                        or built[-1])  # fmt: skip
    data = PoseDataModule(DataConfig(synth_train=20, synth_dev=4), TrainingConfig(batch_size=8), eval_batch_size=4)
    stats = list(pose_sample(data.corpora["train"]))
    assert len(stats) == 20
    loader = data.train_dataloader()
    for _ in range(2):  # two epochs
        assert sorted(int(i) for batch in loader for i in batch.index) == list(range(20))
    train = next(c for c in built if c.corpus.split == "train")
    assert dict(train.renders) == dict.fromkeys(range(20), 1)


def test_each_process_of_a_data_parallel_run_trains_on_its_own_share():
    from types import SimpleNamespace

    from fgdm.training.data import PoseDataModule

    data = PoseDataModule(DataConfig(synth_train=16, synth_dev=2), TrainingConfig(batch_size=2), eval_batch_size=2)
    shares = []
    for rank in (0, 1):  # what Lightning's trainer tells the module under ddp on two processes
        data.trainer = SimpleNamespace(world_size=2, global_rank=rank, global_step=0,
                                       strategy=SimpleNamespace(root_device=torch.device("cpu")))  # fmt: skip
        shares.append([int(i) for batch in data.train_dataloader() for i in batch.index])
    assert len(shares[0]) == len(shares[1]) == 8 and sorted(shares[0] + shares[1]) == list(range(16))


def test_a_skip_that_leaves_no_signing_is_warned_of():
    import warnings

    import pytest

    from fgdm.training.data import PoseDataModule

    with pytest.warns(UserWarning, match=r"data.skip_frames 1000 leaves the training sequences 1 frame long"):
        PoseDataModule(DataConfig(synth_train=4, synth_dev=2, skip_frames=1000), TrainingConfig(), eval_batch_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the tests' and the demo's rates say nothing
        PoseDataModule(DataConfig(synth_train=4, synth_dev=2, skip_frames=3), TrainingConfig(), eval_batch_size=2)
