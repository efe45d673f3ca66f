"""The denoiser end to end (SPEC §4): padding is invisible, causal attention never looks ahead."""

import pytest
import torch

from fgdm.model import build_model
from helpers import V, activate, batch, tiny


@pytest.mark.parametrize("focal", [True, False])
def test_padding_changes_no_valid_output(focal):
    model = activate(build_model(tiny(**{"model.focal.enabled": focal}), V)).eval()
    pose, fm, gloss, gm = batch()
    t = torch.tensor([5, 50, 99])
    out = model.denoiser(pose, t, gloss, gm, fm)
    noisy = pose + 5 * (~fm)[..., None, None] * torch.randn_like(pose)
    other_gloss = gloss.masked_fill(~gm, 7)
    out2 = model.denoiser(noisy, t, other_gloss, gm, fm)
    valid = fm[..., None, None].expand_as(out.x0)
    torch.testing.assert_close(out.x0[valid], out2.x0[valid])
    assert (out2.x0[~valid] == 0).all()
    # the SCG loss (masked batch norm, packed LSTM) ignores padding as well
    model.train()
    feats = out.features.detach()
    l1 = model.scg.loss(feats, fm, gloss, gm, t)
    l2 = model.scg.loss(feats + 3 * (~fm)[..., None], fm, other_gloss, gm, t)
    torch.testing.assert_close(l1, l2)


def test_causal_attention_never_looks_ahead():
    model = build_model(tiny(**{"model.focal.enabled": False, "model.general.attention": "causal"}), V).eval()
    pose, fm, gloss, gm = batch()
    fm[:] = True
    t = torch.tensor([10, 10, 10])
    a = model.denoiser(pose, t, gloss, gm, fm).x0
    later = pose.clone()
    later[:, 6:] += 1.0
    b = model.denoiser(later, t, gloss, gm, fm).x0
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])
