"""The FGDM denoiser (docs/model.md §4): predicts x_0 from a noisy sequence x_t, the timestep and the glosses;
its length head predicts frame counts (§6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fgdm.config import ModelConfig
from fgdm.data.vocab import Vocabulary
from fgdm.model.asgcn import GlossSide
from fgdm.model.embeddings import TimestepEmbedding
from fgdm.model.focal import FocalStage
from fgdm.model.general import CrossMemory, FrameToGeneral, GeneralStage, OutputLayer
from fgdm.model.gloss_encoder import GlossEncoder
from fgdm.model.iconicity import ID_FEATURES, IconicityDisentanglement
from fgdm.skeleton import Skeleton


@dataclass
class DenoiserOutput:
    """x0: (B, S, J, 3) predicted clean poses; features: (B, S, D_g) General-stage output X^go."""

    x0: torch.Tensor
    features: torch.Tensor


@dataclass(eq=False)
class StepContext:
    """All that one denoiser call derives from the glosses, the frame mask and the timestep, not from x_t.

    Sampling computes it for all its steps at once (:meth:`Denoiser.step_contexts`): each product then reads
    its weights once per sentence instead of once per step.
    """

    cond: torch.Tensor  # G = gloss encoding + timestep embedding (B, L, D_g)
    positions: list[torch.Tensor] | None  # F2G's frame encoding terms (FrameToGeneral.positions)
    focal: list[GlossSide] | None  # per Focal block, the semantic mask's inputs from G; None without them
    memory: list[CrossMemory] | None  # per General layer, its cross-attention to G


class LengthHead(nn.Module):
    """Predicts the log frame count from the mean-pooled gloss encoding: (B, L, D_g) → (B,)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, width // 4), nn.ReLU(), nn.Linear(width // 4, 1))

    def forward(self, encoding: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
        m = gloss_mask[..., None].to(encoding.dtype)
        pooled = (encoding * m).sum(1) / m.sum(1).clamp_min(1.0)
        # log S ≈ log(number of glosses) + a learned rate: start from ~16 frames a gloss
        return self.mlp(pooled).squeeze(-1) + torch.log(gloss_mask.sum(1).float().clamp_min(1.0) * 16.0)


class Denoiser(nn.Module):
    """Gloss encoder → ID → (Focal stage) → F2G → General stage → output layer.

    Shape:
        x_t (B, S, J, 3), t (B,), gloss (B, L), gloss_mask (B, L), frame_mask (B, S) → DenoiserOutput.
    Masks are True on valid positions. Padded frames of x_t are ignored: they change no valid output.
    """

    def __init__(
        self, skeleton: Skeleton, vocab_size: int, cfg: ModelConfig, pad_index: int = Vocabulary.pad_index
    ) -> None:
        super().__init__()
        self.cfg = cfg
        J, D = skeleton.num_joints, cfg.width
        self.gloss_encoder = GlossEncoder(vocab_size, D, cfg.gloss_encoder, pad_index, counter=cfg.counter)
        self.timestep = TimestepEmbedding(D)
        self.iconicity = IconicityDisentanglement(skeleton)
        if cfg.focal.enabled:
            prior = torch.as_tensor(skeleton.partition_adjacency(cfg.focal.prior_norm))
            self.embed = nn.Linear(ID_FEATURES, cfg.focal.width)  # per joint: 7 → D_f
            self.focal = FocalStage(prior, D, cfg.focal)
            self.f2g = FrameToGeneral(J, cfg.focal.width, D, counter=cfg.counter)
        else:  # General-only baseline: ID(x_t) flattened → Linear → D_g
            self.embed, self.focal = None, None
            self.f2g = FrameToGeneral(J, ID_FEATURES, D, counter=cfg.counter)
        self.general = GeneralStage(D, cfg.general)
        self.output = OutputLayer(D, J)
        self.length_head = LengthHead(D) if cfg.length_head else None

    @property
    def dtype(self) -> torch.dtype:
        """The model's working dtype: of its inputs and outputs, and of every part but a lowered General one."""
        return self.timestep.mlp[0].weight.dtype

    def lower_precision(self, dtype: torch.dtype = torch.bfloat16) -> Denoiser:
        """Casts the General part (F2G, the General stage, the output layer: most of a sampling step's
        multiplications) to ``dtype``, for sampling only; the gloss encoder, the Focal stage (whose fused CPU
        kernel is float32) and the diffusion arithmetic keep :attr:`dtype`. Inputs and outputs keep it too."""
        for part in (self.f2g, self.general, self.output):
            part.to(dtype)
        return self

    def encode_glosses(self, gloss: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
        """The timestep-free gloss encoding (B, L, D_g); computed once per sampling run."""
        return self.gloss_encoder(gloss, gloss_mask)

    def step_contexts(
        self, encoding: torch.Tensor, gloss_mask: torch.Tensor, frame_mask: torch.Tensor, timesteps: Sequence[int]
    ) -> list[StepContext]:
        """The :class:`StepContext` of each of ``timesteps`` (the same for every sequence), for
        ``encoding`` (B, L, D_g) and the masks, computed together: one product per weight for all steps."""
        B, T = encoding.shape[0], len(timesteps)
        t = torch.tensor(list(timesteps), device=encoding.device).repeat_interleave(B)  # (T·B,)
        cond = encoding[None] + self.timestep(t).view(T, B, 1, -1)  # (T, B, L, D_g)
        low = self.output.proj.weight.dtype
        sides = self.focal.gloss_sides(cond) if self.focal is not None else None
        memory = None if self.general.training else self.general.memory(cond.to(low))
        positions = self.f2g.positions(frame_mask, low)
        return [
            StepContext(
                cond[i],
                positions,
                None if sides is None else [side[i] for side in sides],
                None if memory is None else [m[i] for m in memory],
            )
            for i in range(T)
        ]

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        gloss: torch.Tensor,
        gloss_mask: torch.Tensor,
        frame_mask: torch.Tensor,
        encoding: torch.Tensor | None = None,
        context: StepContext | None = None,
    ) -> DenoiserOutput:
        """``encoding``: the gloss encoding, if already computed; ``context``: this step's
        :class:`StepContext` (for timestep t), if already computed (then ``encoding`` is not read)."""
        if context is None:
            if encoding is None:
                encoding = self.encode_glosses(gloss, gloss_mask)
            cond = encoding + self.timestep(t)[:, None, :]  # G: (B, L, D_g)
            context = StepContext(cond, None, None, None)  # the rest is computed on the way
        keep = frame_mask[..., None, None].to(x_t.dtype)
        h = self.iconicity(x_t * keep)  # (B, S, J, 7)
        if self.focal is not None:
            h = self.embed(h) * keep  # (B, S, J, D_f)
            h = self.focal(h, context.focal or context.cond, frame_mask, gloss_mask)
        low = self.output.proj.weight.dtype  # the model's dtype, or a lower one for sampling (lower_precision)
        h = self.f2g(h.to(low), frame_mask, context.positions)  # (B, S, D_g)
        features = self.general(h, context.cond.to(low), frame_mask, gloss_mask, context.memory)  # X^go
        x0 = self.output(features).to(x_t.dtype) * keep
        return DenoiserOutput(x0=x0, features=features)

    def predict_length(self, gloss: torch.Tensor, gloss_mask: torch.Tensor, encoding: torch.Tensor | None = None):
        """Predicted frame count (B,) as a float; needs ``model.length_head``."""
        if self.length_head is None:
            raise RuntimeError(
                "this model has no length head (model.length_head: false) to predict frame counts: "
                "give them (--length gt with references, or --length N)"
            )
        if encoding is None:
            encoding = self.encode_glosses(gloss, gloss_mask)
        return torch.exp(self.length_head(encoding, gloss_mask))
