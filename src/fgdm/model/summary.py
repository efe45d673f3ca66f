"""Parameter counts per component and multiply-accumulates of one denoiser call."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from fgdm.model.fgdm import FGDM


def _count(*modules: torch.nn.Module | None) -> int:
    return sum(p.numel() for m in modules if m is not None for p in m.parameters())


def parameter_counts(model: FGDM) -> dict[str, int]:
    d = model.denoiser
    counts = {
        "gloss_encoder": _count(d.gloss_encoder, d.timestep),
        "focal": _count(d.embed, d.focal),
        "general": _count(d.f2g, d.general),
        "output": _count(d.output),
        "length_head": _count(d.length_head),
        "scg": _count(model.scg),
    }
    counts["generator"] = _count(d)
    counts["total"] = _count(model)
    return counts


def denoiser_macs(model: FGDM, batch: int = 1, frames: int = 130, glosses: int = 8) -> int:
    """MACs (= FLOPs / 2 as counted by torch's FlopCounterMode) of one denoiser forward, the Focal stage counted
    through its PyTorch path: the counter cannot see into the C kernel, which computes the same equations (so the
    count is the same on every machine, and an ablation's difference is its own)."""
    d = model.denoiser
    device = next(d.parameters()).device
    x = torch.zeros(batch, frames, model.skeleton.num_joints, 3, device=device)
    t = torch.zeros(batch, dtype=torch.long, device=device)
    gloss = torch.full((batch, glosses), 4, dtype=torch.long, device=device)
    gloss_mask = torch.ones(batch, glosses, dtype=torch.bool, device=device)
    frame_mask = torch.ones(batch, frames, dtype=torch.bool, device=device)
    was_training, kernels = d.training, {m: m.kernel for m in d.modules() if hasattr(m, "kernel")}
    d.eval()
    try:
        for module in kernels:
            module.kernel = "torch"
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            d(x, t, gloss, gloss_mask, frame_mask)
    finally:
        for module, choice in kernels.items():
            module.kernel = choice
        d.train(was_training)
    return counter.get_total_flops() // 2


def model_summary(model: FGDM, batch: int = 1, frames: int = 130, glosses: int = 8) -> dict:
    """Parameter counts and the MACs of one denoiser call on (batch, frames) poses and (batch, glosses) glosses."""
    macs = denoiser_macs(model, batch, frames, glosses)
    return {
        "parameters": parameter_counts(model),
        "denoiser_call": {"batch": batch, "frames": frames, "glosses": glosses, "macs": macs,
                          "gmacs": round(macs / 1e9, 3)},
    }  # fmt: skip
