"""The fused ASGCN kernel as a differentiable PyTorch operation: its checked arguments and its autograd.

:func:`fused_asgcn` takes an :class:`ASGCNArgs`, checks it (a wrong shape in C would read out of
bounds, not raise), lays the tensors out as ``asgcn.c`` reads them (detached, contiguous, J and D
zero-padded to multiples of 8) and calls the library from ``build.py``, forward and backward. Frames are
split into one contiguous range per PyTorch thread.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from torch import nn

from fgdm.model.compiled import outside_graphs
from fgdm.model.kernels import build

# Each argument's dimensions, named as in Dims; kt's last one may also be J already padded to a multiple of 8.
SHAPES: dict[str, tuple[str, ...]] = {
    "x": ("B", "S", "J", "K", "D"),
    "q": ("B", "S", "J", "D"),
    "kt": ("B", "S+2n", "D", "J"),
    "valid": ("B", "S", "2n+1"),
    "wagg": ("K", "2n+1"),
    "bagg": ("K",),
    "prior": ("K", "J", "J"),
    "g": ("B", "S", "L"),
    "proto": ("B", "L", "J", "J"),
    "sw": ("K",),
    "sb": ("K",),
    "xb": ("K", "D"),
}
CONTEXTUAL = ("q", "kt", "valid", "wagg", "bagg")  # the contextual term: all or none
SEMANTIC = ("g", "proto", "sw", "sb")  # the semantic mask: all or none
_PADDED = {"kt": "J", "prior": "J", "proto": "J", "x": "D", "xb": "D"}  # last dimension padded in asgcn.c


def padded_size(n: int) -> int:
    """n rounded up to a multiple of 8, the kernel's vector width (its J and D are padded to this)."""
    return -(-n // 8) * 8


class Dims(NamedTuple):
    """The sizes the arguments are checked against: B, S, J, K, D from x, n from wagg, L from g (0 if absent)."""

    B: int
    S: int
    J: int
    K: int
    D: int
    n: int
    L: int

    def size(self, symbol: str) -> int:
        """The size a dimension of SHAPES stands for."""
        if symbol == "S+2n":
            return self.S + 2 * self.n
        if symbol == "2n+1":
            return 2 * self.n + 1
        return getattr(self, symbol)


@dataclass(frozen=True, eq=False)  # eq: tensors do not compare to one bool
class ASGCNArgs:
    """The inputs of Σ_k ((A_b + A_a) ⊙ M)_k (x_k + xb_k) per frame; float32 CPU tensors.

    Shape:
        x (B, S, J, K, D): W_k H with the partitions after the joints; xb (K, D) its bias, or None.
        Contextual term A_a (all five or none): q (B, S, J, D) the queries scaled by 1/√D; kt (B, S + 2n, D, J)
        the keys transposed per frame, zero outside the sequence (J may already be zero-padded to a multiple
        of 8); valid (B, S, 2n+1), 1 where frame i's offset m lands on a valid frame; wagg (K, 2n+1) and
        bagg (K), W_Agg.
        prior (K, J, J): A_b, or None.
        Semantic mask M (all four or none): g (B, S, L) the gloss weights, proto (B, L, J, J) the prototype
        masks, sw and sb (K) the separation's weight and bias.
    """

    x: torch.Tensor
    q: torch.Tensor | None = None
    kt: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    wagg: torch.Tensor | None = None
    bagg: torch.Tensor | None = None
    prior: torch.Tensor | None = None
    g: torch.Tensor | None = None
    proto: torch.Tensor | None = None
    sw: torch.Tensor | None = None
    sb: torch.Tensor | None = None
    xb: torch.Tensor | None = None

    @property
    def contextual(self) -> bool:
        return self.q is not None

    @property
    def semantic(self) -> bool:
        return self.g is not None

    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        """The fields in order (no copies, unlike dataclasses.astuple)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def items(self) -> list[tuple[str, torch.Tensor | None]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def dims(self) -> Dims:
        """B, S, J, K, D from x, n from wagg (K, 2n+1) and L from g (B, S, L); ValueError where they cannot be read."""
        for name, ndim in (("x", 5), ("wagg", 2), ("g", 3)):
            t = getattr(self, name)
            if t is not None and t.dim() != ndim:
                raise ValueError(f"ASGCNArgs.{name}: expected {ndim} dimensions {_symbols(name)}, got {_shape(t)}")
        if self.wagg is not None and self.wagg.shape[1] % 2 == 0:
            raise ValueError(f"ASGCNArgs.wagg: expected (K, 2n+1), got {_shape(self.wagg)} (an even window)")
        n = 0 if self.wagg is None else self.wagg.shape[1] // 2
        return Dims(*self.x.shape, n=n, L=0 if self.g is None else self.g.shape[2])

    def check(self) -> Dims:
        """The dims, after checking every argument: TypeError for one that is not a float32 CPU tensor,
        ValueError (naming it, the expected shape and the actual one) for a contextual term or mask given
        in part or a shape that does not fit the others."""
        for name, t in self.items():
            if (t is not None or name == "x") and not (
                isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.is_cpu
            ):
                got = f"{t.dtype} on {t.device}" if isinstance(t, torch.Tensor) else type(t).__name__
                raise TypeError(f"ASGCNArgs.{name}: the fused ASGCN kernel takes float32 CPU tensors only, got {got}")
        for group, what in ((CONTEXTUAL, "the contextual term"), (SEMANTIC, "the semantic mask")):
            missing = [name for name in group if getattr(self, name) is None]
            if 0 < len(missing) < len(group):
                raise ValueError(f"ASGCNArgs: {what} needs all of {', '.join(group)}; missing {', '.join(missing)}")
        dims = self.dims()
        for name, t in self.items():
            if t is None:
                continue
            expected = tuple(dims.size(s) for s in SHAPES[name])
            allowed = [expected, (*expected[:-1], padded_size(dims.J))] if name == "kt" else [expected]
            if tuple(t.shape) not in allowed:
                raise ValueError(
                    f"ASGCNArgs.{name}: expected {_symbols(name)} = {expected}, got {_shape(t)} "
                    "(B, S, J, K, D as in x, n as in wagg, L as in g)"
                )
        return dims


def _symbols(name: str) -> str:
    return f"({', '.join(SHAPES[name])})"


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _pad(t: torch.Tensor | None, size: int | None) -> torch.Tensor | None:
    """Detached and contiguous, the last dimension zero-padded to ``size`` (if given)."""
    if t is None:
        return None
    t = t.detach()
    return nn.functional.pad(t, (0, size - t.shape[-1])).contiguous() if size and t.shape[-1] < size else t.contiguous()


def _kernel_layout(args: ASGCNArgs, dims: Dims) -> ASGCNArgs:
    """The tensors as asgcn.c reads them: kt, prior and proto with Jp columns, x and xb with Dp."""
    padded = {"J": padded_size(dims.J), "D": padded_size(dims.D)}
    return ASGCNArgs(**{name: _pad(t, padded[_PADDED[name]] if name in _PADDED else None) for name, t in args.items()})


def _c_args(k: ASGCNArgs, dims: Dims, kk: torch.Tensor | None = None) -> build.CArgs:
    """asgcn.c's argument struct for tensors in the kernel layout; kk: the untransposed keys (backward only)."""
    W = 2 * dims.n + 1 if k.contextual else 0
    sizes = {"S": dims.S, "J": dims.J, "D": dims.D, "K": dims.K, "W": W, "L": dims.L}
    sizes |= {"Jp": padded_size(dims.J), "Dp": padded_size(dims.D)}
    pointers = {name: None if t is None else t.data_ptr() for name, t in k.items()}
    return build.CArgs(**sizes, **pointers, kk=None if kk is None else kk.data_ptr())


class _FusedASGCN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dims: Dims, variant: str, *tensors: torch.Tensor | None) -> torch.Tensor:
        lib = build.load(variant)
        B, S, J, _, D, _, _ = dims
        Dp = padded_size(D)
        args = ASGCNArgs(*tensors)
        k = _kernel_layout(args, dims)
        out = k.x.new_empty(B, S, J, Dp)
        failed = lib.asgcn_forward(ctypes.byref(_c_args(k, dims)), B * S, build.threads(B * S), out.data_ptr())
        build.check(failed, "ASGCN kernel")
        ctx.save_for_backward(*[t for t in k.tensors() if t is not None])
        ctx.present = [t is not None for t in k.tensors()]
        ctx.dims, ctx.variant = dims, variant
        ctx.kt_width = None if args.kt is None else args.kt.shape[-1]  # J, or already padded to Jp
        return out[..., :D] if Dp > D else out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        lib = build.load(ctx.variant)
        saved = iter(ctx.saved_tensors)
        k = ASGCNArgs(*[next(saved) if p else None for p in ctx.present])
        dims = ctx.dims
        B, S, J, K, D, n, L = dims
        W, Jp, Dp = 2 * n + 1, padded_size(J), padded_size(D)
        contextual, semantic, x = k.contextual, k.semantic, k.x
        kk = _pad(k.kt[..., :J].transpose(-1, -2), Dp) if contextual else None  # keys untransposed (B, S+2n, J, Dp)
        grad = _pad(grad, Dp)
        T = build.threads(B * S)
        dq = x.new_empty(B, S, J, Dp) if contextual else None
        dkwin = x.new_empty(B, S, W, D, Jp) if contextual else None
        dx = torch.empty_like(x)
        dmbar = x.new_empty(B, S, J, Jp) if semantic else None
        dwagg = x.new_zeros(T, K, W) if contextual else None
        dbagg = x.new_zeros(T, K) if contextual else None
        dprior = x.new_zeros(T, K, J, Jp) if k.prior is not None else None
        dsw = x.new_zeros(T, K) if semantic else None
        dsb = x.new_zeros(T, K) if semantic else None

        buffers = (grad, dq, dkwin, dx, dmbar, dwagg, dbagg, dprior, dsw, dsb)
        pointers = [None if t is None else t.data_ptr() for t in buffers]
        build.check(lib.asgcn_backward(ctypes.byref(_c_args(k, dims, kk)), B * S, T, *pointers), "ASGCN kernel")
        dkt = None
        if contextual:
            dkt = torch.zeros_like(k.kt)
            for m in range(W):  # each frame's window m reads padded key frame i + m
                dkt[:, m : m + S] += dkwin[:, :, m]
            dkt, dq = dkt[..., : ctx.kt_width], dq[..., :D]
        dg = dproto = None
        if semantic:
            # in the padded layout, without copying: proto's padded columns are zero, so dmbar's add nothing to dg
            flat = dmbar.view(B, S, J * Jp)
            dg = torch.bmm(flat, k.proto.view(B, L, J * Jp).transpose(1, 2))  # (B, S, L)
            dproto = torch.bmm(k.g.transpose(1, 2), flat).view(B, L, J, Jp)[..., :J]
        dwagg, dbagg, dprior, dsw, dsb = [None if t is None else t.sum(0) for t in (dwagg, dbagg, dprior, dsw, dsb)]
        grads = ASGCNArgs(
            x=dx[..., :D],
            q=dq,
            kt=dkt,
            wagg=dwagg,
            bagg=dbagg,
            prior=None if dprior is None else dprior[..., :J],
            g=dg,
            proto=dproto,
            sw=dsw,
            sb=dsb,
            xb=dx.sum((0, 1, 2))[..., :D] if k.xb is not None else None,
        )  # valid: a mask, no gradient
        return None, None, *grads.tensors()


@outside_graphs  # a call into the C library: torch.compile runs it as it is, between its graphs
def fused_asgcn(args: ASGCNArgs, *, variant: str = "native") -> torch.Tensor:
    """Σ_k ((A_b + A_a) ⊙ M)_k (x_k + xb_k) per frame: (B, S, J, D), differentiable in every float input.

    ``variant`` names the build of the library (see ``build.py``): the one tuned to this CPU, or for the
    tests one of the others. Raises RuntimeError if the kernel is unavailable, TypeError or ValueError for
    wrong arguments.
    """
    if build.load(variant) is None:
        raise RuntimeError(f"the fused ASGCN kernel is unavailable: {build.unavailable_reason(variant)}")
    dims = args.check()
    return _FusedASGCN.apply(dims, variant, *args.tensors())
