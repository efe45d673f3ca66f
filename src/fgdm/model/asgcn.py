"""ASGCN, the Focal stage's adaptive semantic graph convolution (docs/model.md §4.3).

ASGCN gives every frame i its own adjacency, per partition k:

    A^i_k = (A_b,k + A^i_a,k) ⊙ M^i_k

- A_b: the skeleton's K_v-partition prior plus a learnable offset starting at 0, shared by frames;
- A^i_a: contextual correlation of frame i with frames i−n … i+n, σ(q_u · k_v / √D_f), aggregated
  over the 2n+1 offsets by W_Agg, which is zero-initialised so training starts from the prior;
- M^i: a gloss-driven semantic mask 2·σ(W_s M̄^i) ∈ [0, 2], exactly 1 at initialisation.

Padded frames are excluded from the context and stay zero. Three implementations compute the same,
chosen in one place, :meth:`ASGCN.execution_path`: the fused C kernel (``model/kernels``), PyTorch over
all frames at once, and PyTorch in chunks of frames recomputed in the backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn
from torch.compiler import is_compiling as compiling
from torch.utils.checkpoint import checkpoint

from fgdm.config import FocalConfig
from fgdm.model import compiled, kernels


@dataclass(eq=False)
class ASGCNInputs:
    """The PyTorch path's inputs for s frames, far smaller than A; parts switched off are None."""

    x: torch.Tensor  # W_k H (B, s, K, J, D)
    q: torch.Tensor | None = None  # the queries / √D_f (B, s, J, D)
    keys: torch.Tensor | None = None  # each frame's key window (B, s, 2n+1, D, J), a view
    valid: torch.Tensor | None = None  # (B, s, 2n+1): 1 where the offset lands on a valid frame
    weights: torch.Tensor | None = None  # over the glosses (B, s, L)
    prototypes: torch.Tensor | None = None  # (B, L, J, J)


@dataclass(eq=False)
class GlossSide:
    """What the semantic mask takes from the gloss condition G alone, not from the frames.

    A sampling run computes it for all its steps at once (:meth:`ASGCN.gloss_side` takes G with any
    leading dimensions), since G changes only with the timestep. The frame descriptors' scores
    (W_d h̄_i + b_d) · G_l / √D_g are computed as h̄_i · keys_l + offset_l: the same sum, regrouped, so no
    (B, S, D_g) descriptor is formed.
    """

    prototypes: torch.Tensor  # P_l = MG(G_l): (..., L, J, J)
    keys: torch.Tensor  # G_l W_d / √D_g: (..., L, D_f)
    offset: torch.Tensor  # G_l · b_d / √D_g: (..., L)

    def __getitem__(self, index: int) -> GlossSide:
        """The side of one entry of the first dimension (one sampling step)."""
        return GlossSide(self.prototypes[index], self.keys[index], self.offset[index])


Condition = torch.Tensor | GlossSide  # ASGCN's gloss input: G (B, L, D_g), or its side computed beforehand


def kernel_applies(choice: str, h: torch.Tensor, dtype: torch.dtype | None = None) -> bool:
    """Whether the C library computes for input h (cast to ``dtype`` if given) under ``model.focal.kernel`` =
    ``choice``: "torch" never; "auto" for float32 CPU tensors where the library builds (else, once, a warning);
    "c" always, raising RuntimeError where it cannot."""
    if choice == "torch":
        return False
    fits = h.device.type == "cpu" and (dtype or h.dtype) == torch.float32
    if choice == "c":
        if not fits:
            raise RuntimeError(f"model.focal.kernel=c needs float32 CPU tensors, got {h.dtype} on {h.device}")
        if not kernels.available():
            raise RuntimeError(f"model.focal.kernel=c: {kernels.unavailable_reason()}")
        return True
    if fits and not kernels.available():
        kernels.warn_unavailable()
        return False
    return fits


class ASGCN(nn.Module):
    """Frame-wise adaptive semantic graph convolution.

    Shape:
        h: (B, S, J, D_f) joint features; cond: (B, L, D_g) gloss condition G, or its :class:`GlossSide`;
        frame_mask (B, S) and gloss_mask (B, L), True on valid positions → (B, S, J, D_f).
    """

    def __init__(self, prior: torch.Tensor, width: int, cond_width: int, cfg: FocalConfig) -> None:
        super().__init__()
        K, J, _ = prior.shape
        self.K, self.J, self.width = K, J, width
        self.n = cfg.neighbors
        self.topology, self.contextual, self.semantic = cfg.topology, cfg.contextual, cfg.semantic_mask
        self.chunk_frames = cfg.chunk_frames
        self.kernel = cfg.kernel  # execution only: "auto" | "c" | "torch"
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

    def forward(
        self, h: torch.Tensor, cond: Condition, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        path = self.execution_path(h)
        if path == "kernel":
            return kernels.fused_asgcn(self.kernel_args(h, cond, frame_mask, gloss_mask))
        if path == "chunks":
            return self._chunked(h, cond, frame_mask, gloss_mask)
        return self._messages(self._inputs(h, cond, frame_mask, gloss_mask))

    # --- which implementation ------------------------------------------------------------------
    def execution_path(self, h: torch.Tensor) -> Literal["kernel", "chunks", "frames"]:
        """How forward computes this input, with the same results up to float rounding: "kernel", the fused C
        kernel (see :meth:`uses_kernel`), builds no (B, S, K, J, J) tensor; "chunks", PyTorch ``chunk_frames``
        (B·s) frames at a time, recomputed in backward; "frames", PyTorch all at once."""
        if self.uses_kernel(h):
            return "kernel"
        return "chunks" if self._chunk_frames(h) < h.shape[1] else "frames"

    def uses_kernel(self, h: torch.Tensor) -> bool:
        """Whether forward runs the fused C kernel for this input (see ``model.focal.kernel``)."""
        if not (self.contextual or self.semantic):  # a frame-independent A: one einsum
            return False
        return kernel_applies(self.kernel, h)

    def _chunk_frames(self, h: torch.Tensor) -> int:
        """Frames per chunk of the PyTorch path; S for all at once (a shared adjacency is one einsum anyway).
        Chunks keep the maps in an eager CPU's caches; on a GPU they would only multiply kernel launches (at
        batch 64 one chunk per frame), so there all frames go at once, as under torch.compile."""
        B, S = h.shape[:2]
        if self.chunk_frames <= 0 or not (self.contextual or self.semantic) or h.device.type != "cpu" or compiling():
            return S
        return max(1, self.chunk_frames // B)

    # --- the fused kernel ----------------------------------------------------------------------
    def kernel_args(
        self, h: torch.Tensor, cond: Condition, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> kernels.ASGCNArgs:
        """The fused kernel's arguments for this input, differentiable in h, cond and the parameters."""
        B, S, J, D = h.shape
        args: dict[str, torch.Tensor | None] = {}
        if self.contextual:
            n, Jp = self.n, kernels.padded_size(J)
            # keys transposed per frame, zero outside the sequence and in the kernel's column padding: one copy
            args["kt"] = nn.functional.pad(self.key(h).transpose(-1, -2), (0, Jp - J, 0, 0, n, n))
            args |= {"q": self._queries(h), "valid": self._validity(frame_mask, h.dtype)}
            args |= {"wagg": self.aggregate.weight, "bagg": self.aggregate.bias}
        args["prior"] = self.prior + self.prior_offset if self.topology else None
        if self.semantic:
            args["g"], args["proto"] = self._semantic_inputs(h, cond, gloss_mask)
            args |= {"sw": self.separation_weight, "sb": self.separation_bias}
        # W_k H with the partitions after the joints; the bias is added inside the kernel
        x = nn.functional.linear(h, self.transform.weight).view(B, S, J, self.K, D)
        return kernels.ASGCNArgs(x, xb=self.transform.bias.view(self.K, D), **args)

    # --- the PyTorch path ----------------------------------------------------------------------
    def _inputs(
        self, h: torch.Tensor, cond: Condition, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> ASGCNInputs:
        """All frames' inputs at once."""
        q = keys = valid = w = prototypes = None
        if self.contextual:
            q, k, valid = self._context_inputs(h, frame_mask)
            keys = self._windows(k, h.shape[1])
        if self.semantic:
            w, prototypes = self._semantic_inputs(h, cond, gloss_mask)
        return ASGCNInputs(self._transformed(h), q, keys, valid, w, prototypes)

    def _chunked(
        self, h: torch.Tensor, cond: Condition, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        """The messages in runs of frames; under autograd each is recomputed in backward, not stored.

        Chunks are views made by split/unfold/unbind, whose backward is one concatenation, not a
        zero-filled full-size gradient per chunk as plain slicing would give.
        """
        S, step = h.shape[1], self._chunk_frames(h)
        chunks = [ASGCNInputs(x=xc) for xc in self._transformed(h).split(step, dim=1)]
        if self.contextual:
            q, k, valid = self._context_inputs(h, frame_mask, extra=len(chunks) * step - S)
            blocks = k.unfold(1, step + 2 * self.n, step).unbind(1)  # (B, J, D, step + 2n) each, overlapping
            for c, qc, kc, vc in zip(chunks, q.split(step, 1), blocks, valid.split(step, 1), strict=True):
                c.q, c.keys, c.valid = qc, self._windows(kc.permute(0, 3, 1, 2), qc.shape[1]), vc
        if self.semantic:
            w, prototypes = self._semantic_inputs(h, cond, gloss_mask)
            for c, wc in zip(chunks, w.split(step, 1), strict=True):
                c.weights, c.prototypes = wc, prototypes
        run = partial(checkpoint, self._messages, use_reentrant=False) if torch.is_grad_enabled() else self._messages
        return torch.cat([run(c) for c in chunks], dim=1)

    def _transformed(self, h: torch.Tensor) -> torch.Tensor:
        """W_k H: (B, S, K, J, D)."""
        B, S, J, D = h.shape
        return self.transform(h).view(B, S, J, self.K, D).transpose(2, 3)

    def _context_inputs(self, h: torch.Tensor, frame_mask: torch.Tensor, extra: int = 0) -> tuple[torch.Tensor, ...]:
        """q (B, S, J, D), zero-padded keys (B, n + S + n + extra, J, D) and offset validity (B, S, 2n+1)."""
        k = nn.functional.pad(self.key(h), (0, 0, 0, 0, self.n, self.n + extra))  # zero outside the sequence
        return self._queries(h), k, self._validity(frame_mask, h.dtype)

    def _queries(self, h: torch.Tensor) -> torch.Tensor:
        """q / √D_f (B, S, J, D): the score scale folded into the small weight."""
        return nn.functional.linear(h, self.query.weight * (1.0 / math.sqrt(h.shape[-1])))

    def _validity(self, frame_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, S, 2n+1): 1 where frame i's offset lands on a valid frame (a copy: a view made Dynamo guard S > 2n)."""
        return nn.functional.pad(frame_mask, (self.n, self.n)).to(dtype).unfold(1, 2 * self.n + 1, 1).contiguous()

    def _windows(self, k: torch.Tensor, frames: int) -> torch.Tensor:
        """Key windows (B, s, 2n+1, D, J) of ``frames`` frames from padded keys (B, s + 2n (+ extra), J, D)."""
        return compiled.frame_windows(k, 2 * self.n + 1, frames).permute(0, 1, 4, 3, 2)

    def gloss_side(self, cond: torch.Tensor) -> GlossSide:
        """The semantic mask's inputs from G (..., L, D_g) alone; needs ``model.focal.semantic_mask``."""
        J, scale = self.J, 1.0 / math.sqrt(cond.shape[-1])
        prototypes = self.mask_generator(cond).unflatten(-1, (J, J))  # P_l = MG(G_l)
        keys = torch.matmul(cond, self.descriptor.weight) * scale  # (..., L, D_f)
        return GlossSide(prototypes, keys, torch.matmul(cond, self.descriptor.bias) * scale)

    def _semantic_inputs(self, h: torch.Tensor, cond: Condition, gloss_mask: torch.Tensor):
        """The gloss weights w (B, S, L) of each frame and the prototype masks (B, L, J, J)."""
        side = cond if isinstance(cond, GlossSide) else self.gloss_side(cond)
        # each frame's descriptor W_d h̄ + b_d against each gloss, regrouped (see GlossSide)
        scores = torch.baddbmm(side.offset[:, None, :], h.mean(dim=2), side.keys.transpose(1, 2))
        w = torch.softmax(scores.masked_fill(~gloss_mask[:, None, :], float("-inf")), dim=-1)  # over valid glosses
        return w, side.prototypes

    def _contextual(self, q: torch.Tensor, k_win: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """A_a (B, s, K, J, J) for a slice of frames.

        C^i_m[u, v] = σ(q_i[u] · k_{i+m}[v] / √D_f) for m = −n … n; offsets that fall outside the
        sequence or on padded frames are excluded by zeroing their aggregation weight for that frame,
        so the (2n+1) maps are aggregated by one batched matmul without a masking pass.
        """
        B, s, W = valid.shape
        J = q.shape[2]
        # in place on the fresh matmul output: one large allocation fewer (matmul's backward needs no output)
        c = torch.matmul(q[:, :, None], k_win).sigmoid_()  # (B, s, 2n+1, J, J)
        w = self.aggregate.weight[None, None] * valid[:, :, None, :]  # (B, s, K, 2n+1): W_Agg per frame
        a = torch.matmul(w.reshape(B * s, self.K, W), c.reshape(B * s, W, J * J))  # (B·s, K, J·J)
        return a.view(B, s, self.K, J, J).add_(self.aggregate.bias.view(1, 1, -1, 1, 1))

    def _semantic(self, w: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """M (B, s, K, J, J) in [0, 2] for a slice of frames: 2·σ(W_s Σ_l w_l P_l)."""
        mixed = torch.bmm(w, prototypes.flatten(2)).unflatten(2, prototypes.shape[2:])  # M̄ = Σ_l w_l P_l (B, s, J, J)
        ws, bs = self.separation_weight.view(1, 1, -1, 1, 1), self.separation_bias.view(1, 1, -1, 1, 1)
        return torch.addcmul(bs, mixed[:, :, None], ws).sigmoid_().mul(2.0)

    def _adjacency(self, inputs: ASGCNInputs) -> torch.Tensor:
        """(A_b + A_a) ⊙ M for a slice of frames: (B, s, K, J, J), or (1, 1, K, J, J) if frame-independent."""
        prior = (self.prior + self.prior_offset)[None, None] if self.topology else None
        if self.contextual:
            A = self._contextual(inputs.q, inputs.keys, inputs.valid)
            if prior is not None:
                A = A.add_(prior)  # in place on the fresh A_a
        else:
            A = prior
        if self.semantic:
            A = A * self._semantic(inputs.weights, inputs.prototypes)
        return A

    def _messages(self, inputs: ASGCNInputs) -> torch.Tensor:
        """Σ_k A_k @ (W_k H) for a slice of frames: (B, s, J(v), D)."""
        A, x = self._adjacency(inputs), inputs.x
        if A.shape[0] == 1 and A.shape[1] == 1:  # shared adjacency: one matmul over all frames
            return torch.einsum("kvu,bskud->bsvd", A[0, 0], x)
        out = None  # per partition one product over all frames, accumulated; strided views, no copy of the large A
        for a, xk in zip(A.flatten(0, 1).unbind(1), x.flatten(0, 1).unbind(1), strict=True):
            out = torch.bmm(a, xk) if out is None else torch.baddbmm(out, a, xk)
        return out.view(*x.shape[:2], *out.shape[1:])

    # --- public views of the equations over whole sequences (for inspection and tests) ---------
    def contextual_adjacency(self, h: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """A_a: (B, S, K, J, J)."""
        q, k, valid = self._context_inputs(h, frame_mask)
        return self._contextual(q, self._windows(k, h.shape[1]), valid)

    def semantic_mask(self, h: torch.Tensor, cond: Condition, gloss_mask: torch.Tensor) -> torch.Tensor:
        """M: (B, S, K, J, J) in [0, 2]."""
        return self._semantic(*self._semantic_inputs(h, cond, gloss_mask))

    def adjacency(
        self, h: torch.Tensor, cond: Condition, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        """The fused per-frame adjacency (B, S, K, J, J) — or (1, 1, K, J, J) when it is frame-independent."""
        return self._adjacency(self._inputs(h, cond, frame_mask, gloss_mask))
