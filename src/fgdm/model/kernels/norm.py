"""LayerNorm over narrow rows by the kernel library (``rownorm_*`` in ``asgcn.c``): the Focal stage's norm.

The Focal stage normalises each joint's D_f channels (8 in synth.yaml, 16 in paper.yaml). PyTorch's CPU
LayerNorm vectorises along a row, so such rows run its scalar loop, and its backward pass accumulates the
weight's and bias's gradients in per-thread rows that share cache lines: at D = 8 a forward and backward
pass over a synth.yaml batch takes ~6 ms, against ~0.6 ms here. Same equation as ``nn.LayerNorm`` (biased
variance, eps inside the root), up to float rounding (``tests/test_kernels.py``).
"""

from __future__ import annotations

import torch

from fgdm.model.compiled import outside_graphs
from fgdm.model.kernels import build


class _RowNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps: float, variant: str):
        lib = build.load(variant)
        D = x.shape[-1]
        x, weight, bias = x.detach().contiguous(), weight.detach().contiguous(), bias.detach().contiguous()
        rows = x.numel() // D
        out, stats = torch.empty_like(x), x.new_empty(2, rows)  # μ and ρ of each row
        T = build.threads(rows)
        pointers = (x.data_ptr(), weight.data_ptr(), bias.data_ptr())
        build.check(
            lib.rownorm_forward(*pointers, eps, rows, D, T, out.data_ptr(), stats[0].data_ptr(), stats[1].data_ptr()),
            "LayerNorm kernel",
        )
        ctx.save_for_backward(x, weight, stats)
        ctx.variant = variant
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, stats = ctx.saved_tensors
        lib = build.load(ctx.variant)
        D = x.shape[-1]
        rows = x.numel() // D
        grad = grad.contiguous()
        T = build.threads(rows)
        dx, dw, db = torch.empty_like(x), x.new_empty(T, D), x.new_empty(T, D)
        inputs = (x.data_ptr(), weight.data_ptr(), stats[0].data_ptr(), stats[1].data_ptr(), grad.data_ptr())
        outputs = (dx.data_ptr(), dw.data_ptr(), db.data_ptr())
        build.check(lib.rownorm_backward(*inputs, rows, D, T, *outputs), "LayerNorm kernel")
        return dx, dw.sum(0), db.sum(0), None, None


@outside_graphs  # a call into the C library: torch.compile runs it as it is, between its graphs
def layer_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5, *, variant: str = "native"
) -> torch.Tensor:
    """``nn.functional.layer_norm(x, (D,), weight, bias, eps)`` over the last dimension D of x, differentiable in
    all three; float32 CPU tensors, weight and bias of shape (D,). ``variant``: the library's build (build.py)."""
    for name, t in (("x", x), ("weight", weight), ("bias", bias)):
        if not (isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.is_cpu):
            raise TypeError(f"layer_norm: {name} must be a float32 CPU tensor")
    D = x.shape[-1] if x.dim() else 0
    if D == 0 or weight.shape != (D,) or bias.shape != (D,):
        raise ValueError(
            f"layer_norm: x (..., D) with D > 0 and weight, bias (D,); got x {tuple(x.shape)}, "
            f"weight {tuple(weight.shape)}, bias {tuple(bias.shape)}"
        )
    if build.load(variant) is None:
        raise RuntimeError(f"the kernel library is unavailable: {build.unavailable_reason(variant)}")
    return _RowNorm.apply(x, weight, bias, float(eps), variant)
