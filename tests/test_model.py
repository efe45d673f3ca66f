"""Contracts of each equation of the model (SPEC §3–7), on tiny dimensions."""

import math

import pytest
import torch

from fgdm.config import from_dict, load_config
from fgdm.diffusion import Diffusion, cosine_alphas_cumprod
from fgdm.model import build_model
from fgdm.model.focal import ASGCN
from fgdm.model.iconicity import IconicityDisentanglement
from fgdm.model.scg import SCGBranch, ctc_weight
from fgdm.model.summary import parameter_counts
from fgdm.skeleton import PT50

V = 20


def tiny(**overrides):
    raw = {
        "model": {
            "width": 32,
            "gloss_encoder": {"layers": 1, "heads": 2, "ff": 64},
            "focal": {"layers": 2, "width": 8, "neighbors": 2, "tcn_kernel": 3},
            "general": {"layers": 1, "heads": 2, "ff": 64, "dropout": 0.0},
            "scg": {"conv_width": 16, "lstm_hidden": 8, "lstm_layers": 1},
        },
        "diffusion": {"timesteps": 100},
    }
    for key, value in overrides.items():
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return from_dict(raw)


def batch(B=3, S=12, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(B, S, 50, 3, generator=g) * 0.2
    frame_mask = torch.ones(B, S, dtype=torch.bool)
    frame_mask[1, S - 4 :] = False
    frame_mask[2, S - 7 :] = False
    gloss = torch.randint(4, V, (B, L), generator=g)
    gloss_mask = torch.ones(B, L, dtype=torch.bool)
    gloss_mask[1, L - 1 :] = False
    gloss_mask[2, L - 2 :] = False
    gloss[~gloss_mask] = 1
    return pose * frame_mask[..., None, None], frame_mask, gloss, gloss_mask


def activate(model, seed=0):
    """Randomises the zero-initialised parameters so every path carries signal."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if any(k in name for k in ("aggregate", "separation", "prior_offset")):
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


# --- iconicity disentanglement ---------------------------------------------------------------


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


# --- ASGCN -----------------------------------------------------------------------------------


def asgcn_inputs(B=2, S=10, J=50, D=8, L=3, Dg=32):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(B, S, J, D, generator=g), torch.randn(B, L, Dg, generator=g),
            torch.ones(B, S, dtype=torch.bool), torch.ones(B, L, dtype=torch.bool))  # fmt: skip


def test_contextual_correlation_is_exactly_zero_at_initialisation():
    cfg = tiny().model.focal
    gcn = ASGCN(torch.as_tensor(PT50.partition_adjacency()), 8, 32, cfg)
    h, cond, fm, gm = asgcn_inputs()
    assert (gcn.contextual_adjacency(h, fm) == 0).all()
    A = gcn.adjacency(h, cond, fm, gm)
    torch.testing.assert_close(A, torch.as_tensor(PT50.partition_adjacency()).expand_as(A), rtol=0, atol=0)


def test_semantic_mask_starts_at_one_and_stays_in_0_2():
    cfg = tiny().model.focal
    gcn = ASGCN(torch.as_tensor(PT50.partition_adjacency()), 8, 32, cfg)
    h, cond, _, gm = asgcn_inputs()
    assert (gcn.semantic_mask(h, cond, gm) == 1).all()
    with torch.no_grad():
        gcn.separation_weight.fill_(50.0)
        gcn.separation_bias.fill_(-3.0)
    M = gcn.semantic_mask(h * 10, cond * 10, gm)
    assert M.min() >= 0 and M.max() <= 2 and M.std() > 0.1


def test_contextual_window_matches_a_direct_loop():
    """A_a from the batched implementation equals Eq. 4–5 written frame by frame."""
    cfg = tiny().model.focal
    gcn = activate(ASGCN(torch.as_tensor(PT50.partition_adjacency()), 8, 32, cfg))
    h, _, fm, _ = asgcn_inputs(B=1, S=6)
    fm[0, 5] = False
    A = gcn.contextual_adjacency(h, fm)
    q, k = gcn.query(h)[0], gcn.key(h)[0]
    for i in range(5):
        maps = torch.zeros(2 * cfg.neighbors + 1, 50, 50)
        for m, off in enumerate(range(-cfg.neighbors, cfg.neighbors + 1)):
            j = i + off
            if 0 <= j < 6 and fm[0, j]:
                maps[m] = torch.sigmoid(q[i] @ k[j].T / math.sqrt(8))
        expected = torch.einsum("muv,km->kuv", maps, gcn.aggregate.weight) + gcn.aggregate.bias[:, None, None]
        torch.testing.assert_close(A[0, i], expected, rtol=1e-5, atol=1e-5)


# --- masks -----------------------------------------------------------------------------------


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


# --- diffusion -------------------------------------------------------------------------------


def test_cosine_schedule_invariants():
    abar = cosine_alphas_cumprod(1000)
    assert abar.shape == (1000,) and (abar[1:] < abar[:-1]).all()
    assert 0.999 < abar[0] < 1 and 0 <= abar[-1] < 1e-4
    betas = 1 - abar[1:] / abar[:-1]
    assert betas.max() <= 0.999 + 1e-12
    assert Diffusion(tiny().diffusion).sampling_timesteps() == [99, 79, 59, 39, 19]
    assert Diffusion(load_config("configs/paper.yaml").diffusion).sampling_timesteps() == [
        999,
        799,
        599,
        399,
        199,
    ]


def test_q_sample_statistics():
    diff = Diffusion(load_config("configs/paper.yaml").diffusion)
    x0 = torch.full((20000, 3), 0.3)
    g = torch.Generator().manual_seed(0)
    for t in (0, 300, 700, 999):
        xt = diff.q_sample(x0, torch.full((20000,), t), torch.randn(x0.shape, generator=g))
        a = float(diff.alphas_cumprod[t])
        assert abs(xt.mean() - math.sqrt(a) * 0.3) < 0.02
        assert abs(xt.std() - math.sqrt(1 - a)) < 0.02


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_the_true_x0_recovers_it(eta):
    diff = Diffusion(load_config("configs/paper.yaml").diffusion)
    x0 = torch.randn(2, 7, 50, 3)
    seen = []

    def oracle(x_t, t):
        seen.append(int(t[0]))
        return x0

    out = diff.sample(oracle, x0.shape, eta=eta, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0)
    assert seen == [999, 799, 599, 399, 199]


def test_the_same_seed_gives_identical_samples():
    model = build_model(tiny(), V, with_scg=False).eval()
    _, fm, gloss, gm = batch()
    frames = fm.sum(1)
    a, mask = model.generate(gloss, gm, frames, generator=torch.Generator().manual_seed(3))
    b, _ = model.generate(gloss, gm, frames, generator=torch.Generator().manual_seed(3))
    c, _ = model.generate(gloss, gm, frames, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 12, 50, 3) and torch.equal(mask, fm) and (a[~mask] == 0).all()


# --- SCG -------------------------------------------------------------------------------------


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


# --- ablations -------------------------------------------------------------------------------


def _counts(**overrides):
    return parameter_counts(build_model(tiny(**overrides), V))


def test_each_ablation_switch_removes_exactly_its_part():
    cfg = tiny()
    L1, Df, Dg, J, K = cfg.model.focal.layers, cfg.model.focal.width, cfg.model.width, 50, 3
    n = cfg.model.focal.neighbors
    full = _counts()
    assert _counts(**{"model.focal.contextual": False})["focal"] == full["focal"] - L1 * (
        2 * Df * Df + K * (2 * n + 1) + K
    )
    assert _counts(**{"model.focal.semantic_mask": False})["focal"] == full["focal"] - L1 * (
        Dg * J * J + J * J + Df * Dg + Dg + 2 * K
    )
    assert _counts(**{"model.focal.topology": False})["focal"] == full["focal"] - L1 * K * J * J
    no_focal = _counts(**{"model.focal.enabled": False})
    assert no_focal["focal"] == 0 and no_focal["general"] == full["general"] - (J * Df - J * 7) * Dg
    assert _counts(**{"model.scg.enabled": False})["scg"] == 0 and full["scg"] > 0
    per_block = full["focal"] - _counts(**{"model.focal.layers": 1})["focal"]
    assert _counts(**{"model.focal.layers": 3})["focal"] == full["focal"] + per_block
    assert _counts(**{"model.general.layers": 2})["general"] > full["general"]
    assert _counts(**{"model.focal.neighbors": 3})["focal"] == full["focal"] + L1 * K * 2
    assert _counts(**{"model.focal.width": 16})["focal"] > full["focal"]


def test_paper_configuration_sizes():
    model = build_model(load_config("configs/paper.yaml"), 1089)
    counts = parameter_counts(model)
    assert 20.0e6 < counts["generator"] < 22.0e6  # released code: about 21.0 M
    assert 21.5e6 < counts["scg"] < 21.9e6  # released code: about 21.7 M


# --- learning --------------------------------------------------------------------------------


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
    from fgdm.model.denoiser import DenoiserOutput

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


def test_chunked_asgcn_gives_the_same_outputs_and_gradients():
    """chunk_frames changes the evaluation order only (checked in float64, free of rounding-order noise)."""
    torch.manual_seed(0)
    outs, grads = [], []
    for chunk in (0, 6):  # B = 2: chunks of 3 frames, the last one partial (10 = 3 + 3 + 3 + 1)
        cfg = tiny(**{"model.focal.chunk_frames": chunk}).model.focal
        torch.manual_seed(0)
        gcn = activate(ASGCN(torch.as_tensor(PT50.partition_adjacency()), 8, 32, cfg)).double()
        h, cond, fm, gm = asgcn_inputs(B=2, S=10)
        h, cond = h.double(), cond.double()
        fm[1, 7:] = False
        h.requires_grad_(True)
        out = gcn(h, cond, fm, gm)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append([h.grad, *(p.grad for p in gcn.parameters())])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
