"""The training loop both trainers share, on PyTorch Lightning.

Distribution, mixed precision, gradient clipping, progress bars and logging are Lightning's. This module adds the
learning-rate schedule's steps (the optimiser and the schedule are in optim.py), and :func:`fit`, which runs a module
with fgdm's callbacks: checkpoints (checkpoints.py), a throughput count, the finite check (finite.py), the stop.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from fgdm.config import TrainingConfig
from fgdm.runtime import drop_noise_warnings, lightning_noise_dropped
from fgdm.training.checkpoints import AtomicCheckpointIO, MovableCheckpoint
from fgdm.training.data import PoseDataModule
from fgdm.training.finite import FiniteCheck, not_finite
from fgdm.training.optim import clip_gradients, optimizer, scheduled_lr
from fgdm.training.progress import StepBar
from fgdm.training.ranks import (
    StopOnInterrupt,
    cluster_plugins,
    is_worker,
    rng_states,
    set_rng_states,
    warn_crowded_cores,
)
from fgdm.training.throughput import Throughput


def _loggers_write_this_step(trainer: L.Trainer) -> bool:
    """Whether Lightning's loggers write the values logged at this training step: every ``log_every_n_steps``
    steps, and at a stop (Lightning's own monitors ask it the same way). True where Lightning has no answer."""
    if not trainer.loggers:
        return False
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))


class WholeEpochCSVLogger(CSVLogger):
    """Lightning's CSV log, its ``epoch`` column a whole number as Lightning writes its own (fgdm logs the data's epoch
    as a value, :meth:`ScheduledModule.data_epoch`, which Lightning turns into a float)."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": int(metrics["epoch"])}
        super().log_metrics(metrics, step)


class ScheduledModule(L.LightningModule):
    """Adam (:func:`optimizer`) with warm-up and a learning-rate schedule (:func:`scheduled_lr`).

    With ``schedule: plateau`` the plateau scheduler is stepped by hand after each validation, stopping
    training below ``min_lr``; its state travels in the checkpoint. The cosine schedule is a function of
    the step alone, so a resumed run continues it. Subclasses set ``self.training_cfg`` and call
    :meth:`after_validation` with the monitored value.
    """

    training_cfg: TrainingConfig
    deferred_finite_check: FiniteCheck | None = None  # set by FiniteCheck while it defers the check
    bar_every_step: bool | None = None  # the bar's loss read every step; None: on a CPU (log_training_terms)

    def __init__(self) -> None:
        super().__init__()
        self.plateau, self._pending_plateau_state = None, None  # ReduceLROnPlateau, and its state from a checkpoint
        self._unlogged_terms: tuple[int, dict[str, torch.Tensor]] | None = None  # see log_training_terms
        self._bar_loss: torch.Tensor | None = None  # on the host, for the progress bar (log_training_terms)
        self.stopped_at_min_lr: int | None = None  # the step where the plateau schedule stopped training, if it did
        self._resumed_rng: dict | None = None  # a resumed checkpoint's random streams, set when fitting starts
        self._fit_started = False

    def check_finite(self, loss: torch.Tensor) -> None:
        """Stops training at the first non-finite loss, before the optimiser step can spread it into the weights (on
        a GPU without waiting for the loss: :class:`~fgdm.training.finite.FiniteCheck`)."""
        if self.deferred_finite_check is not None:
            return self.deferred_finite_check.note(loss)
        if not math.isfinite(value := float(loss.detach())):
            raise not_finite(self.global_step, value)

    def log_training_terms(self, batch_size: int, **terms: torch.Tensor) -> None:
        """The step's loss terms as ``train/NAME`` (``loss`` is the total), on the steps the loggers write.

        Lightning reduces and copies every value passed to ``self.log`` after every step, and writes it only every
        ``training.log_every`` steps (and at a stop): about half a millisecond of host time per value and step,
        which a small model's GPU step cannot spare. So the terms are kept here and logged in
        :meth:`on_train_batch_end`, once Lightning knows whether this step is written. A progress bar shows
        ``loss``: this step's on a CPU; on a GPU the total of the last step written, copied to the host then
        (Lightning reads a bar's values back after every step, which there would wait for every kernel queued)."""
        self._unlogged_terms = (batch_size, {name: t.detach() for name, t in terms.items()})
        if self.trainer.progress_bar_callback is not None:
            every = self.bar_every_step if self.bar_every_step is not None else terms["loss"].device.type == "cpu"
            if self._bar_loss is None or every:  # (the first step's: shown from the start)
                self._bar_loss = terms["loss"].detach().cpu()
            self.log("loss", self._bar_loss, prog_bar=True, logger=False, batch_size=batch_size)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """The loggers' step is the optimiser's: Lightning counts it apart and adds one on every resume (it takes a
        checkpoint to be saved mid-step, but fgdm saves the last one after the fit), so a resumed run's dev rows
        were a step later in metrics.csv than its training rows, one more per resume."""
        loop = getattr(self.trainer.fit_loop, "epoch_loop", None)
        if hasattr(loop, "_batches_that_stepped"):
            loop._batches_that_stepped = self.trainer.global_step

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Lightning validates once more at a stop between validations (Ctrl-C, SIGTERM, max_minutes): a dev row,
        # best.ckpt candidate and plateau count a straight run has not. Switched off here, after every callback's say.
        t = self.trainer
        if t.should_stop and (t.fit_loop.epoch_loop.total_batch_idx + 1) % t.val_check_batch:
            t.limit_val_batches = 0
        unlogged, self._unlogged_terms = self._unlogged_terms, None
        if unlogged is None or not _loggers_write_this_step(self.trainer):
            return
        batch_size, terms = unlogged
        for name, value in terms.items():
            self.log(f"train/{name}", value, batch_size=batch_size, on_step=True, on_epoch=False)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)  # warm-up, cosine
        self.log("epoch", self.data_epoch(), on_step=True, on_epoch=False)
        if self.trainer.progress_bar_callback is not None:  # read now, with the loggers' values
            self._bar_loss = terms["loss"].cpu()

    def data_epoch(self) -> int:
        """The epoch of the data the last step trained on (as EpochBatches counts it), for the logs' ``epoch``:
        Lightning's counts one more on every resume (its epoch ends where a run stops)."""
        return (self.trainer.global_step - 1) // max(1, self.trainer.num_training_batches)

    def after_validation(self, value: float) -> None:
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":  # trainer.validate: no schedule to step
            return
        self.log("epoch", self.data_epoch())
        if self.plateau is None:  # the cosine schedule: nothing to step, the rate is logged
            self.log("lr", self.optimizers().param_groups[0]["lr"])
            return
        if self.trainer.global_step < self.training_cfg.warmup_steps:  # the warm-up owns the rate until it ends
            self.log("lr", self.optimizers().param_groups[0]["lr"])
            return
        self.plateau.step(value)
        lr = self.optimizers().param_groups[0]["lr"]
        self.log("lr", lr)
        if lr < self.training_cfg.min_lr:
            self.stopped_at_min_lr = self.trainer.global_step
            self.trainer.should_stop = True

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        if not clip_gradients(self.trainer, optimizer, gradient_clip_val, gradient_clip_algorithm):
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        t = self.training_cfg
        if t.warmup_steps or t.schedule != "plateau":  # otherwise the plateau scheduler alone owns the rate
            lr = scheduled_lr(t, self.trainer.global_step)
            if lr is not None:  # warm-up or cosine
                for group in optimizer.param_groups:
                    group["lr"] = lr
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # Nothing reads the gradients again before the next backward, but Lightning only clears them
        # after the next forward: freed here, they stay out of that forward's peak memory (paper size:
        # −160 MB of 1.55 GB on the CPU). The next backward starts from None as it would from zero.
        optimizer.zero_grad(set_to_none=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        t = self.training_cfg
        opt = optimizer(self, t)
        if t.schedule != "plateau":
            return opt
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=t.scheduler_factor, patience=t.scheduler_patience
        )
        if self._pending_plateau_state is not None:
            self.plateau.load_state_dict(self._pending_plateau_state)
        return opt

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plateau is not None:
            checkpoint["plateau"] = self.plateau.state_dict()
        # the random streams the next steps draw from (timesteps, noise, dropout), every rank's, for --resume to go
        # on as if never stopped (fit seeds them from training.seed first, which would replay the run's first draws)
        checkpoint["rng"] = rng_states(self._trainer)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._pending_plateau_state = checkpoint.get("plateau")
        if self.plateau is not None and self._pending_plateau_state is not None:
            self.plateau.load_state_dict(self._pending_plateau_state)
        self._resumed_rng = checkpoint.get("rng")  # absent from older checkpoints: those resume from training.seed
        if self._fit_started:  # a strategy that restores after setup (FSDP): fit has begun, set them now
            self.on_fit_start()

    def on_fit_start(self) -> None:
        """Each rank's random streams: those of the checkpoint resumed from, or one of its own (ranks.py); and the
        warning filters of Lightning's noise, set in every process here (fit's own scope is its caller's process)."""
        drop_noise_warnings()
        set_rng_states(self.trainer, self._resumed_rng, self.training_cfg.seed)
        self._resumed_rng, self._fit_started = None, True


@dataclass
class TrainResult:
    """What a training run left: its directory, checkpoints, steps and last dev metric."""

    output_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    monitor: str  # the dev metric that picks the best checkpoint (dev/dtw for FGDM, dev/wer for the back-translator)
    monitored: float | None  # its last value
    best_monitored: float | None  # its best value, best.ckpt's (None: no validation)
    sequences: int  # trained on by this command, by all processes (not those of the run it resumed)
    sequences_per_second: float  # of all processes, over the training steps' time
    steps_per_second: float  # of the fit loop, end to end (validation, EMA, logging, checkpoints included)
    late_steps_per_second: float  # the same over the fit loop's last half of the steps: after warm-up and compiling
    median_steps_per_second: float  # 1 / the median step (end to end): the typical step, compilations left out
    is_global_zero: bool


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (and data-loader workers) for what follows: model construction, then
    training, each seeded from ``training.seed`` so that a run does not depend on what ran before it."""
    L.seed_everything(seed, workers=True, verbose=False)


def _trainer(t: TrainingConfig, out: Path, callbacks: list, loggers: list, progress: bool) -> L.Trainer:
    """Lightning's trainer as ``t`` says (fit's)."""
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        max_steps=t.max_steps,
        max_time=timedelta(minutes=t.max_minutes) if t.max_minutes is not None else None,
        max_epochs=-1,
        val_check_interval=t.val_every,
        check_val_every_n_epoch=None,
        limit_val_batches=None,  # all: training.val_batches is the dev sampler's, over all ranks
        num_sanity_val_steps=0,
        gradient_clip_val=t.clip_grad_norm,
        log_every_n_steps=t.log_every,
        logger=loggers,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO(out), *cluster_plugins()],
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # BucketBatchSampler shards by rank itself
        default_root_dir=str(out / "checkpoints"),  # not out: see ranks.cluster_plugins
    )


@lightning_noise_dropped()  # (a frame between fit and its caller: its warnings take stacklevel 3)
def fit(
    module: L.LightningModule,
    data: PoseDataModule,
    t: TrainingConfig,
    config: dict,
    monitor: str,
    resume: bool,
    progress: bool,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Runs Lightning on a module as ``t`` says: CSV (and TensorBoard) logs, last/best checkpoints by
    ``monitor`` (lower is better), atomic saves; ``config`` (the whole resolved config) goes to config.json."""
    out = Path(t.output_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    seed_everything(t.seed)
    out.mkdir(parents=True, exist_ok=True)
    if not is_worker():  # one writer: the other ranks of a multi-process run hold the same
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        data.vocab.save(out / "gloss_vocab.txt")
    loggers: list = [WholeEpochCSVLogger(str(out), name="logs")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(out), name="tensorboard"))
    except ImportError:
        pass
    best = MovableCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min", save_top_k=1, save_last=True,
        auto_insert_metric_name=False, enable_version_counter=False,
    )  # fmt: skip
    throughput, interrupt, lightning_stopped = Throughput(), StopOnInterrupt(), False
    if t.val_every > t.max_steps:
        warnings.warn(f"training.val_every {t.val_every} > training.max_steps {t.max_steps}: no validation, so no "
                      "dev DTW and no best.ckpt (last.ckpt only)", stacklevel=3)  # fmt: skip
    if t.log_every > t.max_steps:  # Lightning writes rows at multiples of log_every only (and at a stop of its own)
        warnings.warn(f"training.log_every {t.log_every} > training.max_steps {t.max_steps}: the CSV log gets no "
                      "training rows (loss terms, learning rate)", stacklevel=3)  # fmt: skip
    try:
        bar = [StepBar()] if progress else []  # one bar for the run, in steps (Lightning's counts each epoch's)
        trainer = _trainer(t, out, [best, throughput, interrupt, FiniteCheck(), *bar, *callbacks], loggers, progress)
    except (MisconfigurationException, TypeError, ValueError) as err:  # gpu without one; devices -1 or fsdp on a CPU
        if isinstance(err, TypeError) and "devices" not in str(err):
            raise
        raise ValueError(f"training.accelerator, devices, strategy or precision: {err}") from None
    warn_crowded_cores(trainer)
    if trainer.strategy.root_device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = t.tf32
    with interrupt:  # a Ctrl-C or SIGTERM is noted, not raised, until the final state is written
        try:
            trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume else None)
        except SIGTERMException:  # a SIGTERM before training began, Lightning's: it stopped, exiting 0
            interrupt.terminated, interrupt.requested, lightning_stopped = "SIGTERM", True, True
        except SystemExit:  # Lightning's exit at a second Ctrl-C, mid-step: nothing to save
            if not interrupt.requested:
                raise
            raise interrupt.stop() from None
        if interrupt.requested and not throughput.sequences:  # stopped before a step: nothing to save (claim says it)
            raise interrupt.stop()
        # the final state, also between validations; not where Lightning stopped several processes on its own (a
        # save, a collective, would wait for ranks that may be gone)
        if saved := trainer.world_size == 1 or not lightning_stopped:
            trainer.save_checkpoint(last)
    if interrupt.requested and trainer.is_global_zero:
        what = "it" if saved else "its last validation's state"
        more = "--resume continues" if trainer.global_step < t.max_steps else "training.max_steps was reached"
        print(f"fgdm: {f'terminated ({interrupt.terminated})' if interrupt.terminated else 'interrupted'} at step "
              f"{trainer.global_step}; {last} holds {what} ({more})", file=sys.stderr)  # fmt: skip
    if interrupt.requested:
        stop = interrupt.stop()
        stop.reported = True  # the first process said it above, with where the checkpoint is; the others say nothing
        raise stop
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if (
        timer is not None
        and trainer.is_global_zero
        and trainer.global_step < t.max_steps
        and timer.time_remaining() <= 0
    ):
        print(f"fgdm: training.max_minutes = {t.max_minutes:g} reached at step {trainer.global_step} of "
              f"{t.max_steps}; {last} holds it (--resume with more minutes continues)", file=sys.stderr)  # fmt: skip
    stopped = getattr(module, "stopped_at_min_lr", None)
    if stopped is not None and trainer.is_global_zero:
        print(f"fgdm: the learning rate fell below training.min_lr = {t.min_lr:g} at step {stopped} of "
              f"{t.max_steps} (the plateau schedule: {monitor} stopped improving); training ended there",
              file=sys.stderr)  # fmt: skip
    value = trainer.callback_metrics.get(monitor, best.last_score)
    return TrainResult(
        output_dir=out,
        last_checkpoint=last,
        best_checkpoint=ckpt_dir / Path(best.best_model_path).name if best.best_model_path else None,  # as `last`
        steps=trainer.global_step,
        monitor=monitor,
        monitored=float(value) if value is not None else None,
        best_monitored=float(best.best_model_score) if best.best_model_score is not None else None,
        sequences=throughput.sequences,
        sequences_per_second=throughput.sequences / max(throughput.seconds, 1e-9),
        steps_per_second=throughput.fit_steps / max(throughput.fit_seconds, 1e-9),
        late_steps_per_second=throughput.late_steps / max(throughput.late_seconds, 1e-9),
        median_steps_per_second=1 / throughput.median_step_seconds if throughput.median_step_seconds else 0.0,
        is_global_zero=trainer.is_global_zero,
    )
