"""The FGDM wrapper (build_model, FGDM.loss, FGDM.generate) on tiny models; loss weights: test_losses.py."""

import warnings

import pytest
import torch

from fgdm.model import build_model
from fgdm.model.denoiser import DenoiserOutput
from helpers import V, batch, tiny


def test_a_tiny_model_overfits_one_synthetic_batch():
    """One fixed batch — poses, glosses, timesteps and noise — is memorised: the loss falls ≥ 10×."""
    from fgdm.data.dataset import Collate, PoseDataset
    from fgdm.data.synth.corpus import SynthCorpus
    from fgdm.data.vocab import Vocabulary

    corpus = SynthCorpus(4, "train", seed=0)
    vocab = Vocabulary.from_corpus(corpus.gloss_sequences())
    dataset = PoseDataset(corpus, vocab)
    b = Collate()([dataset[i] for i in range(4)])
    pose, fm = b.pose[:, :32], b.frame_mask[:, :32]
    torch.manual_seed(0)
    model = build_model(tiny(**{"model.width": 64, "model.gloss_encoder.ff": 128, "model.general.ff": 128}), len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        terms = model.loss(pose, fm, b.gloss, b.gloss_mask, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        losses.append(float(terms.total.detach()))
    first, last = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert last < first / 10, (first, last)


def test_data_scale_keeps_losses_and_samples_in_pose_units():
    pose, fm, gloss, gm = batch()
    scale = 5.0
    model = build_model(tiny(**{"diffusion.data_scale": scale, "model.scg.enabled": False}), V).eval()

    class Oracle(torch.nn.Module):
        """Predicts the scaled clean poses exactly, as a perfect denoiser would."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.length_head = None

        def encode_glosses(self, gloss, gloss_mask):
            return torch.zeros(gloss.shape[0], gloss.shape[1], 4)

        def forward(self, x_t, t, gloss, gloss_mask, frame_mask, encoding=None):
            return DenoiserOutput(x0=pose[:, : x_t.shape[1]] * scale, features=torch.zeros(1))

    model.denoiser = Oracle()
    terms = model.loss(pose, fm, gloss, gm)
    assert terms.joint < 1e-8 and terms.bone < 1e-12  # measured after dividing the prediction by the scale
    sample, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample, pose)


def test_gloss_dropout_replaces_valid_glosses_by_unk_and_keeps_padding():
    from fgdm.data.vocab import Vocabulary
    from fgdm.model.fgdm import with_unknowns

    g = torch.Generator().manual_seed(0)
    gloss = torch.randint(4, V, (64, 40), generator=g)
    mask = torch.arange(40)[None] < torch.randint(1, 41, (64, 1), generator=g)
    gloss = gloss.masked_fill(~mask, Vocabulary.pad_index)
    assert with_unknowns(gloss, mask, 0.0) is gloss
    out = with_unknowns(gloss, mask, 0.3, torch.Generator().manual_seed(1))
    changed = out != gloss
    assert (out[changed] == Vocabulary.unk_index).all()
    assert not changed[~mask].any()  # padding stays padding
    assert abs(changed[mask].float().mean().item() - 0.3) < 0.03
    torch.testing.assert_close(out, with_unknowns(gloss, mask, 0.3, torch.Generator().manual_seed(1)))


def test_gloss_dropout_trains_the_unk_embedding_and_keeps_scg_targets():
    """With ``unk_rate`` the denoiser sees <unk> and its embedding learns; the SCG branch is still scored
    against the true glosses."""
    from fgdm.data.vocab import Vocabulary

    pose, fm, gloss, gm = batch(B=4, L=6)
    assert not (gloss == Vocabulary.unk_index).any()
    model = build_model(tiny(), V)
    seen, scg_loss = [], model.scg.loss

    def spy(features, frame_mask, targets, target_mask, t, counts):
        seen.append(targets.clone())
        return scg_loss(features, frame_mask, targets, target_mask, t, counts)

    model.scg.loss = spy
    unk_row = model.denoiser.gloss_encoder.embed.weight
    for rate, learns in ((0.0, False), (0.5, True)):
        terms = model.loss(pose, fm, gloss, gm, generator=torch.Generator().manual_seed(0), unk_rate=rate)
        (grad,) = torch.autograd.grad(terms.joint, unk_row)
        assert bool(grad[Vocabulary.unk_index].abs().sum() > 0) == learns
        torch.testing.assert_close(seen[-1], gloss)


def test_training_suggests_gloss_dropout_when_many_dev_glosses_are_unseen():
    from fgdm.data.dataset import PoseDataset
    from fgdm.data.synth.corpus import SynthCorpus
    from fgdm.data.vocab import UnknownTokenWarning, Vocabulary
    from fgdm.training.generator import suggest_gloss_dropout

    train, dev = SynthCorpus(3, "train", seed=0), SynthCorpus(20, "dev", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownTokenWarning)  # the dataset's own count of <unk>s
        few = PoseDataset(dev, Vocabulary.from_corpus(train.gloss_sequences()))  # most dev glosses unseen
        every = PoseDataset(dev, Vocabulary.from_corpus(dev.gloss_sequences()))
    assert sum(few.unknown.values()) > 0 and not every.unknown
    with pytest.warns(UnknownTokenWarning, match=r"of the dev split's \d+ glosses .* training.unk_rate"):
        suggest_gloss_dropout(few, unk_rate=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        suggest_gloss_dropout(few, unk_rate=0.25)  # already on: silent
        suggest_gloss_dropout(every, unk_rate=0.0)  # nothing unseen: silent
