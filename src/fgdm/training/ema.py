"""The exponential moving average of the denoiser's weights that sampling uses (``training.ema_decay``)."""

from __future__ import annotations

import itertools
import weakref
from typing import NamedTuple

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


class EMA(AveragedModel):
    """W_ema ← decay · W_ema + (1 − decay) · W after every training step; the first step copies W.

    torch's AveragedModel keeps the copy and its state-dict keys (``module.*``, ``n_averaged``), so checkpoints
    read the same. The update is this class's own, one foreach pass over the floating-point tensors:

    - Integer buffers (the skeleton's parent indices) stay as they are. AveragedModel averages them too, as
      floats, and truncates the result: with decay 0.997 or 0.9999, 9 or 10 of the 50 parents of the EMA copy
      that validation samples with end up one joint off.
    - It never reads a device tensor on the host: AveragedModel reads ``n_averaged`` twice per update, which
      on a GPU waits for every kernel queued before it. Whether the copy has started is kept on the host,
      read once per process (and again after a state dict is loaded).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__(model, use_buffers=True)
        self.module.requires_grad_(False)  # set by the update, never by a gradient (DDP expects one for every other)
        self.decay = decay
        self._started: bool | None = None  # n_averaged > 0, on the host; None: read it at the next update
        self._pairs: _Pairs | None = None

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        mine, theirs = self._tensor_pairs(model)
        if self._started is None:
            self._started = bool(self.n_averaged > 0)
        if self._started:
            torch._foreach_lerp_(mine, theirs, 1.0 - self.decay)
        else:
            torch._foreach_copy_(mine, theirs)
            self._started = True
        self.n_averaged += 1

    def _tensor_pairs(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The floating-point parameters and buffers of the copy and of ``model``, matched in order.

        Found by walking both modules once, then kept: the walk costs more host time than the update itself
        (synth.yaml's 104 modules). Moving the copy (``.to()`` replaces buffers) or loading a state dict walks
        again, as does another ``model``; Lightning moves the copy together with the model it averages."""
        if self._pairs is None or self._pairs.model() is not model:
            pairs = [
                (mine, theirs)
                for mine, theirs in zip(_tensors(self.module), _tensors(model), strict=True)
                if mine.is_floating_point()
            ]
            self._pairs = _Pairs(weakref.ref(model), [a for a, _ in pairs], [b for _, b in pairs])
        return self._pairs.mine, self._pairs.theirs  # on one device: Lightning moves both

    def _apply(self, *args, **kwargs):  # .to(), .cuda(), .float(), ...: buffers are replaced, not changed in place
        self._pairs = None
        return super()._apply(*args, **kwargs)

    def __getstate__(self) -> dict:  # pickled (a spawned process, torch.save of a module): the pairs are found again
        return {**super().__getstate__(), "_pairs": None}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._started = None  # a loaded n_averaged decides again
        self._pairs = None


class _Pairs(NamedTuple):
    model: weakref.ref[nn.Module]
    mine: list[torch.Tensor]
    theirs: list[torch.Tensor]


def _tensors(module: nn.Module) -> itertools.chain[torch.Tensor]:
    return itertools.chain(module.parameters(), module.buffers())
