"""The fused ASGCN kernel (``asgcn.c``): built with the system C compiler on first use, called through ctypes.

Why C: ASGCN's work is ~0.5 GMAC per layer spread over thousands of 50×50 maps; through PyTorch it runs
as small batched products and elementwise passes over (B, S, 2n+1, J, J) tensors at ~14 GFLOP/s. The
kernel keeps one frame's maps in cache and does the whole adjacency and its messages in one pass,
forward and backward (see ``benchmarks/results/speed.md``). Its results equal the PyTorch path's up to
float rounding (``tests/test_kernels.py``).

The library is compiled once per source, compiler flags and CPU into a cache directory
(``$FGDM_CACHE`` or ``~/.cache/fgdm``) and reused; without a C compiler :func:`available` is False and
ASGCN keeps its PyTorch path. Frames are split into one contiguous range per PyTorch thread; the
library's OpenMP threads are PyTorch's own when both use libgomp (see the note in ``asgcn.c``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import torch
from torch import nn

SOURCE = Path(__file__).with_name("asgcn.c")
# -ffast-math lets the compiler vectorise the reductions; the library is linked in a separate step
# without it, so the start-up file that sets flush-to-zero for the whole process is not linked in.
# Without OpenMP (e.g. Apple's clang) the kernel runs on one thread; without -march=native it is portable.
_BASE = ["-O3", "-ffast-math", "-fno-finite-math-only", "-fPIC", "-std=c11"]
FLAG_SETS = [
    (["-march=native", *_BASE, "-fopenmp"], ["-shared", "-fopenmp"]),
    ([*_BASE, "-fopenmp"], ["-shared", "-fopenmp"]),
    (_BASE, ["-shared"]),
]

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_error: str | None = None
_warned = False


class _Args(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("S", "J", "D", "K", "W", "L", "Jp", "Dp")] + [
        (name, ctypes.c_void_p)
        for name in ("q", "kt", "kk", "valid", "wagg", "bagg", "prior", "g", "proto", "sw", "sb", "x", "xb")
    ]


def _cache_dir() -> Path:
    root = os.environ.get("FGDM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fgdm"
    )
    return Path(root) / "kernels"


def _cpu_signature() -> str:
    """What -march=native depends on: the machine and, on Linux, the CPU's feature flags."""
    sig = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            sig += next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return sig


def _build(compiler: str) -> Path:
    """Compiles the library into the cache (or finds it there); falls back to portable flags if needed."""
    source, cpu = SOURCE.read_bytes(), _cpu_signature().encode()
    targets = []
    for compile_flags, link_flags in FLAG_SETS:
        flags = " ".join(compile_flags + link_flags).encode()
        key = hashlib.sha256(b"\0".join([source, flags, cpu, compiler.encode()])).hexdigest()[:16]
        targets.append(_cache_dir() / f"asgcn-{key}.so")
    for target in targets:  # a build from an earlier run, even with fallback flags, is not attempted again
        if target.exists():
            return target
    errors = []
    for (compile_flags, link_flags), target in zip(FLAG_SETS, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            obj, lib = Path(tmp) / "asgcn.o", Path(tmp) / "asgcn.so"
            for cmd in (
                [compiler, *compile_flags, "-c", str(SOURCE), "-o", str(obj)],
                [compiler, str(obj), *link_flags, "-o", str(lib)],
            ):
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    errors.append(f"`{' '.join(cmd)}` failed:\n{run.stderr.strip()}")
                    break
            else:
                os.replace(lib, target)  # atomic: concurrent processes (DDP) each build, one file wins
                return target
    raise RuntimeError("\n".join(errors))


def _load() -> ctypes.CDLL | None:
    global _library, _error
    with _lock:
        if _library is not None or _error is not None:
            return _library
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            _error = "no C compiler found (set CC or install gcc)"
            return None
        try:
            lib = ctypes.CDLL(str(_build(compiler)))
        except (OSError, RuntimeError) as e:
            _error = f"building the ASGCN kernel failed: {e}"
            return None
        args = ctypes.POINTER(_Args)
        lib.asgcn_forward.argtypes = [args, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p]
        lib.asgcn_backward.argtypes = [args, ctypes.c_int64, ctypes.c_int] + [ctypes.c_void_p] * 10
        lib.asgcn_forward.restype = lib.asgcn_backward.restype = ctypes.c_int
        _library = lib
        return lib


def available() -> bool:
    """True when the kernel is (or can be) built and loaded; see :func:`unavailable_reason`."""
    return _load() is not None


def unavailable_reason() -> str | None:
    """Why the kernel cannot be used, or None."""
    _load()
    return _error


def warn_unavailable() -> None:
    """Says once per process that ASGCN falls back to its (slower) PyTorch path, and why."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"the fused ASGCN kernel is unavailable ({_error}); ASGCN runs on its slower PyTorch path "
            "(set model.focal.kernel=torch to choose it explicitly)",
            stacklevel=3,
        )


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _check(failed: int) -> None:
    if failed:
        raise MemoryError("the ASGCN kernel could not allocate its scratch memory")


def _threads(frames: int) -> int:
    return max(1, min(torch.get_num_threads(), frames))


def _pad(t: torch.Tensor | None, size: int) -> torch.Tensor | None:
    """Zero-pads the last dimension to ``size`` (contiguous, detached)."""
    if t is None:
        return None
    t = t.detach()
    return nn.functional.pad(t, (0, size - t.shape[-1])).contiguous() if t.shape[-1] < size else t.contiguous()


def padded_size(n: int) -> int:
    """n rounded up to a multiple of 8, the kernel's vector width (its J and D are padded to this)."""
    return -(-n // 8) * 8


class _FusedASGCN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, kt, valid, wagg, bagg, prior, g, proto, sw, sb, x, xb):
        lib = _load()
        B, S, J, K, D = x.shape
        Jp, Dp = padded_size(J), padded_size(D)
        W = 0 if valid is None else valid.shape[-1]
        L = 0 if g is None else g.shape[-1]
        kt_width = None if kt is None else kt.shape[-1]  # J, or already padded to Jp
        plain = [None if t is None else t.detach().contiguous() for t in (q, valid, wagg, bagg, g, sw, sb)]
        q, valid, wagg, bagg, g, sw, sb = plain
        kt, prior, proto, x, xb = _pad(kt, Jp), _pad(prior, Jp), _pad(proto, Jp), _pad(x, Dp), _pad(xb, Dp)
        inputs = (q, kt, None, valid, wagg, bagg, prior, g, proto, sw, sb, x, xb)
        args = _Args(S, J, D, K, W, L, Jp, Dp, *map(_ptr, inputs))
        out = x.new_empty(B, S, J, Dp)
        _check(lib.asgcn_forward(ctypes.byref(args), B * S, _threads(B * S), out.data_ptr()))
        ctx.save_for_backward(*[t for t in inputs if t is not None])
        ctx.present = [t is not None for t in inputs]
        ctx.dims = (B, S, J, K, D, W, L, Jp, Dp)
        ctx.kt_width = None if kt is None else kt_width
        return out[..., :D] if Dp > D else out

    @staticmethod
    def backward(ctx, grad):
        lib = _load()
        saved = iter(ctx.saved_tensors)
        q, kt, _, valid, wagg, bagg, prior, g, proto, sw, sb, x, xb = [next(saved) if p else None for p in ctx.present]
        B, S, J, K, D, W, L, Jp, Dp = ctx.dims
        contextual, semantic = q is not None, g is not None
        kk = _pad(kt[..., :J].transpose(-1, -2), Dp) if contextual else None  # keys untransposed (B, S+2n, J, Dp)
        grad = _pad(grad, Dp)
        inputs = (q, kt, kk, valid, wagg, bagg, prior, g, proto, sw, sb, x, xb)
        args = _Args(S, J, D, K, W, L, Jp, Dp, *map(_ptr, inputs))
        T = _threads(B * S)
        dq = x.new_empty(B, S, J, Dp) if contextual else None
        dkwin = x.new_empty(B, S, W, D, Jp) if contextual else None
        dx = torch.empty_like(x)
        dmbar = x.new_empty(B, S, J, Jp) if semantic else None
        dwagg = x.new_zeros(T, K, W) if contextual else None
        dbagg = x.new_zeros(T, K) if contextual else None
        dprior = x.new_zeros(T, K, J, Jp) if prior is not None else None
        dsw = x.new_zeros(T, K) if semantic else None
        dsb = x.new_zeros(T, K) if semantic else None

        parts = map(_ptr, (dwagg, dbagg, dprior, dsw, dsb))
        grads = (grad.data_ptr(), _ptr(dq), _ptr(dkwin), dx.data_ptr(), _ptr(dmbar), *parts)
        _check(lib.asgcn_backward(ctypes.byref(args), B * S, T, *grads))
        dkt = None
        if contextual:
            dkt = torch.zeros_like(kt)
            for m in range(W):  # each frame's window m reads padded key frame i + m
                dkt[:, m : m + S] += dkwin[:, :, m]
            dkt, dq = dkt[..., : ctx.kt_width], dq[..., :D]
        dg = dproto = None
        if semantic:
            flat = dmbar[..., :J].reshape(B, S, J * J)
            dg = torch.bmm(flat, proto[..., :J].reshape(B, L, J * J).transpose(1, 2))  # (B, S, L)
            dproto = torch.bmm(g.transpose(1, 2), flat).view(B, L, J, J)
        total = [None if t is None else t.sum(0) for t in (dwagg, dbagg, dprior, dsw, dsb)]
        if total[2] is not None:
            total[2] = total[2][..., :J]
        dxb = dx.sum((0, 1, 2))[..., :D] if xb is not None else None
        return dq, dkt, None, total[0], total[1], total[2], dg, dproto, total[3], total[4], dx[..., :D], dxb


def fused_asgcn(
    x: torch.Tensor,
    q: torch.Tensor | None = None,
    kt: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    wagg: torch.Tensor | None = None,
    bagg: torch.Tensor | None = None,
    prior: torch.Tensor | None = None,
    g: torch.Tensor | None = None,
    proto: torch.Tensor | None = None,
    sw: torch.Tensor | None = None,
    sb: torch.Tensor | None = None,
    xb: torch.Tensor | None = None,
) -> torch.Tensor:
    """Σ_k ((A_b + A_a) ⊙ M)_k (x_k + xb_k) per frame, differentiable in every float input.

    Shapes: x (B, S, J, K, D) (W_k H with the partitions after the joints) and xb (K, D) its bias or None;
    contextual term (all or none): q (B, S, J, D) scaled by 1/√D, kt (B, S + 2n, D, J) zero-padded keys
    (or already zero-padded to J rounded up to a multiple of 8), valid (B, S, 2n+1), wagg (K, 2n+1),
    bagg (K); prior (K, J, J) = A_b or None; semantic mask (all or none): g (B, S, L) gloss weights,
    proto (B, L, J, J), sw and sb (K). Returns (B, S, J, D). float32 CPU tensors only.
    """
    if _load() is None:
        raise RuntimeError(f"the fused ASGCN kernel is unavailable: {_error}")
    tensors = [t for t in (x, q, kt, valid, wagg, bagg, prior, g, proto, sw, sb, xb) if t is not None]
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        raise TypeError("the fused ASGCN kernel takes float32 CPU tensors only")
    if kt is not None and kt.shape[-1] not in (x.shape[2], padded_size(x.shape[2])):
        raise ValueError(f"kt: last dimension {kt.shape[-1]} is neither J = {x.shape[2]} nor J padded to 8")
    return _FusedASGCN.apply(q, kt, valid, wagg, bagg, prior, g, proto, sw, sb, x, xb)
