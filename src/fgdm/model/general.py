"""The General stage (docs/model.md §4.4–4.6): F2G transform, Transformer decoder over frames, output layer."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(eq=False)
class CrossMemory:
    """One decoder layer's cross-attention to the glosses G, regrouped for frames x that attend only to them.

    With q_h = x W_q,h + b_q,h, K_h and V_h the glosses' keys and values of head h, and W_o,h the out-projection's
    columns for that head, the layer computes Σ_h softmax(q_h K_hᵀ / √d_h) V_h W_o,hᵀ + b_o. Grouped around the
    glosses, the scores are x · (W_q,hᵀ K_hᵀ / √d_h) + b_q,h K_hᵀ / √d_h and the values V_h W_o,hᵀ: products of
    width H·L (heads times glosses) instead of D_g. Sampling computes them once for all its steps
    (:meth:`GeneralStage.memory`); per frame the cross-attention then costs a small fraction of its two D_g × D_g
    projections (benchmarks/results/speed.md, *The cross-attention regrouped for sampling*).
    """

    scores: torch.Tensor  # (..., D_g, H·L)
    offset: torch.Tensor  # (..., 1, H·L)
    values: torch.Tensor  # (..., H·L, D_g)
    heads: int

    def __getitem__(self, index: int) -> CrossMemory:
        """The memory of one entry of the first dimension (one sampling step)."""
        return CrossMemory(self.scores[index], self.offset[index], self.values[index], self.heads)

    def attend(
        self, x: torch.Tensor, glosses: torch.Tensor | None, bias: torch.Tensor, dropout: float = 0.0
    ) -> torch.Tensor:
        """The cross-attention's output for x (B, S, D_g), out-projection and its ``bias`` included; ``glosses``
        (B, 1, 1, L), True where a frame may attend, or None; ``dropout`` on the attention weights."""
        scores = torch.baddbmm(self.offset, x, self.scores).unflatten(-1, (self.heads, -1))  # (B, S, H, L)
        if glosses is not None:
            scores = scores.masked_fill(~glosses, float("-inf"))
        weights = scores.softmax(-1)
        if dropout > 0:
            weights = nn.functional.dropout(weights, dropout)
        return torch.baddbmm(bias, weights.flatten(2), self.values)


class GeneralStage(nn.Module):
    """L2 Transformer decoder layers: self-attention over frames, cross-attention to the glosses.

    Shape: h (B, S, D_g), cond (B, L, D_g), frame_mask (B, S), gloss_mask (B, L) → (B, S, D_g).

    The weights are those of PyTorch's ``nn.TransformerDecoder`` (pre-norm), and so are the checkpoint keys;
    :meth:`forward` computes its equations (:mod:`fgdm.model.attention`), dropout included in training, taking the
    cross-attention from :meth:`memory` where sampling computed it once for all its steps. Fewer operators than
    PyTorch's layers: synth.yaml's training forward issues 138 against 197.
    """

    def __init__(self, width: int, cfg: GeneralConfig) -> None:
        super().__init__()
        self.causal = cfg.attention == "causal"
        layer = nn.TransformerDecoderLayer(
            width, cfg.heads, cfg.ff, cfg.dropout, activation="relu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerDecoder(layer, cfg.layers)

    def memory(self, cond: torch.Tensor) -> list[CrossMemory]:
        """Each layer's :class:`CrossMemory` of G (..., L, D_g)."""
        out = []
        for layer in self.layers.layers:
            attn, D = layer.multihead_attn, cond.shape[-1]
            H = attn.num_heads
            k, v = nn.functional.linear(cond, attn.in_proj_weight[D:], attn.in_proj_bias[D:]).chunk(2, dim=-1)
            k, v = k.unflatten(-1, (H, -1)), v.unflatten(-1, (H, -1))  # (..., L, H, d_h)
            wq, bq = attn.in_proj_weight[:D].unflatten(0, (H, -1)), attn.in_proj_bias[:D].unflatten(0, (H, -1))
            scale = k.shape[-1] ** -0.5
            scores = torch.einsum("hdc,...lhd->...chl", wq * scale, k).flatten(-2)  # (..., D_g, H·L)
            offset = torch.einsum("hd,...lhd->...hl", bq * scale, k).flatten(-2).unsqueeze(-2)  # (..., 1, H·L)
            wo = attn.out_proj.weight.unflatten(1, (H, -1))  # (D_g, H, d_h)
            values = torch.einsum("...lhd,chd->...hlc", v, wo).flatten(-3, -2)  # (..., H·L, D_g)
            out.append(CrossMemory(scores, offset, values, H))
        return out

    def forward(
        self,
        h: torch.Tensor,
        cond: torch.Tensor,
        frame_mask: torch.Tensor,
        gloss_mask: torch.Tensor,
        memory: list[CrossMemory] | None = None,
    ) -> torch.Tensor:
        """The decoder layers (pre-norm: h += SelfAttn(LN h); h += CrossAttn(LN h, G); h += FF(LN h)); in training
        with the layers' dropout where PyTorch's layers apply it: on the attention weights, the three residual
        branches and the feed-forward's hidden layer. ``memory``: :meth:`memory` of ``cond``, if already computed
        (``cond`` is then not read)."""
        S, D = h.shape[1], h.shape[2]
        own = None if nothing_padded(frame_mask) else frame_mask[:, None, None, :]  # True = may attend
        if self.causal:
            below = torch.ones(S, S, dtype=torch.bool, device=h.device).tril()
            own = below if own is None else own & below
        glosses = None if nothing_padded(gloss_mask) else gloss_mask[:, None, None, :]
        for i, layer in enumerate(self.layers.layers):
            ca = layer.multihead_attn
            dropout = ca.dropout if self.training else 0.0
            h = h + dropped(self_attention(layer.self_attn, layer.norm1(h), own), layer.dropout1)
            x = layer.norm2(h)
            if memory is not None:
                cross = memory[i].attend(x, glosses, ca.out_proj.bias, dropout)
            else:  # no memory given (training, a call without a step context): as PyTorch's layer computes it
                k, v = nn.functional.linear(cond, ca.in_proj_weight[D:], ca.in_proj_bias[D:]).chunk(2, dim=-1)
                q = nn.functional.linear(x, ca.in_proj_weight[:D], ca.in_proj_bias[:D])
                cross = ca.out_proj(attend(q, k, v, ca.num_heads, glosses, dropout))
            h = h + dropped(cross, layer.dropout2)
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
