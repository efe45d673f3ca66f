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

from fgdm.model.compiled import disable_outside_graphs, dynamic

# the most compilations of one function torch may keep (its default: 8): what is left to compile again for is a
# dimension of size 1 (a batch of one sequence, one gloss) and, on a CPU, its code generator's thresholds on B · S
RECOMPILE_LIMIT = 64
# the modes of torch.compile that record CUDA graphs, one per batch shape
CUDA_GRAPHS = ("reduce-overhead", "max-autotune")


def frame_bucket(frames: int, grain: int = 8) -> int:
    """The frame count a batch of ``frames`` frames is padded to where each shape records a CUDA graph: a
    multiple of ``grain`` up to ``8 * grain``, then four counts per octave, so at most 8 counts up to 64 frames, 4
    more per doubling, and above 64 frames under 25 % of padding."""
    if frames < 1:
        raise ValueError(f"a batch has at least one frame, got {frames}")
    step = max(grain, 1 << max(0, (frames - 1).bit_length() - 3))
    return -(-frames // step) * step


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
    the batch padded to its :func:`frame_bucket`. torch's recompile limit is raised to :data:`RECOMPILE_LIMIT` (a
    process-wide setting of Dynamo's), so that each of the few compilations left keeps its code."""
    import torch._dynamo

    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    disable_outside_graphs()
    compiled = torch.compile(loss_of_draws, mode=None if mode is True else mode)
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
