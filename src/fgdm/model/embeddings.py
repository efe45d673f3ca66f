"""Sinusoidal position and timestep embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal(positions: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of (...,) positions → (..., dim), sin in the first half, cos in the second."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    args = positions.float()[..., None] * freqs
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class PositionalEncoding(nn.Module):
    """Adds sinusoidal positions along the sequence axis: (B, N, D) → (B, N, D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def term(self, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """What forward adds to a sequence of ``length``: (length, D)."""
        return sinusoidal(torch.arange(length, device=device), self.dim).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.term(x.shape[1], x.device, x.dtype)


def progress(mask: torch.Tensor) -> torch.Tensor:
    """(B, N) validity → (B, N) progress (n + ½) / N_b through each sequence, in (0, 1); 0 on padding."""
    count = mask.sum(1, keepdim=True).clamp_min(1).to(torch.float32)
    index = torch.arange(mask.shape[1], device=mask.device, dtype=torch.float32)[None]
    return ((index + 0.5) / count) * mask


class ProgressEncoding(nn.Module):
    """Adds sinusoidal features of the progress through the sequence (Progressive Transformers'
    counter, i / S): (B, N, D), (B, N) mask → (B, N, D).

    Frames and glosses both get it, so that cross-attention can match frame i of S to gloss l of L
    by their positions relative to their own lengths, before it has learned any sign's duration.
    Periods run from 2π/64 to 2π of the whole sequence.
    """

    def __init__(self, dim: int, resolution: float = 64.0) -> None:
        super().__init__()
        self.dim, self.resolution = dim, resolution

    def term(self, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """What forward adds for this mask: (B, N, D), zero on padding."""
        p = progress(mask) * self.resolution
        return sinusoidal(p, self.dim, max_period=self.resolution).to(dtype) * mask[..., None]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x + self.term(mask, x.dtype)


class TimestepEmbedding(nn.Module):
    """sinusoidal(D) → Linear(D, 2D) → GELU → Linear(2D, D); (B,) timesteps → (B, D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(t, self.dim).to(self.mlp[0].weight.dtype))
