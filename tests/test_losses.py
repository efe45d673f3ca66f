"""The losses (docs/model.md §7) against values worked out by hand, and FGDM.loss's weighted total.

Every expected number is written as the arithmetic that produces it. Padded frames carry huge errors:
a mask that leaked would change the loss by orders of magnitude.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgdm.losses import BoneLoss, joint_loss, length_loss
from fgdm.model import build_model
from fgdm.model.scg import SCGBranch
from fgdm.skeleton import PT50, Skeleton
from helpers import V, batch, tiny

# A 3-joint chain: joint 0 the root, 1 hangs from 0, 2 from 1. Bones (child, parent): (1, 0), (2, 1).
CHAIN = Skeleton(names=("root", "mid", "tip"), parents=(0, 0, 1), parts=(("body", range(3)),))
HUGE = 1e6


# --- L_joint: masked mean |x̂_0 − x_0| -------------------------------------------------------------


def joint_example():
    """B = 2, S = 3 on CHAIN: valid frames (0, 0), (0, 1), (1, 0); the other three are padding."""
    pred = torch.zeros(2, 3, 3, 3)
    target = torch.zeros(2, 3, 3, 3)
    target[0, 0, 0] = torch.tensor([1.0, -2.0, 0.0])  # |err| 1 + 2 + 0 = 3 on joint 0
    target[0, 1, 2] = torch.tensor([0.0, 0.0, 4.0])  # 4 on joint 2
    target[1, 0, 1] = torch.tensor([-0.5, 0.5, 2.0])  # 0.5 + 0.5 + 2 = 3 on joint 1
    target[0, 2] = HUGE  # padding
    pred[1, 1:] = -HUGE  # padding
    frame_mask = torch.tensor([[True, True, False], [True, False, False]])
    return pred, target, frame_mask


def test_joint_loss_is_the_mean_absolute_error_over_valid_frames_joints_and_coordinates():
    pred, target, fm = joint_example()
    # 3 valid frames × 3 joints × 3 coordinates = 27 entries; absolute errors sum to 3 + 4 + 3
    torch.testing.assert_close(joint_loss(pred, target, fm), torch.tensor((3 + 4 + 3) / 27))


def test_joint_loss_with_joint_weights_is_a_weighted_mean_over_joints():
    pred, target, fm = joint_example()
    w = torch.tensor([1.0, 2.0, 0.5])
    # per-joint error sums: joint 0: 3, joint 1: 3, joint 2: 4; denominator 3 frames · Σw (3.5) · 3 coordinates
    expected = (1.0 * 3 + 2.0 * 3 + 0.5 * 4) / (3 * 3.5 * 3)
    torch.testing.assert_close(joint_loss(pred, target, fm, w), torch.tensor(expected))


def test_joint_loss_of_an_all_padded_batch_is_zero_not_nan():
    pred, target, fm = joint_example()
    assert joint_loss(pred, target, torch.zeros_like(fm)) == 0


# --- L_bone: masked mean squared error of bone vectors x_P[j] − x_j (or their directions) ------------


def bone_example():
    """B = 1, S = 2 on CHAIN; frame 1 is padding."""
    pred = torch.zeros(1, 2, 3, 3)
    target = torch.zeros(1, 2, 3, 3)
    pred[0, 0] = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0]])  # bones (−1, 0, 0), (0, −1, 0)
    target[0, 0] = torch.tensor([[0.0, 0, 0], [2, 0, 0], [2, 0, 3]])  # bones (−2, 0, 0), (0, 0, −3)
    pred[0, 1] = torch.tensor([[HUGE, 0, 0], [0, -HUGE, 0], [0, 0, HUGE]])  # padding
    return pred, target, torch.tensor([[True, False]])


def test_bone_loss_in_vector_mode():
    pred, target, fm = bone_example()
    # bone (1, 0): diff (1, 0, 0) → 1; bone (2, 1): diff (0, −1, 3) → 1 + 9; over 1 frame × 2 bones × 3
    torch.testing.assert_close(BoneLoss(CHAIN, "vector")(pred, target, fm), torch.tensor((1 + 1 + 9) / 6))


def test_bone_loss_in_direction_mode():
    pred, target, fm = bone_example()
    # unit bones: pred (−1, 0, 0), (0, −1, 0); target (−1, 0, 0), (0, 0, −1) → diffs 0 and (0, −1, 1) → 2
    torch.testing.assert_close(BoneLoss(CHAIN, "direction")(pred, target, fm), torch.tensor((0 + 1 + 1) / 6))


@pytest.mark.parametrize(("mode", "expected"), [("vector", (0.3**2 + 0.4**2) / 147), ("direction", 1 / 147)])
def test_bone_loss_on_pt50_with_one_moved_joint(mode, expected):
    """PT50 has 49 bones: 1 frame × 49 × 3 = 147 entries. Only the head (joint 0, a leaf under the neck) moves."""
    pred = torch.zeros(1, 2, 50, 3)
    target = torch.zeros(1, 2, 50, 3)
    target[0, 0, 0] = torch.tensor([0.0, 0.3, 0.4])  # head bone (neck − head) = (0, −0.3, −0.4), length 0.5
    target[0, 1] = HUGE * torch.arange(150.0).view(50, 3)  # padding
    # a zero-length predicted bone has direction 0 (no NaN): the direction error is |(0, −0.6, −0.8)|² = 1
    loss = BoneLoss(PT50, mode)(pred, target, torch.tensor([[True, False]]))
    torch.testing.assert_close(loss, torch.tensor(expected))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16), garbage=st.floats(-1e6, 1e6), lengths=st.tuples(st.integers(1, 4), st.integers(0, 4))
)
def test_masked_losses_equal_the_losses_of_the_valid_frames_alone(seed, garbage, lengths):
    """Whatever padded frames hold, each loss equals its value on the valid frames gathered into one sequence."""
    g = torch.Generator().manual_seed(seed)
    pred, target = torch.randn(2, 2, 4, 3, 3, generator=g)
    fm = torch.arange(4)[None] < torch.tensor(lengths)[:, None]
    pred, target = pred.masked_fill(~fm[..., None, None], garbage), target.masked_fill(~fm[..., None, None], -garbage)
    valid_pred, valid_target, all_valid = pred[fm][None], target[fm][None], torch.ones(1, int(fm.sum()), dtype=bool)
    w = torch.tensor([1.0, 3.0, 0.5])
    torch.testing.assert_close(joint_loss(pred, target, fm), joint_loss(valid_pred, valid_target, all_valid))
    torch.testing.assert_close(joint_loss(pred, target, fm, w), joint_loss(valid_pred, valid_target, all_valid, w))
    for mode in ("vector", "direction"):
        bone = BoneLoss(CHAIN, mode)
        torch.testing.assert_close(bone(pred, target, fm), bone(valid_pred, valid_target, all_valid))


# --- the length head's loss: mean |log Ŝ − log S| -------------------------------------------------


def test_length_loss_is_the_mean_absolute_log_ratio():
    log_pred = torch.tensor([math.log(2.0), math.log(8.0) + 0.5, 0.25])
    frames = torch.tensor([4, 8, 0])  # 0 frames counts as 1: log 1 = 0
    expected = (math.log(4 / 2) + 0.5 + 0.25) / 3
    torch.testing.assert_close(length_loss(log_pred, frames), torch.tensor(expected))


# --- L_SCG = mean_b w(t_b) · CTC_b --------------------------------------------------------------------


def constant_scg(per_gloss: bool) -> SCGBranch:
    """An SCG branch whose classifier ignores its input: every output step has p(blank) = 2/22 and
    p(gloss) = 1/22 for each of the V = 20 glosses (logits log 2 and 0; 2 + 20 = 22)."""
    cfg = tiny(**{"model.scg.per_gloss": per_gloss})
    scg = SCGBranch(32, V, cfg.model.scg, cfg.diffusion.timesteps)  # T = 100, α = 10
    with torch.no_grad():
        scg.classifier.weight.zero_()
        scg.classifier.bias.zero_()
        scg.classifier.bias[0] = math.log(2.0)
    return scg


@pytest.mark.parametrize("per_gloss", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_scg_loss_against_hand_counted_ctc_paths(per_gloss, train):
    scg = constant_scg(per_gloss).train(train)
    # sequence 0: 8 of 12 frames valid → 8 → 4 → 2 output steps; target "a"
    #   paths: aa (1·1), a- (1·2), -a (2·1) → P = 5 / 22², CTC = log(484 / 5); t = 0, w = 1
    # sequence 1: 12 frames → 3 steps; target "ab"
    #   paths: aab, abb (1 each), ab-, a-b, -ab (2 each) → P = 8 / 22³, CTC = log(10648 / 8); t = 50, w = e^(−5)
    # sequence 2: 4 frames → 1 step; target "abc" cannot be aligned → contributes 0 (zero_infinity)
    gloss = torch.tensor([[5, 1, 1], [5, 6, 1], [5, 6, 7]])
    gloss_mask = gloss != 1
    frame_mask = torch.arange(12)[None] < torch.tensor([8, 12, 4])[:, None]
    t = torch.tensor([0, 50, 99])
    k = (1, 2, 3) if per_gloss else (1, 1, 1)
    expected = (math.log(484 / 5) / k[0] + math.exp(-5) * math.log(10648 / 8) / k[1] + 0.0) / 3

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 12, 32, generator=g) * frame_mask[..., None]
    torch.testing.assert_close(scg.loss(feats, frame_mask, gloss, gloss_mask, t), torch.tensor(expected))
    garbage = feats + HUGE * (~frame_mask)[..., None]  # padded frames must not even leak a NaN
    torch.testing.assert_close(scg.loss(garbage, frame_mask, gloss, gloss_mask, t), torch.tensor(expected))


# --- FGDM.loss: L = L_joint + bone_weight·L_bone + scg_weight·L_SCG + length_weight·L_length ---------


@pytest.mark.parametrize(
    ("joint_space", "hand_weight", "bone_mode"), [("pose", 1.0, "vector"), ("model", 3.0, "direction")]
)
def test_the_total_loss_is_the_configured_weighted_sum(joint_space, hand_weight, bone_mode):
    weights = {"loss.bone_weight": 0.7, "loss.scg_weight": 0.3, "loss.length_weight": 0.2}
    cfg = tiny(**weights, **{"loss.joint_space": joint_space, "loss.hand_weight": hand_weight,
                             "loss.bone_mode": bone_mode, "diffusion.data_scale": 2.0})  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg, V).train()
    pose, fm, gloss, gm = batch()
    terms = model.loss(pose, fm, gloss, gm, generator=torch.Generator().manual_seed(0))
    assert min(terms.joint, terms.bone, terms.scg, terms.length) > 0  # every term takes part
    expected = terms.joint + 0.7 * terms.bone + 0.3 * terms.scg + 0.2 * terms.length
    torch.testing.assert_close(terms.total, expected, rtol=1e-6, atol=0)


def test_disabled_terms_are_zero_and_left_out_of_the_total():
    cfg = tiny(**{"loss.bone_weight": 0.7, "loss.scg_weight": 0.3, "model.length_head": False})
    torch.manual_seed(0)
    model = build_model(cfg, V, with_scg=False).train()
    pose, fm, gloss, gm = batch()
    terms = model.loss(pose, fm, gloss, gm, generator=torch.Generator().manual_seed(0))
    assert terms.scg == 0 and terms.length == 0 and terms.bone > 0
    torch.testing.assert_close(terms.total, terms.joint + 0.7 * terms.bone, rtol=1e-6, atol=0)
