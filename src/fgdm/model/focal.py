"""The Focal stage (SPEC §4.3): L1 blocks of ASGCN then TCN, each with residual, norm and ReLU.

ASGCN gives every frame i its own adjacency, per partition k:

    A^i_k = (A_b,k + A^i_a,k) ⊙ M^i_k

- A_b: the skeleton's K_v-partition prior plus a learnable offset starting at 0, shared by frames;
- A^i_a: contextual correlation of frame i with frames i−n … i+n, σ(q_u · k_v / √D_f), aggregated
  over the 2n+1 offsets by W_Agg, which is zero-initialised so training starts from the prior;
- M^i: a gloss-driven semantic mask 2·σ(W_s M̄^i) ∈ [0, 2], exactly 1 at initialisation.

All frames are computed at once; padded frames are excluded from the context and stay zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fgdm.config import FocalConfig


class ASGCN(nn.Module):
    """Frame-wise adaptive semantic graph convolution.

    Shape:
        h: (B, S, J, D_f) joint features; cond: (B, L, D_g) gloss condition;
        frame_mask (B, S) and gloss_mask (B, L), True on valid positions → (B, S, J, D_f).
    """

    def __init__(self, prior: torch.Tensor, width: int, cond_width: int, cfg: FocalConfig) -> None:
        super().__init__()
        K, J, _ = prior.shape
        self.K, self.J, self.width = K, J, width
        self.n = cfg.neighbors
        self.topology, self.contextual, self.semantic = cfg.topology, cfg.contextual, cfg.semantic_mask
        if not (self.topology or self.contextual):
            raise ValueError("ASGCN needs the topology prior or the contextual correlation (or both)")
        self.transform = nn.Linear(width, K * width)  # W_k for all partitions at once
        if self.topology:
            self.register_buffer("prior", prior.clone())
            self.prior_offset = nn.Parameter(torch.zeros_like(prior))
        if self.contextual:
            self.query = nn.Linear(width, width, bias=False)
            self.key = nn.Linear(width, width, bias=False)
            self.aggregate = nn.Linear(2 * self.n + 1, K)  # W_Agg over the 2n+1 offset maps
            nn.init.zeros_(self.aggregate.weight)
            nn.init.zeros_(self.aggregate.bias)
        if self.semantic:
            self.mask_generator = nn.Linear(cond_width, J * J)  # MG: gloss → prototype mask (J, J)
            self.descriptor = nn.Linear(width, cond_width)  # frame descriptor → gloss space
            # W_s, the 1×1 convolution from one map to K ("spatial separation"), is a per-partition
            # affine map w_k·M̄ + b_k; written out it is ~8× faster than Conv2d with one input channel.
            self.separation_weight = nn.Parameter(torch.zeros(K))
            self.separation_bias = nn.Parameter(torch.zeros(K))

    def contextual_adjacency(self, h: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """A_a: (B, S, K, J, J).

        C^i_m[u, v] = σ(q_i[u] · k_{i+m}[v] / √D_f) for m = −n … n; offsets that fall outside the
        sequence or on padded frames are excluded by zeroing their aggregation weight for that frame,
        so the (2n+1) maps are aggregated by one batched matmul without a masking pass.
        """
        B, S, J, D = h.shape
        W = 2 * self.n + 1
        q = self.query(h) * (1.0 / math.sqrt(D))  # the score scale folded into the small tensor
        k = nn.functional.pad(self.key(h), (0, 0, 0, 0, self.n, self.n))  # (B, S + 2n, J, D)
        k_win = k.unfold(1, W, 1).permute(0, 1, 4, 3, 2)  # (B, S, 2n+1, D, J): frames i − n … i + n
        # in place on the fresh matmul output: one large allocation fewer (matmul's backward needs no output)
        c = torch.matmul(q[:, :, None], k_win).sigmoid_()  # (B, S, 2n+1, J, J)
        valid = nn.functional.pad(frame_mask, (self.n, self.n)).to(h.dtype).unfold(1, W, 1)  # (B, S, 2n+1)
        w = self.aggregate.weight[None, None] * valid[:, :, None, :]  # (B, S, K, 2n+1), W_Agg per frame
        a = torch.matmul(w.reshape(B * S, self.K, W), c.reshape(B * S, W, J * J))  # (B·S, K, J·J)
        return a.view(B, S, self.K, J, J).add_(self.aggregate.bias.view(1, 1, -1, 1, 1))

    def semantic_mask(self, h: torch.Tensor, cond: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
        """M: (B, S, K, J, J) in [0, 2]."""
        B, _, J, _ = h.shape
        prototypes = self.mask_generator(cond).view(B, -1, J, J)  # (B, L, J, J)
        desc = self.descriptor(h.mean(dim=2))  # (B, S, D_g)
        scores = torch.einsum("bsd,bld->bsl", desc, cond) / math.sqrt(cond.shape[-1])
        scores = scores.masked_fill(~gloss_mask[:, None, :], float("-inf"))
        w = torch.softmax(scores, dim=-1)  # (B, S, L) over valid glosses
        mixed = torch.einsum("bsl,bluv->bsuv", w, prototypes)  # M̄: (B, S, J, J)
        w, b = self.separation_weight.view(1, 1, -1, 1, 1), self.separation_bias.view(1, 1, -1, 1, 1)
        return torch.addcmul(b, mixed[:, :, None], w).sigmoid_().mul(2.0)

    def adjacency(
        self, h: torch.Tensor, cond: torch.Tensor, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        """The fused per-frame adjacency (B, S, K, J, J) — or (1, 1, K, J, J) when it is frame-independent."""
        prior = (self.prior + self.prior_offset)[None, None] if self.topology else None
        if self.contextual:
            A = self.contextual_adjacency(h, frame_mask)
            if prior is not None:
                A = A.add_(prior)  # in place on the fresh A_a
        else:
            A = prior
        if self.semantic:
            A = A * self.semantic_mask(h, cond, gloss_mask)
        return A

    def forward(
        self, h: torch.Tensor, cond: torch.Tensor, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        B, S, J, D = h.shape
        A = self.adjacency(h, cond, frame_mask, gloss_mask)
        x = self.transform(h).view(B, S, J, self.K, D).transpose(2, 3)  # W_k H: (B, S, K, J(u), D)
        if A.shape[0] == 1 and A.shape[1] == 1:  # shared adjacency: one matmul over all frames
            return torch.einsum("kvu,bskud->bsvd", A[0, 0], x)
        # Σ_k A_k @ (W_k H): strided per-partition matmuls, no permuted copy of the large A
        parts = [torch.matmul(a, xk) for a, xk in zip(A.unbind(2), x.unbind(2), strict=True)]
        return torch.stack(parts).sum(0)  # (B, S, J(v), D)


class TemporalConv(nn.Module):
    """Per-joint temporal convolution along frames: (B, S, J, D) → (B, S, J, D); zero padding."""

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, kernel_size=(kernel, 1), padding=(kernel // 2, 0))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # via (B, D, S, J)


class FocalBlock(nn.Module):
    """ASGCN then TCN, each as h ← ReLU(LayerNorm(f(h)) + h), padded frames reset to zero."""

    def __init__(self, prior: torch.Tensor, width: int, cond_width: int, cfg: FocalConfig) -> None:
        super().__init__()
        self.gcn = ASGCN(prior, width, cond_width, cfg)
        self.gcn_norm = nn.LayerNorm(width)
        self.tcn = TemporalConv(width, cfg.tcn_kernel)
        self.tcn_norm = nn.LayerNorm(width)

    def forward(
        self, h: torch.Tensor, cond: torch.Tensor, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        keep = frame_mask[..., None, None].to(h.dtype)  # (B, S, 1, 1)
        h = torch.relu(self.gcn_norm(self.gcn(h, cond, frame_mask, gloss_mask)) + h) * keep
        h = torch.relu(self.tcn_norm(self.tcn(h)) + h) * keep  # zero pads never leak into valid frames
        return h


class FocalStage(nn.Module):
    """L1 focal blocks: (B, S, J, D_f) → (B, S, J, D_f)."""

    def __init__(self, prior: torch.Tensor, cond_width: int, cfg: FocalConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(FocalBlock(prior, cfg.width, cond_width, cfg) for _ in range(cfg.layers))

    def forward(
        self, h: torch.Tensor, cond: torch.Tensor, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        for block in self.blocks:
            h = block(h, cond, frame_mask, gloss_mask)
        return h
