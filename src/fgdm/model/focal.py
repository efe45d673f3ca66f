"""The Focal stage (docs/model.md §4.3): L1 blocks of ASGCN (:mod:`fgdm.model.asgcn`) then TCN, each with
residual, norm and ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.compiler import is_compiling as compiling

from fgdm.config import FocalConfig
from fgdm.model import compiled, kernels
from fgdm.model.asgcn import ASGCN, Condition, GlossSide, kernel_applies
from fgdm.model.masks import nothing_padded


class TemporalConv(nn.Module):
    """Per-joint temporal convolution along frames: (B, S, J, D) → (B, S, J, D); zero padding."""

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, kernel_size=(kernel, 1), padding=(kernel // 2, 0))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if compiling():  # one product: inductor's convolution backward would fix the frame count (model/compiled.py)
            return compiled.conv_over_frames(h, self.conv.weight[..., 0], self.conv.bias)
        return self.conv(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # via (B, D, S, J)


class FocalNorm(nn.LayerNorm):
    """nn.LayerNorm over each joint's D_f channels, computed by the C library where ASGCN's kernel would run
    (``model.focal.kernel``, see :func:`kernel_applies`): PyTorch's CPU LayerNorm is slow on rows this narrow
    (see ``model/kernels/norm.py``). Same parameters, so checkpoints do not tell the two apart."""

    def __init__(self, width: int, kernel: str = "auto") -> None:
        super().__init__(width)
        self.kernel = kernel  # execution only

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if kernel_applies(self.kernel, h):
            return kernels.layer_norm(h, self.weight, self.bias, self.eps)
        return super().forward(h)


class FocalBlock(nn.Module):
    """ASGCN then TCN, each as h ← ReLU(LayerNorm(f(h)) + h), padded frames reset to zero."""

    def __init__(self, prior: torch.Tensor, width: int, cond_width: int, cfg: FocalConfig) -> None:
        super().__init__()
        self.gcn = ASGCN(prior, width, cond_width, cfg)
        self.gcn_norm = FocalNorm(width, cfg.kernel)
        self.tcn = TemporalConv(width, cfg.tcn_kernel)
        self.tcn_norm = FocalNorm(width, cfg.kernel)

    def forward(
        self, h: torch.Tensor, cond: Condition, frame_mask: torch.Tensor, gloss_mask: torch.Tensor
    ) -> torch.Tensor:
        keep = None if nothing_padded(frame_mask) else frame_mask[..., None, None].to(h.dtype)  # (B, S, 1, 1)
        h = self._residual(self.gcn_norm(self.gcn(h, cond, frame_mask, gloss_mask)), h, keep)
        return self._residual(self.tcn_norm(self.tcn(h)), h, keep)  # zero pads never leak into valid frames

    @staticmethod
    def _residual(y: torch.Tensor, h: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """ReLU(y + h) · keep, on y's fresh buffer where autograd allows (fewer passes over memory)."""
        if torch.is_grad_enabled():
            y = (y + h).relu_()  # relu's backward needs only its output
            return y if keep is None else y * keep
        y = y.add_(h).relu_()
        return y if keep is None else y.mul_(keep)


class FocalStage(nn.Module):
    """L1 focal blocks: (B, S, J, D_f) → (B, S, J, D_f). ``cond`` is G (B, L, D_g), or one :class:`GlossSide` per
    block (:meth:`gloss_sides`, computed beforehand)."""

    def __init__(self, prior: torch.Tensor, cond_width: int, cfg: FocalConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(FocalBlock(prior, cfg.width, cond_width, cfg) for _ in range(cfg.layers))

    def gloss_sides(self, cond: torch.Tensor) -> list[GlossSide] | None:
        """Each block's :class:`GlossSide` of G (..., L, D_g); None without the semantic mask."""
        if not self.blocks[0].gcn.semantic:
            return None
        return [block.gcn.gloss_side(cond) for block in self.blocks]

    def forward(
        self,
        h: torch.Tensor,
        cond: torch.Tensor | Sequence[GlossSide],
        frame_mask: torch.Tensor,
        gloss_mask: torch.Tensor,
    ) -> torch.Tensor:
        if torch.is_autocast_enabled("cpu") and kernel_applies(self.blocks[0].gcn.kernel, h, torch.float32):
            # mixed precision on a CPU (training.precision: bf16-mixed): where the fused kernel computes, the Focal
            # stage stays float32, its type. The PyTorch path (kernel=torch) follows autocast, as on a GPU.
            with torch.autocast("cpu", enabled=False):
                if isinstance(cond, torch.Tensor):
                    return self.forward(h.float(), cond.float(), frame_mask, gloss_mask)
                # GlossSides computed under autocast (sampling during validation) are bfloat16
                sides = [GlossSide(*(t.float() for t in (c.prototypes, c.keys, c.offset))) for c in cond]
                return self.forward(h.float(), sides, frame_mask, gloss_mask)
        conds = [cond] * len(self.blocks) if isinstance(cond, torch.Tensor) else cond
        for block, c in zip(self.blocks, conds, strict=True):
            h = block(h, c, frame_mask, gloss_mask)
        return h
