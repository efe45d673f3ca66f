"""Regression losses (docs/model.md §7), masked to valid frames; the SCG loss lives with its branch."""

from __future__ import annotations

from typing import Literal

import torch

from fgdm.skeleton import Skeleton


def joint_loss(
    pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor, joint_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Masked mean |x̂_0 − x_0| over valid frames, joints and coordinates. Shapes (B, S, J, 3), (B, S).

    ``joint_weight`` (J,): a weighted mean over joints instead (weights need not sum to anything).
    """
    m = frame_mask[..., None, None].to(pred.dtype)
    err = (pred - target).abs() * m
    if joint_weight is None:
        denom = (m.sum() * pred.shape[-2] * pred.shape[-1]).clamp_min(1.0)
        return err.sum() / denom
    w = joint_weight.to(pred.dtype)
    denom = (m.sum() * w.sum() * pred.shape[-1]).clamp_min(1e-12)
    return (err.sum((0, 1, 3)) * w).sum() / denom


class BoneLoss(torch.nn.Module):
    """Masked mean squared error of bone vectors x_{P[j]} − x_j (or of their unit directions)."""

    def __init__(self, skeleton: Skeleton, mode: Literal["vector", "direction"] = "vector") -> None:
        super().__init__()
        children = [c for c, _ in skeleton.bones]
        parents = [p for _, p in skeleton.bones]
        self.register_buffer("child_index", torch.tensor(children), persistent=False)
        self.register_buffer("parent_index", torch.tensor(parents), persistent=False)
        self.mode = mode

    def bones(self, x: torch.Tensor) -> torch.Tensor:
        b = x[..., self.parent_index, :] - x[..., self.child_index, :]  # (B, S, J−1, 3)
        if self.mode == "direction":
            b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        return b

    def forward(self, pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        diff = self.bones(pred) - self.bones(target)
        m = frame_mask[..., None, None].to(pred.dtype)
        denom = (m.sum() * diff.shape[-2] * diff.shape[-1]).clamp_min(1.0)
        return ((diff * diff) * m).sum() / denom


def length_loss(log_pred: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """L1 on log frame counts for the length head: (B,), (B,)."""
    return (log_pred - torch.log(frames.float().clamp_min(1.0))).abs().mean()
