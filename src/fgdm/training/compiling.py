"""``training.compile``: the training loss through ``torch.compile``, compiled once for every batch shape.

The loss is compiled with its batch, frame and gloss dimensions dynamic from the start, so one compilation serves
batches of any size and length (the Focal stage's TCN and the SCG branch's convolutions are one matrix product
under compilation for this, ``fgdm/model/compiled.py``; benchmarks/results/speed.md, *One compilation for every
frame count*). The draws are made eager, before the compiled code, so a compiled run draws an eager run's numbers.
(Dropout inside the loss, where a config has it, draws through the compiled code's own generator: such a run draws
other numbers.)

With CUDA graphs (the modes ``reduce-overhead`` and ``max-autotune``) each batch shape records a graph of its own,
so there a step pads its batch to :func:`frame_bucket` frames, a few counts. The padded frames are masked
everywhere, so the losses and gradients are those of the unpadded batch (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fgdm.model.compiled import CUDA_GRAPHS, compile_module, dynamic, frame_bucket


def pad_frames(
    pose: torch.Tensor, frame_mask: torch.Tensor, noise: torch.Tensor, frames: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``pose`` and ``noise`` (B, S, J, 3) padded with zeros and ``frame_mask`` (B, S) with False, to ``frames``."""
    extra = frames - pose.shape[1]
    if extra < 0:
        raise ValueError(f"cannot pad {pose.shape[1]} frames to {frames}")
    if extra == 0:
        return pose, frame_mask, noise
    pad = (0, 0, 0, 0, 0, extra)
    return (
        torch.nn.functional.pad(pose, pad),
        torch.nn.functional.pad(frame_mask, (0, extra), value=False),
        torch.nn.functional.pad(noise, pad),
    )


def compiled_loss(loss_of_draws: Callable, mode: bool | str) -> Callable:
    """:meth:`FGDM.loss_of_draws` through ``torch.compile`` in ``mode`` (True: the default mode), taking the same
    arguments: their batch, frame and gloss dimensions marked dynamic, and with CUDA graphs (:data:`CUDA_GRAPHS`)
    the batch padded to its :func:`frame_bucket` (:func:`fgdm.model.compiled.compile_module`)."""
    compiled = compile_module(loss_of_draws, mode)
    pad = mode in CUDA_GRAPHS

    def loss(*arguments: torch.Tensor | None):
        if pad:
            arguments = compiled_loss_arguments(arguments)
        # (B,), (B, S, …), (B, L) or the host's counts (B, 2): the batch dimension dynamic, and the next
        return compiled(*(None if tensor is None else dynamic(tensor) for tensor in arguments))

    return loss


def compiled_loss_arguments(arguments: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The arguments of :meth:`FGDM.loss_of_draws` (pose, frame_mask, gloss, gloss_mask, t, noise, condition[,
    counts]) with the batch padded to its :func:`frame_bucket` (the counts, of the real frames, stay)."""
    pose, frame_mask, gloss, gloss_mask, t, noise, condition, *counts = arguments
    pose, frame_mask, noise = pad_frames(pose, frame_mask, noise, frame_bucket(pose.shape[1]))
    return pose, frame_mask, gloss, gloss_mask, t, noise, condition, *counts
