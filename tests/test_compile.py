"""torch.compile of the training loss (``training.compile``): what it captures, and that it computes what eager does.

Dynamo's tracing and AOTAutograd are checked with the ``aot_eager`` backend (PyTorch's own kernels, so the numbers
must be equal); one test compiles with inductor, the backend ``training.compile`` uses, for batches of three frame
counts, and takes a minute or two on a 2-core CPU with a cold cache.
"""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgdm.cli import main
from fgdm.model import build_model
from fgdm.model.compiled import (
    RECOMPILE_LIMIT,
    conv1d,
    conv_over_frames,
    disable_outside_graphs,
    frame_bucket,
    frame_windows,
    outside_graphs,
)
from fgdm.model.focal import TemporalConv
from fgdm.training import compiling
from fgdm.training.compiling import compiled_loss, compiled_loss_arguments, pad_frames
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


def _caller(stack) -> str:
    """The file of a graph break's last frame, outside_graphs' wrapper left out: where its function is called."""
    frames = [f for f in stack if not (Path(f.filename).name == "compiled.py" and f.name == "call")]
    return Path(frames[-1].filename).name


@pytest.mark.parametrize("padded", [True, False])
def test_dynamo_captures_the_training_loss_whole_but_the_scg_branchs_packing(padded):
    """No graph break outside the SCG branch, whose LSTM packs by lengths on the host; with nothing padded too
    (where eager skips the masks after reading the mask on the host)."""
    import torch._dynamo

    model = _model()
    pose, frame_mask, gloss, gloss_mask = batch()
    if not padded:
        frame_mask, gloss_mask = torch.ones_like(frame_mask), torch.ones_like(gloss_mask)
    disable_outside_graphs()  # as training.compile does first
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model.loss_of_draws)(
        pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask)
    )
    places = [_caller(reason.user_stack) for reason in explained.break_reasons]
    assert places and set(places) == {"scg.py"}, places
    model.scg = None
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model.loss_of_draws)(
        pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask)
    )
    assert explained.graph_count == 1 and explained.graph_break_count == 0


def test_outside_graphs_runs_its_function_eagerly_between_the_compiled_graphs():
    """What the C library's calls and the SCG branch's packing are decorated with: under compilation Dynamo leaves
    the function out (one graph break, the function not traced: it runs as it is), outside it is called directly."""
    import torch._dynamo

    compiling_inside = []

    @outside_graphs
    def host(x: torch.Tensor) -> torch.Tensor:
        compiling_inside.append(torch.compiler.is_compiling())
        return x * (x.sum().item() > 0)  # a value read on the host

    def f(x: torch.Tensor) -> torch.Tensor:
        return host(torch.sin(x)).cos()

    x = torch.randn(6)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(f)(x)
    assert explained.graph_count == 2 and explained.graph_break_count == 1
    assert "disable" in str(explained.break_reasons[0].reason)
    assert torch.equal(torch.compile(f, backend="aot_eager")(x), f(x))
    assert compiling_inside and not any(compiling_inside)
    assert host.__name__ == "host"


def test_outside_graphs_functions_called_in_turn_compile_nothing_again():
    """Two of them called in turn, as the SCG branch's two eager parts are at every step: once
    disable_outside_graphs has run (as training.compile runs it), nothing compiles again over the calls. Before,
    their wrappers shared one code object, whose compiled frame each function's call evicted, and the disabled
    function made while traced failed the guards of the frame traced first."""
    import logging

    import torch._dynamo

    @outside_graphs
    def first(x: torch.Tensor) -> torch.Tensor:
        return x * (x.sum().item() > 0)

    @outside_graphs
    def second(x: torch.Tensor) -> torch.Tensor:
        return x + (x.amax().item() > 0)

    def f(x: torch.Tensor) -> torch.Tensor:
        return second(first(torch.sin(x)).cos()).tan()

    class Recompilations(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            if "Recompiling function" in record.getMessage():
                self.seen.append(record.getMessage().splitlines()[0])

    disable_outside_graphs()
    torch._dynamo.reset()
    recompilations = Recompilations()
    torch._logging.set_logs(recompiles=True)
    logging.getLogger("torch._dynamo").addHandler(recompilations)
    try:
        compiled, x = torch.compile(f, backend="eager"), torch.randn(6)
        for _ in range(4):
            torch.testing.assert_close(compiled(x), f(x))
    finally:
        logging.getLogger("torch._dynamo").removeHandler(recompilations)
        torch._logging.set_logs()
    assert not recompilations.seen, recompilations.seen


def test_sampling_with_the_fused_kernels_never_imports_torch_compiles_machinery(tmp_path):
    """torch.compiler.disable imports torch._dynamo (over a second at start); outside_graphs makes it only once
    something compiles, so loading the shipped weights and sampling with the C kernels import none of it, in Python
    or by ``fgdm generate --gloss`` (which does not import the synthetic signer's modules either)."""
    script = (
        "import sys, torch, fgdm\n"
        "from fgdm.cli import main\n"
        "from fgdm.model import kernels\n"
        "loaded = fgdm.load_for_sampling()\n"
        "(pose,) = fgdm.generate_poses(loaded, loaded.vocab.encode_all([['MORGEN', 'NORD']]), frames=[9])\n"
        "gcn = loaded.model.denoiser.focal.blocks[0].gcn\n"
        "print(pose.shape, kernels.available() == gcn.uses_kernel(torch.zeros(1, 2, 50, 8)), "
        "'torch._dynamo' in sys.modules)\n"
        f"assert main(['generate', '--gloss', 'MORGEN NORD', '--length', '9', '--out', {str(tmp_path / 'a.npy')!r}])"
        " == 0\n"
        "print(sorted(m for m in ('torch._dynamo', 'lightning', 'fgdm.data.synth') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["(9,", "50,", "3)", "True", "False"] and lines[-1] == "[]", done.stdout


def test_the_compiled_loss_computes_the_eager_numbers_and_follows_new_lengths():
    """aot_eager: Dynamo's graphs and AOTAutograd's backward with PyTorch's kernels: the same losses and gradients
    up to rounding (attention's products and softmax in place of the fused kernel, and gradients from two graphs
    summed in another order), also for batches of other lengths (a recompilation with dynamic shapes, then none)."""
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
            torch.testing.assert_close(getattr(got, name), getattr(eager, name), rtol=1e-6, atol=1e-7)
        assert len(got_grads) == len(eager_grads)
        for a, b in zip(got_grads, eager_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_attention_under_compilation_computes_what_the_fused_kernel_does():
    """Compiled, attention is products and a softmax (inductor's backward of the CPU's fused kernel asserted
    strides it had fixed for one gloss count); eager, the fused kernel."""
    import torch._dynamo

    from fgdm.model.attention import attend

    captured = set()

    def backend(graph, inputs):  # records what Dynamo captured, runs it as captured
        captured.update(str(node.target) for node in graph.graph.nodes)
        return graph.forward

    torch._dynamo.reset()
    compiled = torch.compile(attend, backend=backend, fullgraph=True)
    g = torch.Generator().manual_seed(0)
    for S, N in [(7, 5), (12, 3)]:
        q, k, v = (
            torch.randn(2, S, 8, generator=g),
            torch.randn(2, N, 8, generator=g),
            torch.randn(2, N, 8, generator=g),
        )
        keys = torch.ones(2, N, dtype=torch.bool)
        keys[1, N - 2 :] = False
        for mask in (None, keys[:, None, None, :]):
            want = attend(q, k, v, 4, mask)
            torch.testing.assert_close(compiled(q, k, v, 4, mask), want, rtol=1e-5, atol=1e-6)
    assert any("softmax" in op for op in captured) and not any("scaled_dot_product" in op for op in captured)
    # eager: the fused kernel (dropout given, as torch 2.8's fused kernel takes no traced float)
    eager = torch.fx.symbolic_trace(attend, concrete_args={"dropout": 0.0})
    assert any("scaled_dot_product" in str(node.target) for node in eager.graph.nodes)


def test_convolutions_over_frames_under_compilation_are_one_product_computing_the_convolution():
    """The TCN's and the SCG branch's convolutions, compiled: no convolution in the captured graph (inductor's
    convolution backward fixed the frame count), PyTorch's convolution's numbers; eager: PyTorch's convolution."""
    import torch._dynamo

    captured = set()

    def backend(graph, inputs):  # records the operations Dynamo captured, runs them as captured
        captured.update(str(node.target) for node in graph.graph.nodes if node.op.startswith("call"))
        return graph.forward

    torch.manual_seed(0)
    tcn, conv = TemporalConv(6, 5), torch.nn.Conv1d(6, 4, 3, padding=1)
    torch._dynamo.reset()
    compiled_tcn = torch.compile(tcn, backend=backend, fullgraph=True)
    compiled_conv = torch.compile(lambda h: conv1d(conv, h), backend=backend, fullgraph=True)
    for S in (1, 2, 7, 12):
        h = torch.randn(2, S, 5, 6)
        torch.testing.assert_close(compiled_tcn(h), tcn(h), rtol=1e-5, atol=1e-6)
        x = torch.randn(3, 6, S)
        torch.testing.assert_close(compiled_conv(x), conv(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(conv1d(conv, x), conv(x), rtol=0, atol=0)  # eager: the convolution itself
        torch.testing.assert_close(conv_over_frames(h, tcn.conv.weight[..., 0], None), tcn(h) - tcn.conv.bias)
    assert captured and not any("conv" in op for op in captured), captured


def test_windows_of_frames_under_compilation_are_stacked_slices_computing_unfolds_windows():
    """ASGCN's key windows, compiled: no ``unfold`` in the captured graph (inductor's CPU backward of it was wrong
    on two threads), the view's numbers and gradients; eager: the view itself."""
    import torch._dynamo

    captured = set()

    def backend(graph, inputs):
        captured.update(str(node.target) for node in graph.graph.nodes if node.op.startswith("call"))
        return graph.forward

    torch._dynamo.reset()
    windows = torch.compile(frame_windows, backend=backend, fullgraph=True)
    for P, size, frames in ((9, 7, 3), (12, 5, 8), (20, 7, 14)):
        x = torch.randn(2, P, 3, 4, requires_grad=True)
        want = x.unfold(1, size, 1)[:, :frames]
        got = windows(x, size, frames)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        w = torch.randn_like(want)
        torch.testing.assert_close(torch.autograd.grad((got * w).sum(), x), torch.autograd.grad((want * w).sum(), x))
        assert frame_windows(x, size, frames)._is_view()  # eager: no copy
    assert captured and not any("unfold" in op for op in captured), captured


def test_inductor_compiles_the_training_loss_once_for_batches_of_any_length_to_the_eager_numbers():
    """``compiled_loss`` as ``training.compile`` uses it: inductor's code, dynamic shapes from the first batch, so
    batches of other frame counts run without compiling again (each batch's frame count × size stays between the
    CPU code generator's thresholds, on which it does compile again). Two threads: inductor's CPU code for one
    backward (``unfold``'s) was wrong on two threads or more, right on one (``fgdm/model/compiled.py``). Every
    parameter moved off its initial value, so that none has a zero gradient by construction (ASGCN's W_Agg
    starts at zero, and with it the query's and key's gradients)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    model = _model(**{"model.focal.layers": 1})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch._dynamo.reset()
        counters.clear()
        loss = compiled_loss(model.loss_of_draws, True)
        graphs = []
        for seed, S in enumerate((13, 17, 22)):
            pose, frame_mask, gloss, gloss_mask = batch(S=S, seed=seed)
            args = (pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask))
            eager, eager_grads = _loss_and_grads(model, model.loss_of_draws, *args)
            got, got_grads = _loss_and_grads(model, loss, *args)
            graphs.append(counters["stats"]["unique_graphs"])
            torch.testing.assert_close(got.total, eager.total, rtol=1e-5, atol=1e-6)
            assert len(eager_grads) == len(list(model.parameters())) and all(g.abs().max() > 0 for g in eager_grads)
            for a, b in zip(got_grads, eager_grads, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
            differences = [(a - b).abs().max() for a, b in zip(got_grads, eager_grads, strict=True)]
            assert max(differences) > 0  # inductor's code, not eager's kernels
    finally:
        torch.set_num_threads(threads)
    assert graphs[0] > 0 and graphs == [graphs[0]] * 3, graphs  # compiled for the first batch only


@pytest.mark.parametrize("mode", [True, "max-autotune-no-cudagraphs", "reduce-overhead", "max-autotune"])
def test_a_compiled_loss_marks_its_batch_dynamic_and_pads_it_to_its_frame_bucket_only_for_cuda_graphs(
    mode, monkeypatch
):
    seen = []

    def spy(fn, mode=None):
        return lambda *args: seen.append(args) or fn(*args)

    monkeypatch.setattr(compiling.torch, "compile", spy)
    model = _model()
    pose, frame_mask, gloss, gloss_mask = batch(S=21)
    args = (pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask))
    compiled_loss(model.loss_of_draws, mode)(*args)
    (fed,) = seen
    assert fed[0].shape[1] == (24 if mode in ("reduce-overhead", "max-autotune") else 21)
    for tensor in fed:  # batch, then frames or glosses
        assert tensor._dynamo_weak_dynamic_indices == set(range(min(tensor.dim(), 2)))


@given(st.integers(1, 100_000))
def test_a_batch_is_padded_to_a_multiple_of_8_frames_and_above_64_frames_by_under_a_quarter(frames):
    bucket = frame_bucket(frames)
    assert bucket >= frames and bucket % 8 == 0 and frame_bucket(bucket) == bucket
    assert bucket - frames < 8 if frames <= 64 else bucket < 1.25 * frames


def test_the_frame_buckets_are_few_enough_to_keep_each_ones_compiled_code():
    assert [frame_bucket(s) for s in (1, 8, 9, 64, 65, 80, 81, 128, 129)] == [8, 8, 16, 64, 80, 80, 96, 128, 160]
    assert len({frame_bucket(s) for s in range(1, 65)}) == 8
    assert len({frame_bucket(s) for s in range(65, 129)}) == len({frame_bucket(s) for s in range(2049, 4097)}) == 4
    assert len({frame_bucket(s) for s in range(1, 4097)}) == 32 < RECOMPILE_LIMIT
    with pytest.raises(ValueError, match="at least one frame"):
        frame_bucket(0)
    pose, frame_mask, _, _ = batch(S=12)
    with pytest.raises(ValueError, match="cannot pad 12 frames to 10"):
        pad_frames(pose, frame_mask, pose, 10)


@pytest.mark.parametrize("kernel", ["torch", "auto"])
def test_padding_a_batch_to_its_frame_bucket_changes_no_loss_or_gradient(kernel):
    """What a compiled step feeds the loss: the batch padded with masked frames, its draws made unpadded."""
    model = _model(**{"model.focal.kernel": kernel})
    for seed, (S, bucket) in enumerate([(21, 24), (30, 32), (17, 24)]):  # long enough for CTC to align 4 glosses
        pose, frame_mask, gloss, gloss_mask = batch(S=S, seed=seed)
        args = (pose, frame_mask, gloss, gloss_mask, *model.draws(pose, gloss, gloss_mask))
        padded = compiled_loss_arguments(args)
        assert padded[0].shape[1] == padded[1].shape[1] == padded[5].shape[1] == bucket
        assert torch.equal(padded[1][:, :S], frame_mask) and not padded[1][:, S:].any()
        assert not padded[0][:, S:].any() and not padded[5][:, S:].any()
        want, want_grads = _loss_and_grads(model, model.loss_of_draws, *args)
        got, got_grads = _loss_and_grads(model, model.loss_of_draws, *padded)
        for name in ("total", "joint", "bone", "scg", "length"):
            torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=1e-5, atol=1e-7)
        assert want.scg > 0 and want.length > 0
        for a, b in zip(got_grads, want_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def _losses(run: Path) -> list[tuple[str, str]]:
    rows = csv.DictReader((run / "logs" / "version_0" / "metrics.csv").open())
    return [(r["step"], r["train/loss"]) for r in rows if r.get("train/loss")]


def test_fgdm_train_compiles_its_loss_once_and_draws_the_eager_runs_numbers(tmp_path, monkeypatch, capsys):
    """training.compile: Lightning's step goes through torch.compile (here with the aot_eager backend, PyTorch's
    kernels), once per run, with batches of every length and size running the code compiled for the first; the
    draws stay outside it, so the run logs an eager run's losses (up to float rounding: gradients from two graphs
    summed in another order)."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounterWithBackend

    from fgdm.training import generator

    calls, shapes, compile_ = [], [], torch.compile
    counter = CompileCounterWithBackend("aot_eager")

    def spy(fn, mode=None, **kwargs):
        calls.append(mode)
        compiled_fn = compile_(fn, backend=counter, **kwargs)

        def loss(pose, frame_mask, *rest):
            compiled = compiled_fn(pose, frame_mask, *rest)
            shapes.append((*pose.shape[:2], int(frame_mask.sum(1).max()), counter.frame_count))
            return compiled

        return loss

    # batches of 6 of the 32 sequences: a partial batch of 2 in each epoch
    common = ["train", TINY, "--quiet", "--set", "training.max_steps=6", "--set", "training.log_every=1",
              "--set", "training.val_every=100", "--set", "model.focal.kernel=torch",
              "--set", "training.batch_size=6"]  # fmt: skip
    assert main([*common, "--set", f"training.output_dir={tmp_path / 'eager'}"]) == 0
    torch._dynamo.reset()
    monkeypatch.setattr(generator.torch, "compile", spy)
    assert main([*common, "--set", f"training.output_dir={tmp_path / 'compiled'}", "--set",
                 "training.compile=true"]) == 0  # fmt: skip
    assert calls == [None]
    eager, compiled = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(eager) == 6 and [step for step, _ in compiled] == [step for step, _ in eager]
    # batches as they come (no padding), of several lengths and a partial one, all run by the first compilation
    assert len(shapes) == 6 and all(frames == longest for _, frames, longest, _ in shapes)
    assert len({frames for _, frames, _, _ in shapes}) > 2 and len({size for size, *_ in shapes}) == 2
    assert shapes[0][-1] > 0 and all(compilations == shapes[0][-1] for *_, compilations in shapes)
    for (_, a), (_, b) in zip(compiled, eager, strict=True):  # the same draws: the same losses, up to rounding
        assert float(a) == pytest.approx(float(b), rel=1e-5)  # (other draws move it by tenths of a percent)


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


def test_training_compile_and_sampling_compile_take_the_same_modes():
    import typing

    from fgdm.choices import COMPILE_MODES
    from fgdm.config.schema import TrainingConfig

    annotation = typing.get_type_hints(TrainingConfig)["compile"]
    assert {a for a in typing.get_args(annotation) if a is not bool} == {typing.Literal[COMPILE_MODES]}


def test_sampling_padded_to_cuda_graph_buckets_signs_each_sentence_as_unpadded(monkeypatch):
    """With CUDA graphs (one per shape), generate_poses pads each batch's frames and glosses to their buckets, a few
    sizes: the padded frames and glosses change no sentence's poses (the eager denoiser stands in for the compiled
    one here, so this checks the padding alone)."""
    import dataclasses

    import numpy as np

    from fgdm.sampling import generate_poses, load_for_sampling

    eager = load_for_sampling()
    padded = dataclasses.replace(eager, compile="reduce-overhead", compiled=eager.model.denoiser)
    words = eager.vocab.itos[4:]
    ids = [eager.vocab.encode_sentence(words[i : i + 2 + 3 * i]) for i in range(3)]  # 2, 5 and 8 glosses
    shapes, generate = [], type(eager.model).generate

    def spy(self, gloss, gloss_mask, frames, **kwargs):
        out = generate(self, gloss, gloss_mask, frames, **kwargs)
        shapes.append((tuple(gloss.shape), int(gloss_mask.sum()), kwargs["frames_to"], tuple(out[0].shape[:2])))
        return out

    monkeypatch.setattr(type(eager.model), "generate", spy)
    frames, seeds = [21, 33, 70], [1, 2, 3]
    together = generate_poses(padded, ids, frames, seed=seeds, batch_size=2)
    alone = [generate_poses(eager, [i], [f], seed=[s])[0] for i, f, s in zip(ids, frames, seeds, strict=True)]
    # batch 1: glosses 2 and 5 padded to 8, frames 33 to 40; batch 2: 8 glosses stay, 70 frames padded to 80
    assert shapes[:2] == [((2, 8), 7, 40, (2, 40)), ((1, 8), 8, 80, (1, 80))]
    assert all(frames_to is None for *_, frames_to, _ in shapes[2:])  # without CUDA graphs, as given
    for a, b in zip(together, alone, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_compiled_sampling_gives_the_eager_poses_and_compiles_again_only_for_a_new_shape():
    """load_for_sampling(compile=True): the denoiser through torch.compile (inductor), compiled on the first
    sentence and again on the second length met, whose sizes then stay dynamic: the third compiles nothing. The
    poses are the eager ones up to float rounding. On a CPU with the fused kernel, where it does not pay, it warns
    (with the PyTorch path it does not)."""
    import numpy as np
    from torch._dynamo.utils import counters

    from fgdm.sampling import generate_poses, load_for_sampling

    with pytest.warns(UserWarning, match="compile on a CPU with the fused ASGCN kernel: compiled sampling measured"):
        compiled = load_for_sampling(compile=True)
    eager = load_for_sampling()
    assert compiled.compile is True and compiled.compiled is not None and eager.compiled is None
    words = eager.vocab.itos[4:]
    graphs = []
    for i, frames in enumerate([21, 32, 39]):
        ids = [eager.vocab.encode_sentence(words[i : i + 2 + i])]
        (a,) = generate_poses(compiled, ids, [frames], seed=i)
        graphs.append(counters["stats"]["unique_graphs"])
        (b,) = generate_poses(eager, ids, [frames], seed=i)
        assert a.shape == b.shape == (frames, 50, 3)
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert graphs[0] < graphs[1] == graphs[2]


def test_sampling_compile_is_refused_unless_a_mode_and_the_commands_pass_theirs(monkeypatch, tmp_path):
    import fgdm.evaluation.protocol
    import fgdm.sampling
    from fgdm.cli.parser import build_parser
    from fgdm.sampling import load_for_sampling

    with pytest.raises(ValueError, match="compile 'fast': use False, True or one of default, reduce-overhead"):
        load_for_sampling(compile="fast")
    seen = []

    def stop(*args, **kwargs):
        seen.append(kwargs["compile"])
        raise KeyboardInterrupt  # enough: what the command passed on

    monkeypatch.setattr(fgdm.sampling, "load_for_sampling", stop)
    monkeypatch.setattr(fgdm.evaluation.protocol, "evaluate", stop)
    out = ["--out", str(tmp_path / "a.npy")]
    for option in ([], ["--compile"], ["--compile", "reduce-overhead"]):
        assert main(["generate", "--gloss", "MORGEN", *out, *option]) == 130
        assert main(["evaluate", "--backtranslator", "bt.ckpt", "--out", str(tmp_path / "r"), *option]) == 130
    assert seen == [False, False, "default", "default", "reduce-overhead", "reduce-overhead"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--gloss", "MORGEN", *out, "--compile", "fast"])


@pytest.mark.parametrize(("kernel", "warned"), [("torch", False), ("auto", True)])
def test_compiling_for_sampling_warns_only_where_the_fused_kernel_breaks_the_graph(kernel, warned):
    """On the CPU's fused kernel compiled sampling measured no faster; on the PyTorch path it took 0.82 of eager's
    time (benchmarks/results/speed.md), so only the kernel's case is warned of."""
    import warnings

    from fgdm.data.vocab import SPECIALS, Vocabulary
    from fgdm.model import kernels
    from fgdm.sampling.loading import build_for_sampling, ready_for_sampling

    warned = warned and kernels.available()  # without a C compiler there is no kernel, and nothing to warn of
    cfg = tiny(**{"model.focal.kernel": kernel})
    vocab = Vocabulary([*SPECIALS, *(f"G{i}" for i in range(V - len(SPECIALS)))])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        loaded = ready_for_sampling(build_for_sampling(cfg, V), cfg, vocab, 0, "cpu", compile="max-autotune")
    assert loaded.compile == "max-autotune" and loaded.compiled is not None
    assert any("fused ASGCN kernel" in str(w.message) for w in seen) == warned


def test_a_loaded_model_pickles_and_copies_compiled_or_not_each_copy_with_its_own_lock_and_compiled_code():
    import copy
    import pickle

    from fgdm.data.vocab import SPECIALS, Vocabulary
    from fgdm.sampling.loading import build_for_sampling, ready_for_sampling

    cfg = tiny(**{"model.focal.kernel": "torch"})
    vocab = Vocabulary([*SPECIALS, *(f"G{i}" for i in range(V - len(SPECIALS)))])
    for mode in (False, "reduce-overhead"):
        loaded = ready_for_sampling(build_for_sampling(cfg, V), cfg, vocab, 3, "cpu", compile=mode)
        for twin in (pickle.loads(pickle.dumps(loaded)), copy.deepcopy(loaded)):
            assert (twin.compile, twin.step, twin.vocab.itos) == (mode, 3, vocab.itos)
            assert twin.lock is not loaded.lock and (twin.compiled is None) == (mode is False)
            assert twin.compiled is None or twin.compiled is not loaded.compiled
            for a, b in zip(twin.model.state_dict().values(), loaded.model.state_dict().values(), strict=True):
                assert torch.equal(a, b)
