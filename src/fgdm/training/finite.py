"""Stopping training at the first non-finite loss or gradient, without making a GPU wait for every step's loss.

On a CPU the loss is read at once, before the optimiser step (:func:`not_finite`'s error): the read costs nothing
there, as the step's arithmetic has already been done. Where the loss lives on a GPU, reading it makes the host wait
for all the step's kernels, so the host cannot issue the next step while the device computes this one. There,
with PyTorch's fused Adam (float32 and TF32 training, ``optimizer`` in loop.py), :class:`FiniteCheck` defers the
read without letting a non-finite step reach the weights:

- a step whose gradients are not finite is not applied: its ``found_inf`` flag, as a gradient scaler passes it to
  the fused step, leaves the weights, Adam's moments and its step count as they were (the flag stays on the device);
- the first step whose loss or gradients were not finite is kept on the device too, and read every
  ``training.log_every`` steps and when training ends: the run then stops with the same error, naming that step.

In a multi-process (DDP) run every rank sees the same averaged gradients, so they skip the same steps, and they
agree on stopping at the same check (one all-reduce). Other strategies (FSDP's sharded gradients) and optimisers
without ``found_inf`` read the loss at once, as on a CPU.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy


def not_finite(step: int, loss: float | None, stopped_at: int | None = None) -> FloatingPointError:
    """The error that stops training at ``step``, whose loss or gradients were not finite (``loss``: its loss; None
    where another process's was the cause). ``stopped_at``: where a deferred check found it (the step itself was
    not applied)."""
    if loss is None:
        what = "the training loss or the gradients were not finite in another process"
    elif math.isfinite(loss):
        what = f"the gradients are not finite (the training loss is {loss})"
    else:
        what = f"the training loss is {loss}"
    if stopped_at is None:
        where = "training stopped there (the checkpoints hold the last finite state)"
    else:
        where = (f"that step was not applied, and training stopped at step {stopped_at}, where this was checked "
                 f"(every training.log_every steps: a GPU does not wait for each step's loss)")  # fmt: skip
    return FloatingPointError(f"step {step}: {what}; {where}. Check the data for extreme values, or lower training.lr")


class FiniteCheck(Callback):
    """Defers the check of each step's loss where it would make a GPU wait (see the module's text).

    ``defer``: None defers where it pays and works (a device other than the CPU, a fused Adam, one process or DDP);
    True defers wherever it works (tests do, on the CPU); False never."""

    def __init__(self, defer: bool | None = None) -> None:
        self.defer, self.active = defer, False
        self.loss: torch.Tensor | None = None  # this step's loss, on the device
        self.first: torch.Tensor | None = None  # the first non-finite step, -1 while there is none
        self.first_loss: torch.Tensor | None = None  # its loss

    @staticmethod
    def _optimizer(optimizer: Any) -> torch.optim.Optimizer:
        return getattr(optimizer, "_optimizer", optimizer)  # Lightning's wrapper holds a copy of its attributes

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        optimizers = [self._optimizer(o) for o in trainer.optimizers]
        works = (
            len(optimizers) == 1
            and all(group.get("fused") for group in optimizers[0].param_groups)
            and type(trainer.strategy) in (SingleDeviceStrategy, DDPStrategy)
        )
        wanted = module.device.type != "cpu" if self.defer is None else self.defer
        self.active = bool(works and wanted)
        module.deferred_finite_check = self if self.active else None
        if self.active:
            self.first = torch.full((), -1, dtype=torch.long, device=module.device)
            self.first_loss = torch.zeros((), device=module.device)

    def note(self, loss: torch.Tensor) -> None:
        """This step's loss (training_step's, before the backward pass)."""
        self.loss = loss.detach()

    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, optimizer: Any) -> None:
        if not self.active or self.loss is None:
            return
        optimizer = self._optimizer(optimizer)
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads, foreach=True) if grads else self.loss.new_zeros(())
        skip = ~torch.isfinite(norm)  # the same on every rank: DDP has averaged the gradients by now
        optimizer.found_inf = skip.float()  # read by the fused step: nothing changes where it is 1
        new = (skip | ~torch.isfinite(self.loss)) & (self.first < 0)
        self.first = torch.where(new, trainer.global_step, self.first)
        self.first_loss = torch.where(new, self.loss.float(), self.first_loss)
        self.loss = None

    def check(self, trainer: L.Trainer) -> None:
        """Raises where a step so far was not finite, on every rank at once (one host read; one all-reduce)."""
        if not self.active:
            return
        first = self.first.clone()
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MAX)
        step = int(first)
        if step < 0:
            return
        mine = int(self.first) == step  # this rank's own loss of that step; another rank's may have been the cause
        raise not_finite(step, float(self.first_loss) if mine else None, stopped_at=trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self.check(trainer)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.check(trainer)
        self._release(trainer, module)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._release(trainer, module)

    def _release(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            self._optimizer(optimizer).__dict__.pop("found_inf", None)
        module.deferred_finite_check, self.active = None, False
