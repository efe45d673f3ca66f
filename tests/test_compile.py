"""torch.compile of the training loss (``training.compile``): what it captures, and that it computes what eager does.

Dynamo's tracing and AOTAutograd are checked with the ``aot_eager`` backend (PyTorch's own kernels, so the numbers
must be equal); one test compiles with inductor, the backend ``training.compile`` uses, and takes about a minute
on a 2-core CPU with a cold cache.
"""

import csv
from pathlib import Path

import pytest
import torch

from fgdm.cli import main
from fgdm.model import build_model
from helpers import V, batch, tiny

TINY = "configs/tiny.yaml"


def _model(**overrides):
    torch.manual_seed(0)
    return build_model(tiny(**{"model.focal.kernel": "torch", **overrides}), V)


def _loss_and_grads(model, fn, *args):
    model.zero_grad(set_to_none=True)
    terms = fn(*args)
    terms.total.backward()
    return terms, [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_the_loss_is_its_draws_then_a_computation_that_draws_nothing():
    model = _model()
    pose, frame_mask, gloss, gloss_mask = batch()
    for unk_rate in (0.0, 0.5):
        torch.manual_seed(3)
        whole = model.loss(pose, frame_mask, gloss, gloss_mask, unk_rate=unk_rate)
        torch.manual_seed(3)
        draws = model.draws(pose, gloss, gloss_mask, unk_rate=unk_rate)
        after = torch.randn(())  # the draws took all that loss takes from the random stream
        state = torch.get_rng_state()
        split = model.loss_of_draws(pose, frame_mask, gloss, gloss_mask, *draws)
        assert torch.equal(torch.get_rng_state(), state)  # nothing drawn
        assert torch.equal(whole.total, split.total)
        torch.manual_seed(3)
        model.loss(pose, frame_mask, gloss, gloss_mask, unk_rate=unk_rate)
        assert torch.equal(torch.randn(()), after)
    g = torch.Generator().manual_seed(5)
    t, noise, condition = model.draws(pose, gloss, gloss_mask, generator=g, unk_rate=0.5)
    assert t.shape == (3,) and noise.shape == pose.shape and condition.shape == gloss.shape
    assert not torch.equal(condition, gloss)  # some glosses became <unk> at this rate and seed


@pytest.mark.parametrize("padded", [True, False])
def test_dynamo_captures_the_training_loss_whole_but_the_scg_branchs_packing(padded):
    """No graph break outside the SCG branch, whose LSTM packs by lengths on the host; with nothing padded too
    (where eager skips the masks after reading the mask on the host)."""
    import torch._dynamo

    model = _model()
    pose, frame_mask, gloss, gloss_mask = batch()
    if not padded:
        frame_mask, gloss_mask = torch.ones_like(frame_mask), torch.ones_like(gloss_mask)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model.loss_of_draws)(
        pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask)
    )
    places = [Path(frame.filename).name for reason in explained.break_reasons for frame in reason.user_stack[-1:]]
    assert places and set(places) == {"scg.py"}, places
    model.scg = None
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model.loss_of_draws)(
        pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask)
    )
    assert explained.graph_count == 1 and explained.graph_break_count == 0


def test_the_compiled_loss_computes_the_eager_numbers_and_follows_new_lengths():
    """aot_eager: Dynamo's graphs and AOTAutograd's backward with PyTorch's kernels: the same losses and gradients
    (up to the order in which gradients from two graphs are summed), also for batches of other lengths (a
    recompilation with dynamic shapes, then none)."""
    import torch._dynamo

    model = _model()
    torch._dynamo.reset()
    compiled = torch.compile(model.loss_of_draws, backend="aot_eager")
    for seed, (S, L) in enumerate([(12, 4), (9, 5), (15, 3)]):
        pose, frame_mask, gloss, gloss_mask = batch(S=S, L=L, seed=seed)
        args = (pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask))
        eager, eager_grads = _loss_and_grads(model, model.loss_of_draws, *args)
        got, got_grads = _loss_and_grads(model, compiled, *args)
        for name in ("total", "joint", "bone", "scg", "length"):
            assert torch.equal(getattr(got, name), getattr(eager, name)), (S, L, name)
        assert len(got_grads) == len(eager_grads)
        for a, b in zip(got_grads, eager_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_inductor_compiles_the_training_loss_to_the_eager_numbers_within_rounding():
    import torch._dynamo

    model = _model(**{"model.focal.layers": 1})
    pose, frame_mask, gloss, gloss_mask = batch()
    args = (pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask))
    eager, eager_grads = _loss_and_grads(model, model.loss_of_draws, *args)
    torch._dynamo.reset()
    got, got_grads = _loss_and_grads(model, torch.compile(model.loss_of_draws), *args)
    torch.testing.assert_close(got.total, eager.total, rtol=1e-5, atol=1e-6)
    for a, b in zip(got_grads, eager_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert max((a - b).abs().max() for a, b in zip(got_grads, eager_grads, strict=True)) > 0  # inductor's own code


def _losses(run: Path) -> list[tuple[str, str]]:
    rows = csv.DictReader((run / "logs" / "version_0" / "metrics.csv").open())
    return [(r["step"], r["train/loss"]) for r in rows if r.get("train/loss")]


def test_fgdm_train_compiles_its_loss_and_draws_the_eager_runs_numbers(tmp_path, monkeypatch, capsys):
    """training.compile: Lightning's step goes through torch.compile (here with the aot_eager backend, PyTorch's
    kernels), once per run; the draws stay outside it, so the run logs an eager run's losses (up to float
    rounding: gradients from two graphs are summed in another order)."""
    import torch._dynamo

    from fgdm.training import generator

    calls, compile_ = [], torch.compile

    def spy(fn, mode=None, **kwargs):
        calls.append(mode)
        return compile_(fn, backend="aot_eager", **kwargs)

    common = ["train", TINY, "--quiet", "--set", "training.max_steps=6", "--set", "training.log_every=1",
              "--set", "training.val_every=100", "--set", "model.focal.kernel=torch"]  # fmt: skip
    assert main([*common, "--set", f"training.output_dir={tmp_path / 'eager'}"]) == 0
    torch._dynamo.reset()
    monkeypatch.setattr(generator.torch, "compile", spy)
    assert main([*common, "--set", f"training.output_dir={tmp_path / 'compiled'}", "--set",
                 "training.compile=true"]) == 0  # fmt: skip
    assert calls == [None]
    eager, compiled = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(eager) == 6 and [step for step, _ in compiled] == [step for step, _ in eager]
    assert compiled[0] == eager[0]  # before the first update: the same draws, the same numbers
    for (_, a), (_, b) in zip(compiled, eager, strict=True):
        assert float(a) == pytest.approx(float(b), rel=1e-5)  # other draws: other losses


def test_training_compile_passes_its_mode_to_torch_compile(tmp_path, monkeypatch, capsys):
    from fgdm.training import generator

    calls = []
    monkeypatch.setattr(generator.torch, "compile", lambda fn, mode=None: calls.append(mode) or fn)
    settings = ["training.max_steps=2", "training.val_every=100", f"training.output_dir={tmp_path}",
                "training.compile=reduce-overhead"]  # fmt: skip
    assert main(["train", TINY, "--quiet", *(a for s in settings for a in ("--set", s))]) == 0
    assert calls == ["reduce-overhead"]


def test_training_compile_takes_true_false_or_a_mode_of_torch_compile():
    from fgdm.config import ConfigError, load_config

    assert load_config([TINY]).training.compile is False
    assert load_config([TINY], ["training.compile=true"]).training.compile is True
    assert load_config([TINY], ["training.compile=max-autotune"]).training.compile == "max-autotune"
    with pytest.raises(ConfigError, match=r"training\.compile"):
        load_config([TINY], ["training.compile=fast"])
