"""``training.compile``: the training loss through ``torch.compile``, fed batches padded to a few frame counts.

Inductor compiles the loss's backward for one frame count: its fake-tensor pass checks the memory format of the
(B, S, J, C) joint tensors, which guards on S (benchmarks/results/speed.md, *torch.compile of the training step*).
Each new count would compile again, up to torch's recompile limit, and later counts would run eager. So a compiled
step pads its batch to :func:`frame_bucket` frames: a few counts, each compiled once. The padded frames are
masked everywhere, so the losses and gradients are those of the unpadded batch (up to float rounding), and the
draws are made on the unpadded batch, so a compiled run draws an eager run's numbers. (Dropout inside the loss,
where a config has it, draws through the compiled code's own generator: such a run draws other numbers.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# the most compilations of one function torch may keep: enough for every frame bucket up to 2 ** 12 frames (32
# of them) and the compilations in which Dynamo learns which of the other sizes vary (batch, glosses)
RECOMPILE_LIMIT = 64


def frame_bucket(frames: int, grain: int = 8) -> int:
    """The frame count a batch of ``frames`` frames is padded to: a multiple of ``grain`` up to ``8 * grain``,
    then four counts per octave, so at most 8 counts up to 64 frames, 4 more per doubling, and above 64 frames
    under 25 % of padding."""
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
    arguments and padding the batch to its :func:`frame_bucket` before the compiled code sees it. torch's recompile
    limit is raised to :data:`RECOMPILE_LIMIT` (a process-wide setting of Dynamo's) so that every frame bucket
    keeps its code."""
    import torch._dynamo

    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    compiled = torch.compile(loss_of_draws, mode=None if mode is True else mode)

    def loss(*arguments: torch.Tensor):
        return compiled(*compiled_loss_arguments(arguments))

    return loss


def compiled_loss_arguments(arguments: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The arguments of :meth:`FGDM.loss_of_draws` (pose, frame_mask, gloss, gloss_mask, t, noise, condition) with
    the batch padded to its :func:`frame_bucket`."""
    pose, frame_mask, gloss, gloss_mask, t, noise, condition = arguments
    pose, frame_mask, noise = pad_frames(pose, frame_mask, noise, frame_bucket(pose.shape[1]))
    return pose, frame_mask, gloss, gloss_mask, t, noise, condition
