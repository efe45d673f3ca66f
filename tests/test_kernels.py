"""The fused C kernel of ASGCN computes what the PyTorch path computes, and the library's LayerNorm what
nn.LayerNorm computes: outputs and every gradient.

Every build of the library: the one tuned to this CPU (on x86 its AVX branch, 16 lanes wide with AVX-512),
the AVX2 one (8-lane AVX, on an x86 CPU) and the portable one (the generic-vector branch a CPU without AVX
runs). The kernel's arguments are checked before any C runs.
"""

import copy
import dataclasses
import os
import re
import subprocess
import sys

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fgdm.config import FocalConfig
from fgdm.model import kernels
from fgdm.model.asgcn import ASGCN
from fgdm.model.focal import FocalNorm
from fgdm.model.kernels import build
from fgdm.model.kernels.asgcn import CONTEXTUAL, SEMANTIC, SHAPES
from fgdm.skeleton import PT50

if not kernels.available():  # only without a C compiler; CI has one
    pytest.skip(f"fused ASGCN kernel unavailable: {kernels.unavailable_reason()}", allow_module_level=True)


def random_prior(K: int, J: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(K, J, J, generator=g) < 0.2).float()


def make_gcn(prior, width, cond_width, seed=0, **flags) -> ASGCN:
    torch.manual_seed(seed)
    gcn = ASGCN(prior, width, cond_width, FocalConfig(width=width, **flags))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # the zero-initialised parts get values, so every path carries gradient
        for name, p in gcn.named_parameters():
            if any(k in name for k in ("aggregate", "separation", "prior_offset")):
                p.copy_(torch.randn(p.shape, generator=g))
    return gcn


def inputs(B, S, J, D, L, Dg, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(B, S, J, D, generator=g)
    cond = torch.randn(B, L, Dg, generator=g)
    fm = torch.ones(B, S, dtype=torch.bool)
    gm = torch.ones(B, L, dtype=torch.bool)
    if B > 1:  # a shorter second sequence and fewer glosses: padding must behave identically
        fm[1, max(1, S // 2) :] = False
        gm[1, max(1, L // 2) :] = False
    return h, cond, fm, gm


def run(gcn: ASGCN, kernel: str, h, cond, fm, gm, seed=3):
    """Output and gradients (h, cond, every parameter) by the PyTorch path ("torch"), the kernel ("c") or
    another build of the kernel (a variant of build.VARIANTS: "avx2", "portable")."""
    h, cond = h.clone().requires_grad_(True), cond.clone().requires_grad_(True)
    if kernel in build.VARIANTS:
        out = kernels.fused_asgcn(gcn.kernel_args(h, cond, fm, gm), variant=kernel)
    else:
        gcn.kernel = kernel
        assert gcn.uses_kernel(h) == (kernel == "c")
        out = gcn(h, cond, fm, gm)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    params = [p for p in gcn.parameters()]
    grads = torch.autograd.grad(out, [h, cond, *params], upstream, allow_unused=True)
    return out.detach(), grads


def assert_close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """Equal up to float32 rounding, relative to the tensor's magnitude (the kernel sums in another order)."""
    scale = max(a.abs().max().item(), 1.0)
    err = (a - b).abs().max().item()
    assert err <= 2e-5 * scale, f"{what}: max difference {err:.3g} at magnitude {scale:.3g}"


def assert_same(gcn: ASGCN, h, cond, fm, gm, kernel="c") -> None:
    """The kernel's output and gradients are as close to exact (the PyTorch path in float64) as float32 allows:
    within 1e-4 of each tensor's magnitude. The parameters' gradients are sums over every frame and map entry whose
    terms cancel, so float32 rounding reaches that far: over 20,000 random cases of the shapes below, PyTorch's own
    float32 path was up to 8.3e-5 from exact, the kernel up to 3.1e-5."""
    exact, exact_grads = run(copy.deepcopy(gcn).double(), "torch", h.double(), cond.double(), fm, gm)
    out, grads = run(gcn, kernel, h, cond, fm, gm)
    names = ["output", *(f"grad {n}" for n in ["h", "cond", *(n for n, _ in gcn.named_parameters())])]
    for name, e, c in zip(names, [exact, *exact_grads], [out, *grads], strict=True):
        assert (e is None) == (c is None), name
        if c is not None:
            scale = max(e.abs().max().item(), 1.0)
            err = (c.double() - e).abs().max().item()
            assert err <= 1e-4 * scale, f"{name}: max difference from float64 {err:.3g} at magnitude {scale:.3g}"


FLAGS = [
    {},  # full ASGCN
    {"contextual": False},  # w/o A_a
    {"semantic_mask": False},  # w/o M
    {"topology": False},  # w/o A_b
    {"contextual": False, "topology": True, "semantic_mask": True},
    {"topology": False, "semantic_mask": False},  # A_a alone
]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "full")
def test_kernel_matches_pytorch_on_the_real_skeleton(flags):
    prior = torch.as_tensor(PT50.partition_adjacency())
    gcn = make_gcn(prior, 16, 24, neighbors=3, **flags)
    assert_same(gcn, *inputs(B=3, S=11, J=50, D=16, L=4, Dg=24))


@settings(max_examples=30, deadline=None)
@given(
    B=st.integers(1, 3),
    S=st.integers(1, 9),
    J=st.integers(1, 19),
    D=st.integers(1, 20),
    L=st.integers(1, 5),
    n=st.integers(0, 4),
    K=st.integers(1, 4),
    flags=st.sampled_from(FLAGS),
    seed=st.integers(0, 100),
)
# a bias gradient summed over 4,056 terms: the float32 paths 1e-5 from exact and 2.4e-5 apart, which the former
# comparison of the two (2e-5 of the magnitude) refused; found on an AVX2 CPU
@example(B=3, S=8, J=13, D=16, L=1, n=0, K=1, flags={"contextual": False}, seed=82)
def test_kernel_matches_pytorch_for_any_shape(B, S, J, D, L, n, K, flags, seed):
    """Sizes that are not multiples of 8 (the kernel pads J and D), windows wider than the sequence, K ≠ 3."""
    gcn = make_gcn(random_prior(K, J, seed), D, 8, seed=seed, neighbors=n, **flags)
    assert_same(gcn, *inputs(B, S, J, D, L, 8, seed=seed))


@pytest.mark.parametrize("variant", ["c", "avx2", "portable"])
def test_kernel_matches_pytorch_on_maps_wider_than_a_block(variant):
    """J = 70 (Jp = 72: a block of 64 columns and one of 8) and D = 20 (Dp = 24: a wide vector and a tail
    with 16 lanes, three vectors with 8)."""
    gcn = make_gcn(random_prior(3, 70, seed=7), 20, 8, seed=7, neighbors=1)
    kernel = variant if variant == "c" else other_build(variant)
    assert_same(gcn, *inputs(B=2, S=4, J=70, D=20, L=2, Dg=8, seed=7), kernel=kernel)


def test_kernel_is_chosen_only_where_it_applies():
    prior = torch.as_tensor(PT50.partition_adjacency())
    gcn = make_gcn(prior, 8, 16)
    h = torch.randn(1, 4, 50, 8)
    assert gcn.uses_kernel(h)  # "auto", float32 on the CPU
    assert not gcn.uses_kernel(h.double())  # auto falls back for other dtypes
    gcn.kernel = "torch"
    assert not gcn.uses_kernel(h)
    gcn.kernel = "c"
    with pytest.raises(RuntimeError, match="float32 CPU"):
        gcn.uses_kernel(h.double())
    fixed = ASGCN(prior, 8, 16, FocalConfig(width=8, contextual=False, semantic_mask=False))
    assert not fixed.uses_kernel(h)  # a frame-independent adjacency stays one einsum


def test_execution_path_is_chosen_in_one_place():
    prior = torch.as_tensor(PT50.partition_adjacency())
    gcn = make_gcn(prior, 8, 16, chunk_frames=8)
    h = torch.randn(2, 6, 50, 8)  # B = 2: chunks of 4 frames
    assert gcn.execution_path(h) == "kernel"
    gcn.kernel = "torch"
    assert gcn.execution_path(h) == "chunks"
    assert gcn.execution_path(h[:, :4]) == "frames"  # one chunk's worth
    gcn.chunk_frames = 0
    assert gcn.execution_path(h) == "frames"
    fixed = make_gcn(prior, 8, 16, chunk_frames=8, contextual=False, semantic_mask=False)
    assert fixed.execution_path(h) == "frames"  # a shared adjacency: one einsum over all frames


# --- the LayerNorm over narrow rows -------------------------------------------------------------


def assert_layer_norm_matches(shape, variant="native", transposed=False, seed=0):
    """Output and gradients against PyTorch's, each to float32 rounding of the terms it sums: the gradient of x
    cancels terms of size ρ·|dy ⊙ w| (ρ = 1/σ, large where a row's values nearly agree), and x̂ = (x − μ)ρ
    carries x's rounding times ρ·|x|; those of the weight and bias sum |dy ⊙ x̂| and |dy| over the rows."""
    g = torch.Generator().manual_seed(seed)
    D = shape[-1]
    x = torch.randn(shape, generator=g) * 3 + 1
    if transposed:  # a non-contiguous input, as the TCN's output is
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    w, b = torch.randn(D, generator=g), torch.randn(D, generator=g)
    dy = torch.randn(shape, generator=g)
    results = []
    for fn in (torch.nn.functional.layer_norm, kernels.layer_norm):
        leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
        if fn is torch.nn.functional.layer_norm:
            out = fn(leaves[0], (D,), leaves[1], leaves[2], 1e-5)
        else:
            out = fn(*leaves, 1e-5, variant=variant)
        results.append((out.detach(), *torch.autograd.grad(out, leaves, dy)))
    rho = torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    xhat = ((x - x.mean(-1, keepdim=True)) * rho).reshape(-1, D)
    scales = {
        "output": results[0][0].abs().max(),
        "grad x": rho.max() * (dy * w).abs().max() * max(1.0, (rho * x.abs()).max().item()),
        "grad weight": (dy.reshape(-1, D) * xhat).abs().sum(0).max(),
        "grad bias": dy.reshape(-1, D).abs().sum(0).max(),
    }
    for (what, scale), a, c in zip(scales.items(), *results, strict=True):
        err = (a - c).abs().max().item()
        assert err <= 2e-5 * max(scale.item(), 1.0), f"layer_norm {what}, shape {shape}: {err:.3g} at {scale:.3g}"


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.integers(1, 7), min_size=1, max_size=3), D=st.integers(2, 40), seed=st.integers(0, 100))
def test_layer_norm_matches_pytorch_for_any_shape(rows, D, seed):
    """From D = 2: a single channel normalises to x − μ = 0, which each side rounds differently, times 1/√eps."""
    assert_layer_norm_matches((*rows, D), seed=seed)


@pytest.mark.parametrize("variant", ["native", "avx2", "portable"])
@pytest.mark.parametrize("shape", [(16, 65, 50, 8), (2, 125, 50, 16), (3, 5, 7, 3)], ids=str)
def test_layer_norm_matches_pytorch_on_the_focal_stages_shapes(shape, variant):
    """synth.yaml's and paper.yaml's batches (D_f = 8, 16), and rows narrower than a vector; non-contiguous."""
    assert_layer_norm_matches(shape, variant if variant == "native" else other_build(variant), transposed=True)


def test_layer_norm_checks_its_arguments():
    x, w = torch.randn(4, 8), torch.ones(8)
    with pytest.raises(TypeError, match="x must be a float32 CPU tensor"):
        kernels.layer_norm(x.double(), w, w)
    with pytest.raises(ValueError, match=r"weight \(6,\)"):
        kernels.layer_norm(x, torch.ones(6), w)


def test_focal_norm_runs_the_library_where_the_asgcn_kernel_would():
    norm = FocalNorm(8)
    with torch.no_grad():
        norm.weight.normal_()
    h = torch.randn(2, 5, 50, 8, requires_grad=True)
    assert type(norm(h).grad_fn).__name__ == "_RowNormBackward"  # "auto", float32 on the CPU
    reference = torch.nn.functional.layer_norm(h, (8,), norm.weight, norm.bias, norm.eps)
    assert_close(norm(h), reference, "FocalNorm")
    norm.kernel = "torch"
    assert type(norm(h).grad_fn).__name__ != "_RowNormBackward"
    norm64 = FocalNorm(8).double()
    assert type(norm64(h.double()).grad_fn).__name__ != "_RowNormBackward"  # auto falls back for other dtypes
    norm64.kernel = "c"
    with pytest.raises(RuntimeError, match="float32 CPU"):
        norm64(h.double())
    assert set(norm.state_dict()) == {"weight", "bias"}  # checkpoints as nn.LayerNorm's


# --- the other builds ---------------------------------------------------------------------------


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line for line in f if line.startswith("flags")), "").split())
    except OSError:
        return set()


def test_native_build_is_as_wide_as_the_cpu_allows():
    lib = build.load()
    flags = cpu_flags()
    if "avx512f" in flags:
        assert (lib.asgcn_uses_avx(), lib.asgcn_lanes()) == (1, 16)
    elif "avx" in flags:
        assert (lib.asgcn_uses_avx(), lib.asgcn_lanes()) == (1, 8)
    else:
        assert lib.asgcn_lanes() == 8


def other_build(variant: str) -> str:
    """The variant's name, after skipping where this machine cannot build what it is meant to test."""
    if variant == "avx2":
        if not build.available("avx2") or build.load("avx2").asgcn_uses_avx() != 1:
            pytest.skip("the AVX2 build needs an x86 CPU with AVX and a compiler that knows -mno-avx512f")
        assert build.load("avx2").asgcn_lanes() == 8
    else:
        assert build.load(variant).asgcn_uses_avx() == 0  # the generic-vector branch, whatever the target
        assert build.load(variant).asgcn_lanes() == 8
    return variant


def test_builds_are_separate_and_an_unknown_one_is_refused():
    compiler = build.find_compiler()
    assert build.build(compiler, "portable") != build.build(compiler)  # cached side by side
    with pytest.raises(ValueError, match="unknown ASGCN kernel variant 'fast'"):
        build.load("fast")


@pytest.mark.parametrize("variant", ["avx2", "portable"])
@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "full")
def test_other_builds_match_pytorch(flags, variant):
    """J and D that are not multiples of 8, a window wider than the second sequence, padded glosses."""
    gcn = make_gcn(random_prior(3, 13, seed=4), 10, 8, seed=4, neighbors=2, **flags)
    assert_same(gcn, *inputs(B=2, S=7, J=13, D=10, L=3, Dg=8, seed=4), kernel=other_build(variant))


@pytest.mark.parametrize("variant", ["c", "avx2", "portable"])
def test_kernel_matches_pytorch_where_sigmoid_saturates(variant):
    """Scores far beyond ±88, where the exponential clamps its input and σ rounds to 0 or 1."""
    gcn = make_gcn(torch.as_tensor(PT50.partition_adjacency()), 8, 16, neighbors=2)
    with torch.no_grad():
        gcn.query.weight.mul_(100.0)
        gcn.separation_weight.mul_(100.0)
    kernel = variant if variant == "c" else other_build(variant)
    assert_same(gcn, *inputs(B=2, S=5, J=50, D=8, L=3, Dg=16, seed=5), kernel=kernel)


# --- argument checks ---------------------------------------------------------------------------

SIZES = {"B": 2, "S": 9, "J": 5, "K": 3, "D": 6, "n": 3, "L": 4}  # all different, so no mix-up goes unseen
DEFINING = {"x": range(5), "wagg": [1], "g": [2]}  # the axes the sizes are read from (see ASGCNArgs.dims)


def valid_args() -> kernels.ASGCNArgs:
    B, S, J, K, D, n, L = SIZES.values()
    gcn = make_gcn(random_prior(K, J, seed=6), D, 8, seed=6, neighbors=n)
    args = gcn.kernel_args(*inputs(B, S, J, D, L, 8, seed=6))
    assert args.check() == kernels.Dims(**SIZES)
    return args


def test_argument_shapes_are_documented_for_every_field():
    assert list(SHAPES) == [f.name for f in dataclasses.fields(kernels.ASGCNArgs)]


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_wrong_shape_is_named(name):
    """A dimension too many, or one axis one too long: ValueError naming the field and both shapes."""
    args = valid_args()
    shape = tuple(getattr(args, name).shape)
    axes = [a for a in range(len(shape)) if a not in DEFINING.get(name, ())]
    for bad in [(*shape, 1)] + [(*shape[:a], shape[a] + 1, *shape[a + 1 :]) for a in axes]:
        wrong = dataclasses.replace(args, **{name: torch.zeros(bad)})
        with pytest.raises(ValueError, match=rf"ASGCNArgs\.{name}: expected .*, got {re.escape(str(bad))}"):
            wrong.check()
        with pytest.raises(ValueError, match=rf"ASGCNArgs\.{name}: "):  # before any C runs
            kernels.fused_asgcn(wrong)


def test_a_wrong_size_where_sizes_are_read_is_caught_where_it_no_longer_fits():
    args = valid_args()
    for name, axes in DEFINING.items():
        shape = tuple(getattr(args, name).shape)
        for a in axes:
            wrong = dataclasses.replace(args, **{name: torch.zeros(*shape[:a], shape[a] + 1, *shape[a + 1 :])})
            with pytest.raises(ValueError, match=r"ASGCNArgs\.\w+: expected"):
                wrong.check()


def test_expected_shape_is_spelled_out():
    args = valid_args()
    expected = re.escape("ASGCNArgs.valid: expected (B, S, 2n+1) = (2, 9, 7), got (2, 9, 6)")
    with pytest.raises(ValueError, match=expected):
        dataclasses.replace(args, valid=torch.zeros(2, 9, 6)).check()
    padded = dataclasses.replace(args, kt=args.kt[..., :5])  # kt: J columns, or J padded to 8
    assert padded.check() == args.check()


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_wrong_dtype_or_device_is_named(name):
    args = valid_args()
    t = getattr(args, name)
    for bad in (t.double(), t.to("meta"), t.numpy(force=True)):
        with pytest.raises(TypeError, match=rf"ASGCNArgs\.{name}: the fused ASGCN kernel takes float32 CPU"):
            dataclasses.replace(args, **{name: bad}).check()


@pytest.mark.parametrize("name", CONTEXTUAL + SEMANTIC)
def test_a_term_given_in_part_is_refused(name):
    with pytest.raises(ValueError, match=rf"missing {name}$"):
        dataclasses.replace(valid_args(), **{name: None}).check()


def test_kernel_library_is_built_once_and_reused(tmp_path):
    env = {**os.environ, "FGDM_CACHE": str(tmp_path)}
    code = "from fgdm.model import kernels; assert kernels.available(), kernels.unavailable_reason()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    (lib,) = (tmp_path / "kernels").glob("asgcn-*.so")
    stamp = lib.stat().st_mtime_ns
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert lib.stat().st_mtime_ns == stamp and len(list((tmp_path / "kernels").iterdir())) == 1


def test_without_a_compiler_asgcn_falls_back_and_says_why(tmp_path):
    env = {**os.environ, "FGDM_CACHE": str(tmp_path), "CC": str(tmp_path / "no-such-cc")}
    code = (
        "import torch; from fgdm.model import kernels; from fgdm.config import FocalConfig;"
        "from fgdm.model.asgcn import ASGCN; from fgdm.skeleton import PT50\n"
        "assert not kernels.available(); print(kernels.unavailable_reason())\n"
        "gcn = ASGCN(torch.as_tensor(PT50.partition_adjacency()), 8, 16, FocalConfig(width=8))\n"
        "h = torch.randn(1, 4, 50, 8); assert not gcn.uses_kernel(h)\n"
        "fm, gm = torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)\n"
        "print(gcn(h, torch.randn(1, 2, 16), fm, gm).shape); gcn(h, torch.randn(1, 2, 16), fm, gm)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "building the ASGCN kernel failed" in done.stdout and "torch.Size([1, 4, 50, 8])" in done.stdout
    assert done.stderr.count("ASGCN runs on its slower PyTorch path") == 1  # said once, not per call


@pytest.mark.parametrize("kernel", ["c", "torch"])
def test_bf16_mixed_training_on_a_cpu_keeps_the_focal_stage_in_float32_where_the_kernel_computes(kernel):
    """Under CPU autocast (training.precision: bf16-mixed) the Focal stage runs in float32 through the fused
    kernel (model.focal.kernel=c raised a TypeError before); on the PyTorch path (kernel=torch) it follows
    autocast, as it does on a GPU, so ASGCN's products are bfloat16. Either way the loss and every gradient are
    finite, every parameter float32 training reaches has a gradient, and the loss is within bfloat16 rounding of
    float32's."""
    from fgdm.model import build_model
    from helpers import V, activate, batch, tiny

    torch.manual_seed(0)
    model = activate(build_model(tiny(**{"model.focal.kernel": kernel}), V))
    pose, fm, gloss, gm = batch()
    t = torch.tensor([10, 50, 90])
    reference = model.loss(pose, fm, gloss, gm, t=t, generator=torch.Generator().manual_seed(1)).total
    reference.backward()
    reached = {name for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    seen = []
    hooks = [model.denoiser.focal.register_forward_hook(lambda m, args, out: seen.append(("stage", out.dtype)))]
    hooks += [block.gcn.register_forward_hook(lambda m, args, out: seen.append(("asgcn", out.dtype)))
              for block in model.denoiser.focal.blocks]  # fmt: skip
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(pose, fm, gloss, gm, t=t, generator=torch.Generator().manual_seed(1)).total
    for hook in hooks:
        hook.remove()
    loss.backward()
    inner = torch.float32 if kernel == "c" else torch.bfloat16
    assert seen == [("asgcn", inner)] * 2 + [("stage", torch.float32)]  # its residual sums stay float32
    assert {name for name, p in model.named_parameters() if p.grad is not None} == reached
    assert all(p.grad is None or bool(p.grad.isfinite().all()) for p in model.parameters())
    assert abs(float(loss.detach()) - float(reference.detach())) < 0.02 * float(reference.detach())
