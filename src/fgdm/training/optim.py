"""The optimiser: Adam or AdamW, fused where PyTorch can, its learning-rate schedule, and gradient clipping."""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from fgdm.config import TrainingConfig


def scheduled_lr(cfg: TrainingConfig, step: int) -> float | None:
    """The learning rate for optimizer step ``step`` (from 0), or None where the plateau scheduler owns it.

    Linear warm-up to ``lr`` over ``warmup_steps``; then, with ``schedule: cosine``, half a cosine from
    ``lr`` down to ``min_lr``, reached at ``max_steps``.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule != "cosine":
        return None
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


_FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")  # where PyTorch has a fused Adam kernel (for floating types)


def optimizer(module: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """Adam at ``lr``; with ``weight_decay`` > 0, AdamW, decaying only parameters of two or more dimensions
    (weight matrices, embeddings, the skeleton prior's offset), not biases and norm gains.

    Both run PyTorch's fused kernel where it has one: the same update in one pass over all parameters, instead
    of a dozen operator calls per parameter (paper size, 2-core CPU: 34 against 108 ms an update; on a GPU
    a handful of kernel launches instead of ~1,500); on a GPU it also lets :class:`~fgdm.training.finite.FiniteCheck`
    skip a non-finite step without waiting for the loss. Not under ``16-mixed``: its gradient scaler's unscaling and
    Lightning's clipping do not mix with a fused step (under ``bf16-mixed``, which scales nothing,
    :func:`clip_gradients` clips)."""
    params = list(module.parameters())
    fusable = cfg.precision != "16-mixed" and all(
        p.device.type in _FUSED_DEVICES and p.is_floating_point() for p in params
    )
    fused = True if fusable else None  # None, not False: PyTorch's own default then (foreach on CUDA)
    if not cfg.weight_decay:
        return torch.optim.Adam(params, lr=cfg.lr, fused=fused)
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused)


def clip_gradients(trainer: L.Trainer, optimizer, value: float | None, algorithm: str | None) -> bool:
    """Clips the gradients' global norm to ``value`` where Lightning would refuse to: a fused optimizer under
    ``bf16-mixed``. Lightning refuses any mixed precision, for float16's sake (its gradient scaler leaves the
    gradients scaled until the fused step unscales them); bfloat16 scales nothing, so the gradients are the true
    ones here. Whether it clipped: elsewhere Lightning clips, as usual."""
    plugin = trainer.precision_plugin
    fused = getattr(optimizer, "_step_supports_amp_scaling", False)
    if not (value and fused and isinstance(plugin, MixedPrecision) and plugin.scaler is None):
        return False
    if algorithm not in (None, "norm"):
        return False
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, value, foreach=True)
    return True
