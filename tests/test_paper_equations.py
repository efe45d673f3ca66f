"""The three places where fgdm once departed from the paper, pinned to the paper's equations, and the
representation the diffusion works in (fgdm/representation.py)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgdm.config import DiffusionConfig
from fgdm.model import build_model
from fgdm.model.denoiser import DenoiserOutput
from fgdm.model.scg import SCGBranch, ctc_weight
from fgdm.representation import PoseNormalizer, hand_anchors
from fgdm.skeleton import PT50
from helpers import V, batch, tiny

# --- A_b: D^-1 A, row-normalised on the receiving joint ----------------------------------------


@pytest.mark.parametrize("norm", ["receiving", "sending"])
def test_the_model_uses_the_configured_prior_normalisation(norm):
    model = build_model(tiny(**{"model.focal.prior_norm": norm}), V)
    prior = model.denoiser.focal.blocks[0].gcn.prior
    torch.testing.assert_close(prior, torch.as_tensor(PT50.partition_adjacency(norm)))
    axis = 1 if norm == "receiving" else 0  # [k, v, u]: v receives, u sends
    torch.testing.assert_close(prior.sum(0).sum(axis), torch.ones(50))


def test_receiving_normalisation_is_the_default():
    model = build_model(tiny(), V)
    torch.testing.assert_close(model.denoiser.focal.blocks[0].gcn.prior.sum(0).sum(1), torch.ones(50))


# --- L_SCG = mean_b w(t_b) · CTC_b (Eq. 17–18) -----------------------------------------------------


@pytest.mark.parametrize("per_gloss", [False, True])
def test_the_scg_loss_is_w_t_times_ctc_per_sample(per_gloss):
    cfg = tiny(**{"model.scg.per_gloss": per_gloss})
    scg = SCGBranch(32, V, cfg.model.scg, cfg.diffusion.timesteps).eval()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 20, 32, generator=g)
    fm = torch.ones(3, 20, dtype=torch.bool)
    fm[2, 14:] = False
    gloss = torch.tensor([[5, 6, 7, 8], [9, 10, 1, 1], [11, 1, 1, 1]])
    gm = gloss != 1
    t = torch.tensor([0, 30, 90])
    log_probs, lengths = scg(feats, fm)
    expected = []
    for b in range(3):
        n, k = int(lengths[b]), int(gm[b].sum())
        ctc = torch.nn.functional.ctc_loss(
            log_probs[b, :n], gloss[b, :k] + 1, torch.tensor([n]), torch.tensor([k]), blank=0, reduction="sum"
        )
        expected.append(ctc_weight(t[b : b + 1], 100, 10.0)[0] * ctc / (k if per_gloss else 1))
    torch.testing.assert_close(scg.loss(feats, fm, gloss, gm, t), torch.stack(expected).mean())


# --- the length head: detached unless configured ---------------------------------------------------


@pytest.mark.parametrize("grad", [False, True])
def test_the_length_loss_trains_the_gloss_encoder_only_when_configured(grad):
    model = build_model(tiny(**{"model.length_head_grad": grad, "model.scg.enabled": False}), V)
    pose, fm, gloss, gm = batch()
    terms = model.loss(pose, fm, gloss, gm, generator=torch.Generator().manual_seed(0))
    encoder = list(model.denoiser.gloss_encoder.parameters())
    head = list(model.denoiser.length_head.parameters())
    grads = torch.autograd.grad(terms.length, encoder + head, allow_unused=True)
    enc_grads, head_grads = grads[: len(encoder)], grads[len(encoder) :]
    assert all(gr is not None and gr.abs().sum() > 0 for gr in head_grads)  # the head always learns
    reaches_encoder = any(gr is not None and gr.abs().sum() > 0 for gr in enc_grads)
    assert reaches_encoder == grad


# --- the representation ------------------------------------------------------------------------


def _fitted(standardise: bool, hands_relative: bool, scale: float = 1.0) -> PoseNormalizer:
    norm = PoseNormalizer(DiffusionConfig(standardise=standardise, hands_relative=hands_relative, data_scale=scale))
    if standardise:
        g = np.random.default_rng(0)
        norm.fit([g.normal(0, 0.2, (30, 50, 3)) + g.normal(0, 1, (1, 50, 3)) for _ in range(5)])
    return norm.double()


@settings(max_examples=30, deadline=None)
@given(
    standardise=st.booleans(),
    hands_relative=st.booleans(),
    scale=st.sampled_from([1.0, 5.0, 0.3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_normalise_then_denormalise_is_exact(standardise, hands_relative, scale, seed):
    norm = _fitted(standardise, hands_relative, scale)
    x = torch.randn(2, 7, 50, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(norm.decode(norm.encode(x)), x, rtol=0, atol=1e-12)
    z = torch.randn_like(x)
    torch.testing.assert_close(norm.encode(norm.decode(z)), z, rtol=0, atol=1e-12)


def test_hands_are_relative_to_the_wrist_they_hang_from():
    assert [(j.start, j.stop, w) for j, w in hand_anchors(PT50)] == [(8, 29, 7), (29, 50, 4)]
    norm = _fitted(False, True)
    x = torch.randn(4, 50, 3, dtype=torch.float64)
    r = norm.encode(x)
    torch.testing.assert_close(r[:, :8], x[:, :8])  # the body is untouched
    torch.testing.assert_close(r[:, 8:29], x[:, 8:29] - x[:, 7:8])
    torch.testing.assert_close(r[:, 29:], x[:, 29:] - x[:, 4:5])
    moved = x.clone()
    moved[:, list(range(4, 5)) + list(range(29, 50))] += 0.3  # move the right wrist and its hand together
    torch.testing.assert_close(norm.encode(moved)[:, 29:], r[:, 29:])  # finger shape unchanged


def test_standardised_training_frames_have_zero_mean_and_unit_spread():
    g = np.random.default_rng(1)
    poses = [g.normal(0, 1, (40, 50, 3)) * np.linspace(0.02, 0.5, 150).reshape(50, 3) + 2.0 for _ in range(6)]
    for p in poses:  # the neck never moves, as in PT data
        p[:, 1] = 0.0
    norm = PoseNormalizer(DiffusionConfig(standardise=True)).double()
    norm.fit(poses)
    z = norm.encode(torch.as_tensor(np.concatenate(poses)))
    moving = torch.ones(50, 3, dtype=torch.bool)
    moving[1] = False
    torch.testing.assert_close(z.mean(0)[moving], torch.zeros(49 * 3, dtype=torch.float64), rtol=0, atol=1e-9)
    torch.testing.assert_close(z.std(0, unbiased=False)[moving], torch.ones(49 * 3, dtype=torch.float64))
    assert (norm.std[1] > 0).all() and (z[:, 1] == 0).all()  # a floored σ: no division by zero


def test_coordinates_that_never_move_are_sampled_at_their_value():
    """The neck (pinned at the origin) and, in 2D data, every z: a sample holds them instead of the denoiser's
    error around them; the loss's decode does not, and checkpoints from before the record load holding none."""
    g = np.random.default_rng(2)
    poses = [g.normal(0, 0.3, (30, 50, 3)) for _ in range(4)]
    for p in poses:
        p[:, 1] = 0.0  # the neck
        p[..., 2] = 0.0  # 2D: z = 0 everywhere
    norm = PoseNormalizer(DiffusionConfig(standardise=True, hands_relative=True)).double()
    norm.fit(poses)
    expected = torch.zeros(50, 3, dtype=torch.bool)
    expected[:, 2], expected[1] = True, True
    assert torch.equal(norm.fixed, expected)
    z = torch.randn(2, 5, 50, 3, dtype=torch.float64)  # a denoiser's output: never exactly on the constants
    held, free = norm.decode(z, hold=True), norm.decode(z)
    assert (held[..., 2] == 0).all() and (held[:, :, 1] == 0).all()
    assert (free[..., 2] != 0).all() and (free[:, :, 1] != 0).all()
    moving = ~expected
    torch.testing.assert_close(held[:, :, moving[:, 0], 0], free[:, :, moving[:, 0], 0], rtol=0, atol=0)
    old = {k: v for k, v in norm.state_dict().items() if k != "fixed"}  # a checkpoint from before the record
    fresh = PoseNormalizer(DiffusionConfig(standardise=True, hands_relative=True)).double()
    fresh.load_state_dict(old)
    assert not fresh.fixed.any() and torch.equal(fresh.decode(z, hold=True), free)


def test_standardising_poses_that_do_not_move_is_refused_with_the_reason():
    norm = PoseNormalizer(DiffusionConfig(standardise=True))
    still = [np.ones((10, 50, 3)) * np.arange(50)[:, None] / 50 for _ in range(2)]  # the same frame throughout
    with pytest.raises(ValueError, match=r"the training poses do not move: 150 of their 150 coordinates .* all 20"):
        norm.fit(still)


class Oracle(torch.nn.Module):
    """Predicts the given clean representation exactly, as a perfect denoiser would."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.length_head = None

    def encode_glosses(self, gloss, gloss_mask):
        return torch.zeros(gloss.shape[0], gloss.shape[1], 4)

    def forward(self, x_t, t, gloss, gloss_mask, frame_mask, encoding=None):
        return DenoiserOutput(x0=self.target[:, : x_t.shape[1]], features=torch.zeros(1))


def test_a_perfect_denoiser_gives_zero_loss_and_exact_samples_in_every_representation():
    pose, fm, gloss, gm = batch()
    for standardise, relative in ((True, True), (True, False), (False, True)):
        model = build_model(
            tiny(**{"diffusion.standardise": standardise, "diffusion.hands_relative": relative,
                    "model.scg.enabled": False, "loss.joint_space": "model"}), V,
        ).eval()  # fmt: skip
        model.normalizer.fit([p[m].numpy() for p, m in zip(pose, fm, strict=True)])
        target = model.normalizer.encode(pose) * fm[..., None, None]

        model.denoiser = Oracle(target)
        terms = model.loss(pose, fm, gloss, gm)
        assert terms.joint < 1e-6 and terms.bone < 1e-10
        sample, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(sample, pose, rtol=0, atol=1e-5)


def test_the_hand_weight_tilts_the_joint_loss_towards_the_hands():
    from fgdm.losses import joint_loss

    pred, target = torch.zeros(1, 2, 50, 3), torch.zeros(1, 2, 50, 3)
    pred[..., 8:, :] = 1.0  # every hand coordinate off by one, the body exact
    fm = torch.ones(1, 2, dtype=torch.bool)
    assert float(joint_loss(pred, target, fm)) == pytest.approx(42 / 50)
    w = torch.ones(50)
    w[8:] = 3.0
    assert float(joint_loss(pred, target, fm, w)) == pytest.approx(3 * 42 / (8 + 3 * 42))


def test_the_counter_makes_frames_depend_on_their_progress_but_not_on_padding():
    model = build_model(tiny(**{"model.counter": True}), V).eval()
    pose, fm, gloss, gm = batch()
    t = torch.tensor([5, 50, 99])
    out = model.denoiser(pose, t, gloss, gm, fm)
    padded = torch.cat([pose, torch.zeros_like(pose[:, :3])], 1)
    fm2 = torch.cat([fm, torch.zeros_like(fm[:, :3])], 1)
    out2 = model.denoiser(padded, t, gloss, gm, fm2)
    torch.testing.assert_close(out2.x0[:, : pose.shape[1]], out.x0)  # padding is not progress
    shorter = fm.clone()
    shorter[0, -2:] = False  # the same first frames, in a shorter sequence: they are further along it
    out3 = model.denoiser(pose * shorter[..., None, None], t, gloss, gm, shorter)
    assert not torch.allclose(out3.x0[0, :3], out.x0[0, :3])
