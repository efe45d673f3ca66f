"""Stopping training at the first non-finite loss or gradient, without making a GPU wait for every step's loss.

On a CPU the loss is read at once, before the optimiser step (:func:`not_finite`'s error): the read costs nothing
there, as the step's arithmetic has already been done. Where the loss lives on a GPU, reading it makes the host wait
for all the step's kernels, so the host cannot issue the next step while the device computes this one. There,
with PyTorch's fused Adam (every ``training.precision`` but ``16-mixed``: :func:`fgdm.training.optim.optimizer`),
:class:`FiniteCheck` defers the read without letting a non-finite step reach the weights:

- a step whose loss or gradients are not finite is not applied: its ``found_inf`` flag, as a gradient scaler passes
  it to the fused step, leaves the weights, Adam's moments and its step count as they were (the flag stays on the
  device); buffers that the forward pass itself updates (the SCG branch's BatchNorm statistics) are not covered;
- the first such step is kept on the device too, and read every ``training.log_every`` steps, before each validation
  and checkpoint, and when training ends: the run then stops with the same error, naming that step, so no
  checkpoint is written after it.

In a multi-process (DDP) run the ranks agree on skipping a step (one all-reduce of the flag on the device, no wait)
and on stopping at the same check (one all-reduce). Other strategies (FSDP's sharded gradients), optimisers
without ``found_inf``, devices other than CUDA and torch before 2.6 (no ``get_total_norm``) read the loss at once,
as on a CPU.
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
        what = "the training loss or the gradients were not finite, in this process or another"
    elif math.isfinite(loss):
        what = f"the gradients are not finite (the training loss is {loss})"
    else:
        what = f"the training loss is {loss}"
    if stopped_at is None:
        where = "training stopped there, before the step reached the weights (no checkpoint holds it)"
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
            and hasattr(torch.nn.utils, "get_total_norm")  # torch ≥ 2.6
        )
        wanted = module.device.type == "cuda" if self.defer is None else self.defer
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
        skip = (~torch.isfinite(norm) | ~torch.isfinite(self.loss)).float()
        if trainer.world_size > 1 and torch.distributed.is_initialized():  # a rank's loss alone: all skip it
            torch.distributed.all_reduce(skip, op=torch.distributed.ReduceOp.MAX)
        optimizer.found_inf = skip  # read by the fused step: nothing changes where it is 1
        new = (skip > 0) & (self.first < 0)
        self.first = torch.where(new, trainer.global_step, self.first)
        self.first_loss = torch.where(new, self.loss.float(), self.first_loss)
        self.loss = None

    def check(self, trainer: L.Trainer) -> None:
        """Raises where a step so far was not finite, on every rank at once (one host read; one all-reduce)."""
        if not self.active:
            return
        none = torch.iinfo(torch.long).max  # the earliest over the ranks; "none" where there is none
        first = torch.where(self.first < 0, none, self.first)
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
        step = int(first)
        if step == none:
            return
        loss = float(self.first_loss) if int(self.first) == step else None
        if loss is not None and math.isfinite(loss) and trainer.world_size > 1:
            loss = None  # finite here: another process's loss or the averaged gradients were the cause
        raise not_finite(step, loss, stopped_at=trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self.check(trainer)

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.check(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        self.check(trainer)  # raised here, the checkpoint is not written

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.check(trainer)
        self._release(trainer, module)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._release(trainer, module)

    def _release(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            self._optimizer(optimizer).__dict__.pop("found_inf", None)
        module.deferred_finite_check, self.active = None, False
