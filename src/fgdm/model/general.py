"""The General stage (SPEC §4.4–4.6): F2G transform, Transformer decoder over frames, output layer."""

from __future__ import annotations

import torch
from torch import nn

from fgdm.config import GeneralConfig
from fgdm.model.attention import attend, dropped, feed_forward, self_attention
from fgdm.model.embeddings import PositionalEncoding, ProgressEncoding
from fgdm.model.masks import nothing_padded


class FrameToGeneral(nn.Module):
    """F2G: (B, S, J, C_in) → flatten J·C_in → Linear → (B, S, D_g) + sinusoidal frame positions."""

    def __init__(self, joints: int, channels: int, width: int, counter: bool = False) -> None:
        super().__init__()
        self.proj = nn.Linear(joints * channels, width)
        self.pos = PositionalEncoding(width)
        self.counter = ProgressEncoding(width) if counter else None  # model.counter: + progress i / S

    def positions(self, frame_mask: torch.Tensor, dtype: torch.dtype) -> list[torch.Tensor]:
        """The terms forward adds after the projection, in order: the frame positions (S, D_g) and, with the
        counter, the progress (B, S, D_g). They depend on the frame mask only: sampling computes them once."""
        terms = [self.pos.term(frame_mask.shape[1], frame_mask.device, dtype)]
        if self.counter is not None:
            terms.append(self.counter.term(frame_mask, dtype))
        return terms

    def forward(
        self, h: torch.Tensor, frame_mask: torch.Tensor | None = None, positions: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        B, S = h.shape[:2]
        if positions is None:
            if self.counter is not None and frame_mask is None:
                raise ValueError("the progress counter needs the frame mask")
            mask = frame_mask if frame_mask is not None else torch.ones(B, S, dtype=torch.bool, device=h.device)
            positions = self.positions(mask, h.dtype)
        out = self.proj(h.reshape(B, S, -1))
        for term in positions:
            out = out + term
        return out


class GeneralStage(nn.Module):
    """L2 Transformer decoder layers: self-attention over frames, cross-attention to the glosses.

    Shape: h (B, S, D_g), cond (B, L, D_g), frame_mask (B, S), gloss_mask (B, L) → (B, S, D_g).

    The weights are those of PyTorch's ``nn.TransformerDecoder`` (pre-norm), and so are the checkpoint keys;
    :meth:`_decode` computes its equations (:mod:`fgdm.model.attention`), dropout included in training, taking the
    cross-attention's keys and values of the glosses from :meth:`memory`, which sampling computes once for all
    its steps. Fewer operators than PyTorch's layers: synth.yaml's training forward issues 138 against 197.
    """

    def __init__(self, width: int, cfg: GeneralConfig) -> None:
        super().__init__()
        self.causal = cfg.attention == "causal"
        layer = nn.TransformerDecoderLayer(
            width, cfg.heads, cfg.ff, cfg.dropout, activation="relu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerDecoder(layer, cfg.layers)

    def memory(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's cross-attention keys and values of G (..., L, D_g), each (..., L, D_g)."""
        out = []
        for layer in self.layers.layers:
            attn, D = layer.multihead_attn, cond.shape[-1]
            k, v = nn.functional.linear(cond, attn.in_proj_weight[D:], attn.in_proj_bias[D:]).chunk(2, dim=-1)
            out.append((k, v))
        return out

    def forward(
        self,
        h: torch.Tensor,
        cond: torch.Tensor,
        frame_mask: torch.Tensor,
        gloss_mask: torch.Tensor,
        memory: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        return self._decode(h, memory if memory is not None else self.memory(cond), frame_mask, gloss_mask)

    def _decode(
        self,
        h: torch.Tensor,
        memory: list[tuple[torch.Tensor, torch.Tensor]],
        frame_mask: torch.Tensor,
        gloss_mask: torch.Tensor,
    ) -> torch.Tensor:
        """The decoder layers (pre-norm: h += SelfAttn(LN h); h += CrossAttn(LN h, G); h += FF(LN h)), with each
        layer's keys and values of the glosses given; in training with the layers' dropout where PyTorch's
        layers apply it: on the attention weights, the three residual branches and the feed-forward's hidden
        layer."""
        S, D = h.shape[1], h.shape[2]
        own = None if nothing_padded(frame_mask) else frame_mask[:, None, None, :]  # True = may attend
        if self.causal:
            below = torch.ones(S, S, dtype=torch.bool, device=h.device).tril()
            own = below if own is None else own & below
        glosses = None if nothing_padded(gloss_mask) else gloss_mask[:, None, None, :]
        for layer, (k, v) in zip(self.layers.layers, memory, strict=True):
            ca = layer.multihead_attn
            h = h + dropped(self_attention(layer.self_attn, layer.norm1(h), own), layer.dropout1)
            q = nn.functional.linear(layer.norm2(h), ca.in_proj_weight[:D], ca.in_proj_bias[:D])
            cross = attend(q, k, v, ca.num_heads, glosses, ca.dropout if self.training else 0.0)
            h = h + dropped(ca.out_proj(cross), layer.dropout2)
            h = h + feed_forward(layer, layer.norm3(h), layer.dropout3)
        return h * frame_mask[..., None]


class OutputLayer(nn.Module):
    """LayerNorm → Linear(D_g, J·3): (B, S, D_g) → (B, S, J, 3)."""

    def __init__(self, width: int, joints: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, joints * 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, S, _ = h.shape
        return self.proj(self.norm(h)).view(B, S, -1, 3)
