"""The denoiser end to end (docs/model.md §4): padding is invisible, causal attention never looks ahead."""

import pytest
import torch

from fgdm.model import build_model
from fgdm.model.general import GeneralStage
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


# --- what sampling computes once for all its steps -------------------------------------------------


@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_the_evaluation_decoder_computes_what_pytorchs_decoder_layers_compute(attention):
    """The General stage runs its decoder layers' weights through its own loop, with the cross-attention to the
    glosses computed per call or, as sampling does, regrouped beforehand (CrossMemory); both equal
    nn.TransformerDecoder, padding included (float64, so only the equations can differ)."""
    torch.manual_seed(0)
    cfg = tiny(**{"model.general.attention": attention, "model.general.layers": 2}).model.general
    stage = GeneralStage(32, cfg).double().eval()
    with torch.no_grad():  # attention starts its biases at 0: the regrouped offset and b_o need some to be checked
        for name, p in stage.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    _, fm, _, gm = batch()
    h, cond = torch.randn(3, 12, 32, dtype=torch.float64), torch.randn(3, 4, 32, dtype=torch.float64)
    causal = torch.ones(12, 12, dtype=torch.bool).triu(1) if attention == "causal" else None
    expected = stage.layers(h, cond, tgt_mask=causal, tgt_is_causal=causal is not None, tgt_key_padding_mask=~fm,
                            memory_key_padding_mask=~gm) * fm[..., None]  # fmt: skip
    torch.testing.assert_close(stage(h, cond, fm, gm), expected)
    memory = stage.memory(torch.stack([2 * cond, cond]))  # two conditions at once, as for two sampling steps
    torch.testing.assert_close(stage(h, cond, fm, gm, [m[1] for m in memory]), expected)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"model.focal.enabled": False}, {"model.focal.semantic_mask": False},
     {"model.counter": True, "model.focal.kernel": "torch"}],
)  # fmt: skip
def test_step_contexts_computed_for_all_steps_at_once_change_no_output(overrides):
    model = activate(build_model(tiny(**overrides), V, with_scg=False)).eval()
    pose, fm, gloss, gm = batch()
    steps = [99, 59, 19]
    with torch.no_grad():
        contexts = model.denoiser.step_contexts(model.denoiser.encode_glosses(gloss, gm), gm, fm, steps)
        for t, context in zip(steps, contexts, strict=True):
            t = torch.full((3,), t)
            plain = model.denoiser(pose, t, gloss, gm, fm).x0
            torch.testing.assert_close(model.denoiser(pose, t, gloss, gm, fm, context=context).x0, plain)


def test_sampling_gives_the_poses_of_steps_that_each_start_from_the_encoding():
    """generate prepares every step's context at once; a denoiser without step_contexts is called with the
    gloss encoding only, each step computing its own. The poses are the same."""

    class PerStep(torch.nn.Module):
        def __init__(self, net) -> None:
            super().__init__()
            self.net = net

        def encode_glosses(self, gloss, gloss_mask):
            return self.net.encode_glosses(gloss, gloss_mask)

        def forward(self, *args, **kwargs):
            assert "context" not in kwargs
            return self.net(*args, **kwargs)

    model = activate(build_model(tiny(), V, with_scg=False)).eval()
    _, fm, gloss, gm = batch()
    a, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3))
    b, _ = model.generate(
        gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3), denoiser=PerStep(model.denoiser)
    )
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_applying_masks_where_nothing_is_padded_changes_nothing(monkeypatch):
    """On a GPU ``nothing_padded`` never reads the mask (that would synchronise), so the masks are always
    applied, even to a batch without padding; the CPU skips them. Both give the same samples."""
    import fgdm.model.focal
    import fgdm.model.general

    model = activate(build_model(tiny(**{"model.focal.kernel": "torch"}), V, with_scg=False)).eval()
    _, fm, gloss, gm = batch()
    fm[:], gm[:] = True, True
    skipped, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3))
    for module in (fgdm.model.focal, fgdm.model.general):
        monkeypatch.setattr(module, "nothing_padded", lambda mask: False)
    applied, _ = model.generate(gloss, gm, fm.sum(1), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(applied, skipped, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_training_runs_pytorchs_decoder_equations_with_their_gradients(attention):
    """Training runs the same loop as evaluation, with dropout: at p = 0 it equals nn.TransformerDecoder in
    training mode, outputs and gradients (float64)."""
    torch.manual_seed(0)
    cfg = tiny(**{"model.general.attention": attention, "model.general.layers": 2, "model.general.dropout": 0.0})
    stage = GeneralStage(32, cfg.model.general).double().train()
    _, fm, _, gm = batch()
    h, cond = torch.randn(3, 12, 32, dtype=torch.float64), torch.randn(3, 4, 32, dtype=torch.float64)
    causal = torch.ones(12, 12, dtype=torch.bool).triu(1) if attention == "causal" else None
    ours = stage(h, cond, fm, gm)
    expected = stage.layers(h, cond, tgt_mask=causal, tgt_is_causal=causal is not None, tgt_key_padding_mask=~fm,
                            memory_key_padding_mask=~gm) * fm[..., None]  # fmt: skip
    torch.testing.assert_close(ours, expected)
    weights = [p for p in stage.parameters()]
    grads = torch.autograd.grad((ours * expected.detach()).sum(), weights)
    expected_grads = torch.autograd.grad((expected * expected.detach()).sum(), weights)
    for ours_grad, theirs in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(ours_grad, theirs)


def test_training_applies_the_layers_dropout_and_evaluation_none():
    torch.manual_seed(0)
    stage = GeneralStage(32, tiny(**{"model.general.dropout": 0.5}).model.general).double()
    _, fm, _, gm = batch()
    h, cond = torch.randn(3, 12, 32, dtype=torch.float64), torch.randn(3, 4, 32, dtype=torch.float64)
    stage.train()
    a, b = stage(h, cond, fm, gm), stage(h, cond, fm, gm)
    stage.eval()
    c, d = stage(h, cond, fm, gm), stage(h, cond, fm, gm)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)
    torch.testing.assert_close(c, d)
    for module in stage.modules():  # with every dropout at 0, training computes what evaluation does
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, torch.nn.MultiheadAttention):
            module.dropout = 0.0
    stage.train()
    torch.testing.assert_close(stage(h, cond, fm, gm), c)


@pytest.mark.parametrize("training", [True, False])
def test_the_gloss_encoder_computes_what_pytorchs_encoder_layers_compute(training):
    """The gloss encoder runs its nn.TransformerEncoder's weights through fgdm.model.attention: the same outputs
    and, in training (dropout 0), the same gradients, padding included (float64)."""
    from fgdm.model.gloss_encoder import GlossEncoder

    torch.manual_seed(0)
    cfg = tiny(**{"model.gloss_encoder.layers": 2}).model.gloss_encoder
    encoder = GlossEncoder(V, 32, cfg, counter=True).double().train(training)
    _, _, gloss, gm = batch()
    ours = encoder(gloss, gm)
    h = encoder.counter(encoder.pos(encoder.embed(gloss)), gm)
    expected = encoder.encoder(h, src_key_padding_mask=~gm) * gm[..., None]
    torch.testing.assert_close(ours, expected)
    weights = list(encoder.parameters())
    grads = torch.autograd.grad((ours * expected.detach()).sum(), weights, allow_unused=True)
    expected_grads = torch.autograd.grad((expected * expected.detach()).sum(), weights, allow_unused=True)
    for a, b in zip(grads, expected_grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


def test_the_gloss_encoder_applies_its_dropout_in_training_only():
    from fgdm.model.gloss_encoder import GlossEncoder

    torch.manual_seed(0)
    encoder = GlossEncoder(V, 32, tiny(**{"model.gloss_encoder.dropout": 0.5}).model.gloss_encoder).double()
    _, _, gloss, gm = batch()
    a, b = encoder.train()(gloss, gm), encoder(gloss, gm)
    c, d = encoder.eval()(gloss, gm), encoder(gloss, gm)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)
    torch.testing.assert_close(c, d)
