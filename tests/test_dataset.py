import numpy as np
import torch

from fgdm.data.corpus import PTCorpus
from fgdm.data.dataset import BucketBatchSampler, Collate, PoseDataset
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
