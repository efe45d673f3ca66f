"""The steps-per-second and sequences-per-second figures a training run reports (:class:`Throughput`)."""

from __future__ import annotations

import itertools
import statistics
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from fgdm.data.dataset import Batch


class Throughput(Callback):
    """Counts training sequences (of all processes, at the end) and the time of the training steps, for a
    sequences-per-second figure; and the
    steps and wall-clock time of the whole fit loop (validation, EMA, logging and checkpoints included, process
    start and data preparation not), for a steps-per-second figure, also over the fit loop's last half of the steps
    alone (after warm-up and, with ``training.compile``, the first compilations), and for the typical step: the
    median time from one step's end to the next's, which leaves out the rare slow ones (a compilation, a
    validation) wherever they fall."""

    def __init__(self) -> None:
        self.sequences, self.seconds, self._t0 = 0, 0.0, 0.0
        self.fit_steps, self.fit_seconds, self._fit_t0, self._first_step = 0, 0.0, 0.0, 0
        self.late_steps, self.late_seconds, self.median_step_seconds = 0, 0.0, 0.0
        self._step_ends: list[float] = []

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._fit_t0, self._first_step = time.perf_counter(), trainer.global_step  # > 0 when resumed
        self._step_ends = []

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)  # the last steps' kernels, not just their launches
        end = time.perf_counter()
        if trainer.world_size > 1:  # every process's sequences; the processes step together, so one's time is all's
            mine = torch.tensor(self.sequences, dtype=torch.long, device=module.device)  # exact past 2**24
            self.sequences = int(trainer.strategy.reduce(mine, reduce_op="sum"))
        self.fit_seconds = end - self._fit_t0
        self.fit_steps = trainer.global_step - self._first_step
        self.late_steps, self.late_seconds = self.fit_steps, self.fit_seconds
        if len(self._step_ends) >= 2:  # from the end of the first half's last step
            half = len(self._step_ends) // 2
            self.late_steps, self.late_seconds = len(self._step_ends) - half, end - self._step_ends[half - 1]
        if self._step_ends:
            steps = itertools.pairwise([self._fit_t0, *self._step_ends])
            self.median_step_seconds = statistics.median(end - start for start, end in steps)

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Batch, idx: int) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch: Batch, idx: int):
        now = time.perf_counter()
        self.seconds += now - self._t0
        self.sequences += len(batch)
        self._step_ends.append(now)
