"""The fused C kernel of ASGCN computes what the PyTorch path computes: outputs and every gradient."""

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgdm.config import FocalConfig
from fgdm.model import kernels
from fgdm.model.focal import ASGCN
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
    gcn.kernel = kernel
    assert gcn.uses_kernel(h) == (kernel == "c")
    h, cond = h.clone().requires_grad_(True), cond.clone().requires_grad_(True)
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


def assert_same(gcn: ASGCN, h, cond, fm, gm) -> None:
    out_t, grads_t = run(gcn, "torch", h, cond, fm, gm)
    out_c, grads_c = run(gcn, "c", h, cond, fm, gm)
    assert_close(out_t, out_c, "output")
    names = ["h", "cond", *(n for n, _ in gcn.named_parameters())]
    for name, a, b in zip(names, grads_t, grads_c, strict=True):
        assert (a is None) == (b is None), name
        if a is not None:
            assert_close(a, b, f"grad {name}")


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
def test_kernel_matches_pytorch_for_any_shape(B, S, J, D, L, n, K, flags, seed):
    """Sizes that are not multiples of 8 (the kernel pads J and D), windows wider than the sequence, K ≠ 3."""
    gcn = make_gcn(random_prior(K, J, seed), D, 8, seed=seed, neighbors=n, **flags)
    assert_same(gcn, *inputs(B, S, J, D, L, 8, seed=seed))


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
        "from fgdm.model.focal import ASGCN; from fgdm.skeleton import PT50\n"
        "assert not kernels.available(); print(kernels.unavailable_reason())\n"
        "gcn = ASGCN(torch.as_tensor(PT50.partition_adjacency()), 8, 16, FocalConfig(width=8))\n"
        "h = torch.randn(1, 4, 50, 8); assert not gcn.uses_kernel(h)\n"
        "fm, gm = torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)\n"
        "print(gcn(h, torch.randn(1, 2, 16), fm, gm).shape); gcn(h, torch.randn(1, 2, 16), fm, gm)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "building the ASGCN kernel failed" in done.stdout and "torch.Size([1, 4, 50, 8])" in done.stdout
    assert done.stderr.count("ASGCN runs on its slower PyTorch path") == 1  # said once, not per call
