"""What the model does for ``torch.compile`` (``training.compile``, sampling's ``compile``) so that its training
loss compiles once for every batch shape, and how fgdm compiles (:func:`compile_module`).

**Dynamic dimensions.** :func:`dynamic` marks a tensor's batch and frame (or gloss) dimensions dynamic, so code
compiled for it serves every size from the first compilation. ``fgdm/training/compiling.py`` marks the loss's
inputs; the SCG branch marks what its eager parts return into compiled code.

**Convolutions along the frames.** Inductor's backward of a convolution fixed the frame count it was compiled
for: the backward's compilation gives the convolution's saved input the strides of the forward's real tensors,
and its convolution lowering then guards on the frame count (benchmarks/results/speed.md, *One compilation for
every frame count*). So under compilation the Focal stage's TCN and the SCG branch's convolutions are computed
here: the k shifted copies of the zero-padded input (:func:`frame_windows`), times the kernel as one matrix. That
computes what the convolution computes (a test compares them); eager runs keep PyTorch's convolution.

**Windows of frames.** Inductor's CPU code for the backward of ``unfold`` along the frames, a scatter-add, wrote
gradients to the wrong places and past its buffer's end when run on two threads or more (torch 2.11 and 2.13):
wrong key gradients in ASGCN's contextual term, and now and then an abort on a corrupted heap. So under
compilation :func:`frame_windows` stacks shifted slices, whose backward adds slices; eager runs keep the view
(benchmarks/results/speed.md, *A wrong gradient in compiled CPU code, and the crash it caused*).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

_OUTSIDE: list[Callable[[], Callable]] = []  # each outside_graphs wrapper's maker of its torch.compiler.disable(fn)

# the most compilations of one function torch may keep (its default: 8): what is left to compile again for is a
# dimension of size 1 (a batch of one sequence, one gloss) and, on a CPU, its code generator's thresholds on B · S
RECOMPILE_LIMIT = 64
# the modes of torch.compile that record CUDA graphs, one per input shape
CUDA_GRAPHS = ("reduce-overhead", "max-autotune")


def compile_module(fn: Callable, mode: bool | str) -> Callable:
    """``torch.compile(fn)`` in ``mode`` (True: the default mode) as fgdm compiles: every :func:`outside_graphs`
    function made first (:func:`disable_outside_graphs`) and torch's recompile limit raised to
    :data:`RECOMPILE_LIMIT` (a process-wide setting of Dynamo's), so that each of the few compilations that new
    shapes need keeps its code instead of falling back to eager."""
    import torch._dynamo

    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    disable_outside_graphs()
    return torch.compile(fn, mode=None if mode is True else mode)


def frame_bucket(size: int, grain: int = 8) -> int:
    """The size a batch's ``size`` frames (or glosses) are padded to where each shape records a CUDA graph: a
    multiple of ``grain`` up to ``8 * grain``, then four sizes per octave, so at most 8 sizes up to ``8 * grain``,
    4 more per doubling, and above it under 25 % of padding."""
    if size < 1:
        raise ValueError(f"a batch has at least one frame, got {size}")
    step = max(grain, 1 << max(0, (size - 1).bit_length() - 3))
    return -(-size // step) * step


def dynamic(x: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """x, its first ``dims`` dimensions (at most) marked dynamic for ``torch.compile``: compiled code it is passed
    to is compiled for sizes that vary, not for this one first and again for the second size it meets (Dynamo's
    default). A no-op outside compilation, but its first call imports torch.compile's machinery (only the SCG
    branch's training loss calls it)."""
    for dim in range(min(x.dim(), dims)):
        torch._dynamo.maybe_mark_dynamic(x, dim)
    return x


def outside_graphs(fn: Callable) -> Callable:
    """fn as ``torch.compiler.disable(fn)``, made by :func:`disable_outside_graphs`: torch.compile runs fn as it is,
    between its graphs, where its work cannot be traced (a call into the C library, shapes that depend on values).
    Outside compilation fn is called directly, so only a process that compiles imports torch.compile's machinery:
    ``torch.compiler.disable`` itself imports it, 1.3 s on a 2-core CPU, which ``fgdm generate`` and the Python API
    paid at their start when fgdm's modules applied it at import."""

    disabled = None

    def make() -> Callable:
        nonlocal disabled
        if disabled is None:
            disabled = torch.compiler.disable(fn)
        return disabled

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not torch.compiler.is_compiling():
            return fn(*args, **kwargs)
        return (disabled or make())(*args, **kwargs)  # made here, while traced, it breaks the graph once more

    # Dynamo keeps what it compiled per code object and guards on what the code reads, so each wrapper has a code
    # object of its own and reads only its own closure: the SCG branch's two wrappers, called in turn at every step,
    # compiled again when they shared one code object and read a shared table
    call.__code__ = call.__code__.replace(co_qualname=f"outside_graphs({fn.__qualname__})")
    _OUTSIDE.append(make)
    return call


def disable_outside_graphs() -> None:
    """Makes every :func:`outside_graphs` function's ``torch.compiler.disable`` now, before anything compiles: made
    while Dynamo traces, it would break the graph there once more and, once made, fail the guards of the frame traced
    first, which then compiled again. ``fgdm.training.compiling`` and the benchmarks call it before compiling."""
    for make in list(_OUTSIDE):  # (a module imported meanwhile may add one)
        make()


def conv_over_frames(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A zero-padded, odd-sized convolution along dim 1 of h (B, S, ..., C_in), channels last, with a
    ``Conv1d``-shaped ``weight`` (C_out, C_in, k) → (B, S, ..., C_out)."""
    k = weight.shape[-1]
    pad = [0, 0] * (h.dim() - 2) + [k // 2, k // 2]  # dim 1 only
    taps = frame_windows(nn.functional.pad(h, pad), k, h.shape[1]).flatten(-2)  # (B, S, ..., C_in · k) as weight's
    out = taps @ weight.flatten(1).T
    return out if bias is None else out + bias


def conv1d(conv: nn.Conv1d, h: torch.Tensor) -> torch.Tensor:
    """``conv(h)`` for h (B, C_in, S): PyTorch's convolution in eager runs, :func:`conv_over_frames` under
    ``torch.compile``."""
    if torch.compiler.is_compiling():
        return conv_over_frames(h.transpose(1, 2), conv.weight, conv.bias).transpose(1, 2)
    return conv(h)


def frame_windows(x: torch.Tensor, size: int, frames: int) -> torch.Tensor:
    """The windows of ``size`` consecutive frames starting at frames 0 … ``frames`` − 1 of x (B, P, ...), P ≥
    frames + size − 1: (B, frames, ..., size). Eager: ``x.unfold(1, size, 1)[:, :frames]``, a view; under
    ``torch.compile``: the ``size`` shifted slices stacked, the same numbers (see the module's docstring)."""
    if torch.compiler.is_compiling():
        return torch.stack([x[:, offset : offset + frames] for offset in range(size)], dim=-1)
    return x.unfold(1, size, 1)[:, :frames]
