"""Iconicity disentanglement (docs/model.md §3): each joint's position, bone length and bone direction."""

from __future__ import annotations

import torch
from torch import nn

from fgdm.skeleton import Skeleton

ID_FEATURES = 7


class IconicityDisentanglement(nn.Module):
    """(B, S, J, 3) → (B, S, J, 7): [x_j, ‖x_p − x_j‖, (x_p − x_j)/‖x_p − x_j‖] with p = parent(j).

    Joint-major: feature row j belongs to joint j (graph node j sees joint j). The root, and any
    zero-length bone, gets length 0 and direction 0 — never NaN, and with finite gradients.
    """

    def __init__(self, skeleton: Skeleton, eps: float = 1e-6) -> None:
        super().__init__()
        self.register_buffer("parents", torch.as_tensor(skeleton.parent_array()), persistent=False)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bone = x[..., self.parents, :] - x  # (B, S, J, 3)
        sq = (bone * bone).sum(-1, keepdim=True)  # (B, S, J, 1)
        nonzero = sq > self.eps * self.eps
        # sqrt of a clamped value keeps the gradient finite at zero length
        length = torch.sqrt(torch.where(nonzero, sq, torch.ones_like(sq)))
        direction = torch.where(nonzero, bone / length, torch.zeros_like(bone))
        length = torch.where(nonzero, length, torch.zeros_like(length))
        return torch.cat([x, length, direction], dim=-1)
