"""Gloss encoder (docs/model.md §4.1): embedding + sinusoidal positions → Transformer encoder."""

from __future__ import annotations

import torch
from torch import nn

from fgdm.config import GlossEncoderConfig
from fgdm.data.vocab import Vocabulary
from fgdm.model.attention import encoder_layer
from fgdm.model.embeddings import PositionalEncoding, ProgressEncoding
from fgdm.model.masks import nothing_padded


class GlossEncoder(nn.Module):
    """(B, L) gloss ids and (B, L) mask (True = valid) → (B, L, D_g)."""

    def __init__(
        self,
        vocab_size: int,
        width: int,
        cfg: GlossEncoderConfig,
        pad_index: int = Vocabulary.pad_index,
        counter: bool = False,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width, padding_idx=pad_index)
        self.pos = PositionalEncoding(width)
        self.counter = ProgressEncoding(width) if counter else None  # model.counter
        layer = nn.TransformerEncoderLayer(
            width, cfg.heads, cfg.ff, cfg.dropout, activation="relu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)

    def forward(self, gloss: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
        h = self.pos(self.embed(gloss))  # (B, L, D_g)
        if self.counter is not None:
            h = self.counter(h, gloss_mask)
        # the encoder's layers and final norm, computed by fgdm.model.attention (PyTorch's layers are the weights)
        mask = None if nothing_padded(gloss_mask) else gloss_mask[:, None, None, :]  # True = may attend
        for layer in self.encoder.layers:
            h = encoder_layer(layer, h, mask)
        return self.encoder.norm(h) * gloss_mask[..., None]
