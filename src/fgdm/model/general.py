"""The General stage (SPEC §4.4–4.6): F2G transform, Transformer decoder over frames, output layer."""

from __future__ import annotations

import torch
from torch import nn

from fgdm.config import GeneralConfig
from fgdm.model.embeddings import PositionalEncoding, ProgressEncoding
from fgdm.model.masks import nothing_padded


class FrameToGeneral(nn.Module):
    """F2G: (B, S, J, C_in) → flatten J·C_in → Linear → (B, S, D_g) + sinusoidal frame positions."""

    def __init__(self, joints: int, channels: int, width: int, counter: bool = False) -> None:
        super().__init__()
        self.proj = nn.Linear(joints * channels, width)
        self.pos = PositionalEncoding(width)
        self.counter = ProgressEncoding(width) if counter else None  # model.counter: + progress i / S

    def forward(self, h: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, S = h.shape[:2]
        out = self.pos(self.proj(h.reshape(B, S, -1)))
        if self.counter is not None:
            if frame_mask is None:
                raise ValueError("the progress counter needs the frame mask")
            out = self.counter(out, frame_mask)
        return out


def _padding(mask: torch.Tensor) -> torch.Tensor | None:
    """The key padding mask (True = ignore), or None when nothing is padded: attention then skips the
    masking pass."""
    return None if nothing_padded(mask) else ~mask


class GeneralStage(nn.Module):
    """L2 Transformer decoder layers: self-attention over frames, cross-attention to the glosses.

    Shape: h (B, S, D_g), cond (B, L, D_g), frame_mask (B, S), gloss_mask (B, L) → (B, S, D_g).
    """

    def __init__(self, width: int, cfg: GeneralConfig) -> None:
        super().__init__()
        self.causal = cfg.attention == "causal"
        layer = nn.TransformerDecoderLayer(
            width, cfg.heads, cfg.ff, cfg.dropout, activation="relu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerDecoder(layer, cfg.layers)

    def forward(
        self, h: torch.Tensor, cond: torch.Tensor, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        S = h.shape[1]
        causal = None
        if self.causal:  # boolean like the padding mask: True = may not attend
            causal = torch.ones(S, S, dtype=torch.bool, device=h.device).triu(1)
        out = self.layers(
            h,
            cond,
            tgt_mask=causal,
            tgt_is_causal=self.causal,
            tgt_key_padding_mask=_padding(frame_mask),
            memory_key_padding_mask=_padding(gloss_mask),
        )
        return out * frame_mask[..., None]


class OutputLayer(nn.Module):
    """LayerNorm → Linear(D_g, J·3): (B, S, D_g) → (B, S, J, 3)."""

    def __init__(self, width: int, joints: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, joints * 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, S, _ = h.shape
        return self.proj(self.norm(h)).view(B, S, -1, 3)
