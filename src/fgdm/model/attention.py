"""Multi-head attention and pre-norm Transformer layers computed from PyTorch's layer weights.

The gloss encoder and the General stage keep PyTorch's ``nn.TransformerEncoderLayer`` and
``nn.TransformerDecoderLayer`` as their weights (so the checkpoint keys are PyTorch's), and compute the layers'
equations here, dropout included in training: the same results as PyTorch's layers (tests compare them), with
fewer operators. A small model's training step pays for each operator on the host, and PyTorch's layers add
checks and reshaping around every attention.
"""

from __future__ import annotations

import torch
from torch import nn


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None, dropout: float = 0.0
) -> torch.Tensor:
    """Multi-head scaled dot-product attention: q (B, S, D), k and v (B, N, D), mask broadcastable to
    (B, heads, S, N) with True where a query may attend (or None), ``dropout`` on the attention weights →
    (B, S, D)."""

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, ·, D) → (B, heads, ·, D / heads)
        return x.unflatten(-1, (heads, -1)).transpose(1, 2)

    if torch.compiler.is_compiling():
        # products and a softmax, which inductor fuses itself: its backward of the CPU's fused kernel asserted a
        # stride it had fixed for one gloss count, and failed on the next (benchmarks/results/speed.md)
        q, k, v = split(q), split(k), split(v)
        scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = nn.functional.dropout(scores.softmax(-1), dropout)
        return (weights @ v).transpose(1, 2).flatten(2)
    out = nn.functional.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask, dropout_p=dropout)
    return out.transpose(1, 2).flatten(2)


def dropped(x: torch.Tensor, dropout: nn.Dropout) -> torch.Tensor:
    """``dropout(x)``, skipped where it would change nothing (p = 0, or evaluation)."""
    return dropout(x) if dropout.training and dropout.p > 0 else x


def self_attention(attn: nn.MultiheadAttention, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``attn``'s self-attention of x (B, S, D) with its projections, attention dropout in training."""
    q, k, v = nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
    return attn.out_proj(attend(q, k, v, attn.num_heads, mask, attn.dropout if attn.training else 0.0))


def encoder_layer(layer: nn.TransformerEncoderLayer, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """One pre-norm encoder layer: h += SelfAttn(LN h); h += FF(LN h), with the layer's dropout in training."""
    h = h + dropped(self_attention(layer.self_attn, layer.norm1(h), mask), layer.dropout1)
    return h + feed_forward(layer, layer.norm2(h), layer.dropout2)


def feed_forward(
    layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer, x: torch.Tensor, out_dropout: nn.Dropout
) -> torch.Tensor:
    """The layer's feed-forward block of x, dropout on its hidden layer and on its output."""
    hidden = layer.linear1(x)
    # ReLU in place on the product's fresh output (the product's backward does not need it): no second hidden-size
    # tensor, which at sampling's sizes costs as long as the ReLU itself (benchmarks/results/speed.md)
    hidden = hidden.relu_() if layer.activation is nn.functional.relu else layer.activation(hidden)
    hidden = dropped(hidden, layer.dropout)
    return dropped(layer.linear2(hidden), out_dropout)
