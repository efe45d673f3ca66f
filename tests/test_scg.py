"""The SCG branch (docs/model.md §5): its w(t) weighting and its lengths; hand-worked loss values: test_losses.py."""

import math

import pytest
import torch

from fgdm.data.dataset import Batch
from fgdm.model.scg import SCGBranch, ctc_weight
from helpers import V, tiny


def test_scg_weight_follows_exp_minus_alpha_t_over_big_t():
    t = torch.tensor([0, 250, 500, 999])
    torch.testing.assert_close(ctc_weight(t, 1000, 10.0), torch.exp(-10.0 * t.float() / 1000))
    cfg = tiny()
    scg = SCGBranch(32, V, cfg.model.scg, cfg.diffusion.timesteps).eval()
    feats = torch.randn(1, 16, 32)
    fm = torch.ones(1, 16, dtype=torch.bool)
    gloss, gm = torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.bool)
    l0 = scg.loss(feats, fm, gloss, gm, torch.tensor([0]))
    l50 = scg.loss(feats, fm, gloss, gm, torch.tensor([50]))
    torch.testing.assert_close(l50 / l0, torch.tensor(math.exp(-10 * 50 / 100)))


@pytest.mark.parametrize("frames", [1, 2, 3, 5, 16])
def test_scg_handles_any_length_without_nan(frames):
    cfg = tiny()
    scg = SCGBranch(32, V, cfg.model.scg, cfg.diffusion.timesteps).train()
    feats = torch.randn(2, frames, 32, requires_grad=True)
    fm = torch.ones(2, frames, dtype=torch.bool)
    gloss = torch.tensor([[5, 6, 7, 8, 9, 10], [5, 1, 1, 1, 1, 1]])
    gm = gloss != 1
    loss = scg.loss(feats, fm, gloss, gm, torch.tensor([0, 0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feats.grad).all()
    _, lengths = scg(feats, fm)
    assert lengths.tolist() == [SCGBranch.output_length(frames)] * 2 and lengths.min() >= 1


def test_the_loss_reads_its_lengths_on_the_host_once_and_as_forward_computes_them():
    """loss() copies the frame and gloss counts to the host together (one wait on a GPU, not three), or takes a
    batch's (made on the host: no wait); the value is the CTC over forward's own lengths, for every frame count
    from 0 up."""
    cfg = tiny()
    scg = SCGBranch(32, V, cfg.model.scg, cfg.diffusion.timesteps).eval()
    torch.manual_seed(0)
    frames = torch.arange(14)  # one sequence of each length 0 … 13, padded to 13
    fm = torch.arange(13)[None] < frames[:, None]
    feats = torch.randn(len(frames), 13, 32)
    gloss = torch.randint(4, V, (len(frames), 3))
    gm = torch.arange(3)[None] < (frames % 3 + 1)[:, None]
    t = torch.zeros(len(frames), dtype=torch.long)
    log_probs, lengths = scg(feats, fm)
    targets = (gloss + 1).masked_fill(~gm, 0)
    per_sample = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, lengths, gm.sum(1), blank=0,
                                              reduction="none", zero_infinity=True)  # fmt: skip
    torch.testing.assert_close(scg.loss(feats, fm, gloss, gm, t), per_sample.mean())
    assert lengths.tolist() == [SCGBranch.output_length(int(n)) for n in frames]
    batch = Batch(gloss, gm, torch.zeros(len(frames), 13, 50, 3), fm, [""] * 14, [""] * 14, torch.arange(14))
    assert batch.counts.tolist() == [[int(n), int(n) % 3 + 1] for n in frames]
    torch.testing.assert_close(scg.loss(feats, fm, gloss, gm, t, batch.counts), per_sample.mean(), rtol=0, atol=0)
