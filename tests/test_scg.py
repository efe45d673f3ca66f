"""The SCG branch (SPEC §5): its w(t) weighting and its lengths; hand-worked loss values: test_losses.py."""

import math

import pytest
import torch

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
