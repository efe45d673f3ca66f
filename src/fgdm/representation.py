"""The pose representation the diffusion works in, and its exact inverse.

Poses arrive in PT units (joints × xyz, neck at the origin). Diffusion adds unit-variance noise, so
the representation decides how much of the signal each coordinate carries against that noise:

    z = data_scale · (r(x) − μ) / σ

- r, ``diffusion.hands_relative``: every hand joint minus the wrist its hand hangs from (joint 7 for
  joints 8–28, joint 4 for 29–49 in PT50), so finger shape is separated from where the arm puts the
  hand; body joints are unchanged.
- μ, σ, ``diffusion.standardise``: per-coordinate mean and standard deviation of r(x) over the
  training frames (as motion diffusion models normalise), so a finger offset of a centimetre gets the
  same unit spread as the whole arm's swing. Off: μ = 0, σ = 1.
- ``data_scale``: one global factor on top.

Everything is linear, so decoding is exact and losses can be taken in either space. μ and σ are buffers: they
travel in the checkpoint with the weights, with the coordinates that never move in the training frames
:meth:`PoseNormalizer.fit` reads (it runs with ``standardise``) (σ ≈ 0: the neck, pinned at the origin; z
everywhere in 2D data such as dgs-pt), which a sample is given at their value (``decode(…, hold=True)``)
instead of the denoiser's small error around it. The denoiser, its iconicity features included, sees z
(noised), never PT units; samples are decoded before they leave ``FGDM.generate``.
With standardisation the iconicity features' "bones" are therefore differences of standardised
coordinates, not PT bones; taking them on the decoded pose learnt more slowly (benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from fgdm.config import DiffusionConfig
from fgdm.skeleton import PT50, Skeleton


def hand_anchors(skeleton: Skeleton) -> list[tuple[range, int]]:
    """(hand joints, the joint that hand hangs from) for each hand part: the parent of the part's root."""
    return [(skeleton.part(n), skeleton.parents[skeleton.part_root(n)]) for n in ("left_hand", "right_hand")]


class PoseNormalizer(nn.Module):
    """``encode``: poses (…, J, 3) → the diffusion space; ``decode``: back, exactly.

    Args:
        cfg: the diffusion section (``data_scale``, ``standardise``, ``hands_relative``).
        skeleton: names the hands and their wrists.
    """

    def __init__(self, cfg: DiffusionConfig, skeleton: Skeleton = PT50) -> None:
        super().__init__()
        self.scale = float(cfg.data_scale)
        self.standardise = cfg.standardise
        self.hands_relative = cfg.hands_relative
        J = skeleton.num_joints
        anchor = torch.arange(J)
        relative = torch.zeros(J, dtype=torch.bool)
        for joints, wrist in hand_anchors(skeleton):
            anchor[list(joints)] = wrist
            relative[list(joints)] = True
        self.register_buffer("anchor", anchor, persistent=False)
        self.register_buffer("relative", relative[:, None], persistent=False)
        self.register_buffer("mean", torch.zeros(J, 3))
        self.register_buffer("std", torch.ones(J, 3))
        self.register_buffer("fixed", torch.zeros(J, 3, dtype=torch.bool))  # the same in every training frame
        # frames of the longest training sequence (0: not recorded), which sampling warns beyond
        self.register_buffer("longest", torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # checkpoints written before the coordinates held fixed were recorded: none held, as they sampled; before
        # the longest training sequence was: not known
        state_dict.setdefault(prefix + "fixed", torch.zeros_like(self.fixed))
        state_dict.setdefault(prefix + "longest", self.longest.detach().clone())  # (a resumed run's: its data's)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def relative_to_wrist(self, x: torch.Tensor) -> torch.Tensor:
        """r(x): hand joints minus their wrist (identity when ``hands_relative`` is off)."""
        if not self.hands_relative:
            return x
        return x - x[..., self.anchor, :] * self.relative.to(x.dtype)

    def absolute(self, r: torch.Tensor) -> torch.Tensor:
        """r⁻¹: adds the wrists back; the wrists themselves are body joints, never relative."""
        if not self.hands_relative:
            return r
        return r + r[..., self.anchor, :] * self.relative.to(r.dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Poses (…, J, 3) in PT units → the diffusion space."""
        r = self.relative_to_wrist(x)
        if self.standardise:
            r = (r - self.mean.to(r.dtype)) / self.std.to(r.dtype)
        return r * self.scale

    def decode(self, z: torch.Tensor, hold: bool = False) -> torch.Tensor:
        """The diffusion space → poses (…, J, 3) in PT units; ``decode(encode(x)) == x`` up to rounding. ``hold``:
        the coordinates that never move in the training frames at their value (a sample's, not a loss's)."""
        r = z / self.scale
        if self.standardise:
            r = r * self.std.to(r.dtype) + self.mean.to(r.dtype)
        if hold:
            r = torch.where(self.fixed, self.mean.to(r.dtype), r)
        return self.absolute(r)

    @torch.no_grad()
    def fit(self, poses: Iterable[np.ndarray], std_floor: float = 0.05) -> None:
        """Sets μ and σ from training sequences (each (S, J, 3)), over all their frames.

        σ is floored at ``std_floor`` × the median σ, so a coordinate that never moves (the neck,
        pinned at the origin) is not blown up into noise. Needed only with ``standardise``. Poses of which more
        than half the coordinates never move (σ ≤ 1e-6) are refused: they give no scale to standardise by.
        """
        total = total_sq = None
        frames = 0
        for pose in poses:
            r = self.relative_to_wrist(torch.as_tensor(np.asarray(pose), dtype=torch.float64))
            s, s2 = r.sum(0), (r * r).sum(0)
            total = s if total is None else total + s
            total_sq = s2 if total_sq is None else total_sq + s2
            frames += r.shape[0]
        if not frames:
            raise ValueError("no training frames to take pose statistics from")
        mean = total / frames
        std = (total_sq / frames - mean * mean).clamp_min(0.0).sqrt()
        median = float(std.median())
        if not median > 1e-6:  # more than half of the coordinates never move: no scale to standardise by
            raise ValueError(
                f"the training poses do not move: {int((std <= 1e-6).sum())} of their {std.numel()} coordinates (joint "
                f"x, y, z) are the same in all {frames} frames, so diffusion.standardise has no spread to divide by; "
                "check the data (static poses), or set diffusion.standardise: false"
            )
        self.fixed.copy_(std <= 1e-6)
        std = std.clamp_min(std_floor * median)
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))
