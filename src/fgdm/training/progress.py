"""The training progress bar (:class:`StepBar`): one bar for the whole run, counted in optimiser steps."""

from __future__ import annotations

import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf


class StepBar(TQDMProgressBar):
    """Lightning's tqdm bars, with the training bar counting the run's steps up to ``training.max_steps``.

    Lightning's own bar starts again at every epoch and counts that epoch's batches ("Epoch 12: 4/4"), which says
    nothing of how far a run bounded by steps has come, nor when it ends. This one goes once from the step the run
    starts at (a resumed run's) to ``max_steps``, its rate and time left taken over this process's steps alone.
    The bars go to stderr, as every other fgdm bar: stdout carries the command's result (``fgdm train``'s JSON).
    Lightning's run version (``v_num``) is left out; the run is its directory.
    """

    def _bar(self, desc: str, leave: bool, position: int, unit: str, **kwargs: Any) -> Tqdm:
        return Tqdm(desc=desc, position=position, disable=self.is_disabled, leave=leave, dynamic_ncols=True,
                    file=sys.stderr, smoothing=0, unit=unit, bar_format=self.BAR_FORMAT, **kwargs)  # fmt: skip

    def init_train_tqdm(self) -> Tqdm:
        trainer = self.trainer  # a resumed run's steps are done: the rate and time left count from its step
        total = trainer.max_steps if trainer.max_steps > 0 else None
        return self._bar("train", True, 2 * self.process_position, "step", total=total, initial=trainer.global_step)

    def init_validation_tqdm(self) -> Tqdm:
        main = self.trainer.state.fn != "validate"  # trainer.validate has no training bar under it
        return self._bar("validate", not main, 2 * self.process_position + main, "batch")

    def on_train_start(self, *_: Any) -> None:
        self.train_progress_bar = self.init_train_tqdm()

    def on_validation_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:  # fmt: skip
        """Lightning's, but "validate" (it says "Validation DataLoader 0"; fgdm has one dev loader)."""
        if self.has_dataloader_changed(dataloader_idx):
            self.val_progress_bar.set_description("validate", refresh=False)  # (fit has no sanity check)
            self.val_progress_bar.reset(total=convert_inf(self.total_val_batches_current_dataloader))

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        """Nothing: the bar goes on across epochs (Lightning's starts again)."""

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *_: Any) -> None:
        bar, step = self.train_progress_bar, trainer.global_step
        if self._should_update(step, bar.total) and not bar.disable:
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, module))  # (it refreshes the bar)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, module))

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        """Lightning's, each number to 4 significant digits as a string: Lightning's own 3, padded with zeros, showed
        a dev DTW of 23.958 as 24.00 and a WER of 96.15 as 96.20."""
        shown = super().get_metrics(trainer, module)
        shown.pop("v_num", None)
        return {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in shown.items()}
