"""Iconicity disentanglement (docs/model.md §3): per-joint features from a joint and its parent only."""

import torch

from fgdm.model.iconicity import IconicityDisentanglement
from fgdm.skeleton import PT50


def test_id_rows_depend_only_on_their_joint_and_its_parent():
    idm = IconicityDisentanglement(PT50)
    x = torch.randn(1, 1, 50, 3, requires_grad=True)
    feats = idm(x)
    assert feats.shape == (1, 1, 50, 7)
    P = PT50.parents
    for j in range(50):
        (grad,) = torch.autograd.grad(feats[0, 0, j].sum(), x, retain_graph=True)
        touched = set(torch.nonzero(grad[0, 0].abs().sum(-1)).flatten().tolist())
        assert touched <= {j, P[j]} and j in touched
    torch.testing.assert_close(feats[0, 0, :, :3], x[0, 0])  # node j carries joint j's position


def test_id_zero_length_bones_give_no_nan():
    idm = IconicityDisentanglement(PT50)
    x = torch.randn(2, 3, 50, 3)
    x[:, :, 8] = x[:, :, 7]  # hand root on the wrist
    x.requires_grad_(True)
    feats = idm(x)
    assert torch.isfinite(feats).all()
    assert (feats[:, :, 8, 3:] == 0).all() and (feats[:, :, 1, 3:] == 0).all()  # zero bone; the root
    feats.sum().backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(feats[0, 0, 3, 3:4], (x[0, 0, 2] - x[0, 0, 3]).norm().view(1))
