"""What the processes of a multi-process (DDP) run do alike, and what each does on its own.

- Validation counts every dev sequence once, as one process would: each rank scores its share of the dev
  batches (:attr:`fgdm.data.dataset.BucketBatchSampler.real_batches`), leaves the fillers out, and the ranks'
  sums or lists are joined before a score is taken. A batch's sampling seed is its index in one process's
  order, so ``dev/dtw`` does not depend on the number of processes.
- Each rank draws its own timesteps and noise (one seed per rank; rank 0 draws what one process would), and a
  checkpoint keeps every rank's random streams, so a resumed run goes on as if never stopped on every rank.
- A Ctrl-C or SIGTERM that reaches one process stops them all, at the next step where the ranks agree on it.
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from fgdm.runtime import TERMINATING, Terminated, restore_handlers


def is_worker() -> bool:
    """A process other than a training's first: Lightning's for a second device or node, or another task that
    torchrun or SLURM's srun started (each sets its own variables). The first owns the run directory and says what
    there is to say."""
    ranks = ("LOCAL_RANK", "NODE_RANK", "RANK", "GROUP_RANK", "SLURM_PROCID")
    return any(os.environ.get(name, "0").strip() not in ("", "0") for name in ranks)


# what a multi-node launch sets: Lightning's own variables, SLURM's, torchrun's, LSF's
MULTINODE_LAUNCH = ("NODE_RANK", "MASTER_ADDR", "SLURM_NTASKS", "GROUP_RANK", "LSB_JOBID")


def require_multinode_launch(num_nodes: int) -> None:
    """Refuses training.num_nodes > 1 in a process that no multi-node launch started: it would wait for the other
    machines forever, saying nothing."""
    if num_nodes > 1 and not any(name in os.environ for name in MULTINODE_LAUNCH):
        raise ValueError(
            f"training.num_nodes = {num_nodes}, but nothing launched this process on several machines "
            f"(none of {', '.join(MULTINODE_LAUNCH)} is set): it would wait for the other machines "
            "forever. Start the same command on every machine with NODE_RANK (0, 1, …), MASTER_ADDR "
            "and MASTER_PORT set, or under SLURM or torchrun; on one machine, use training.devices"
        )


def warn_crowded_cores(trainer: L.Trainer) -> None:
    """Warns when a multi-process training on the CPU asks this machine for more threads than it has cores: the
    processes then take turns on the cores and every step waits for the slowest. Each process runs
    ``OMP_NUM_THREADS`` threads, or, where it is unset, what Lightning gives it (the cores shared out, at least one).
    Not under SLURM, whose tasks each have CPUs of their own (this process's affinity is its task's alone)."""
    processes = trainer.num_devices
    if trainer.strategy.root_device.type != "cpu" or processes < 2 or is_worker() or cluster_plugins():
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    explicit = given.isdigit() and int(given) > 0
    share = max(1, cores // processes)  # Lightning's threads for each where OMP_NUM_THREADS is unset
    threads = int(given) if explicit else share
    if processes * threads <= cores:
        return
    each = f"{threads} thread{'s' * (threads > 1)} each" + (" (OMP_NUM_THREADS)" if explicit else "")
    fix = (f"training.devices {cores} at most" + (" and OMP_NUM_THREADS=1" if threads > 1 else "")
           if processes > cores else f"OMP_NUM_THREADS={share}")  # fmt: skip
    # stacklevel: this function, fit, fit's decorator, fit's caller
    warnings.warn(f"training.devices {processes} starts {processes} training processes of {each} on this machine's "
                  f"{cores} core{'s' * (cores > 1)}: they take turns on the cores, and a step waits for the slowest; "
                  f"{fix} trains faster", stacklevel=4)  # fmt: skip


def cluster_plugins() -> list:
    """Lightning's plugins for where this process runs: under SLURM, its environment without auto-requeue. That
    one's SIGUSR1 handler saved a checkpoint of its own (hpc_ckpt_N.ckpt) in the trainer's root directory, the run
    directory then, which a later fit without --resume (an --overwrite's) continued silently: Lightning under SLURM
    resumes from one it finds there. fgdm stops on SIGUSR1 as on SIGTERM instead, writing last.ckpt
    (:data:`fgdm.runtime.TERMINATING`), and the trainer's root is the checkpoints folder, where no older run put one."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def quiet_workers() -> None:
    """Warnings once per run, not once per process: the other ranks read the same data and config."""
    if is_worker():
        warnings.filterwarnings("ignore", category=UserWarning)


def dev_batch(trainer: L.Trainer | None, batch_idx: int) -> int | None:
    """The index, in one process's order, of this rank's ``batch_idx``-th dev batch; None for a filler (a batch
    repeated so that every rank takes as many steps), which an evaluation leaves out."""
    if trainer is None or trainer.world_size == 1:
        return batch_idx
    index = batch_idx * trainer.world_size + trainer.global_rank
    return index if index < trainer.datamodule.dev_batches else None


def joined(trainer: L.Trainer, lists: dict[str, list]) -> dict[str, list]:
    """Every rank's lists, joined in rank order (the same on every rank)."""
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return lists
    gathered: list[dict[str, list] | None] = [None] * trainer.world_size
    torch.distributed.all_gather_object(gathered, lists)
    return {key: [item for part in gathered for item in part[key]] for key in lists}


def rng_states(trainer: L.Trainer | None) -> dict[str, Any]:
    """The random streams the next steps draw from (timesteps, noise, dropout): this process's as ``torch``
    (and ``cuda``), and, in a multi-process run, every rank's as ``ranks``."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if trainer is None or trainer.world_size == 1 or not torch.distributed.is_initialized():
        return state
    ranks: list[dict | None] = [None] * trainer.world_size
    torch.distributed.all_gather_object(ranks, state)
    return {**ranks[0], "ranks": ranks}


def set_rng_states(trainer: L.Trainer, saved: dict[str, Any] | None, seed: int) -> None:
    """Sets this rank's random streams: its own from a resumed checkpoint's (:func:`rng_states`), else, on a
    rank after the first, a stream of its own from ``seed``, so that the ranks do not draw the same timesteps and
    noise for their batches. Rank 0 draws what one process would."""
    rank = trainer.global_rank
    states = (saved.get("ranks") or [saved]) if saved is not None else []
    if rank < len(states):
        torch.set_rng_state(states[rank]["torch"])
        cuda = states[rank].get("cuda")
        if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    elif rank > 0:
        torch.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))


class StopOnInterrupt(Callback):
    """Ctrl-C (SIGINT) asks the trainer to stop after the current step instead of killing it, so the final
    checkpoint is written; a second Ctrl-C interrupts at once.

    In a multi-process run the ranks must stop at the same step, or the others wait for it forever: a Ctrl-C that
    reached some of them (``kill -INT`` of one process) is agreed on every ``training.log_every`` steps (one
    all-reduce; a terminal's Ctrl-C reaches them all at once).

    SIGTERM (a cluster scheduler's) stops training the same way, once training has started: this handler takes the
    place of Lightning's, which broadcasts from inside the signal handler, wherever each rank is, and so hung
    two CPU processes that were at different collectives (one sampling its dev batch, one at validation's end)."""

    def __init__(self) -> None:
        self.requested, self._previous, self._previous_term = False, None, {}
        self.terminated: str | None = None  # the signal's name, when SIGTERM (or SLURM's SIGUSR1) asked

    # The handlers only note the request; the trainer is told at fixed points of the loop (below). Set from a
    # handler, should_stop could change after fgdm decided that this stop needs no validation and before Lightning
    # reads it, which then validated once more (ScheduledModule.on_train_batch_end).
    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def _terminate(self, signum, frame) -> None:
        self.terminated, self.requested = signal.Signals(signum).name, True

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.requested and trainer.world_size == 1:
            trainer.should_stop = True
        if threading.current_thread() is threading.main_thread():  # after Lightning set its own at fit's start
            signal.signal(signal.SIGTERM, self._terminate)  # (Lightning puts the one before fit back at its end)

    def on_train_batch_end(self, trainer: L.Trainer, module, outputs, batch, batch_idx: int) -> None:
        if trainer.world_size == 1:
            trainer.should_stop = trainer.should_stop or self.requested
            return
        agree = trainer.global_step % max(1, trainer.log_every_n_steps) == 0
        if agree and trainer.strategy.reduce_boolean_decision(self.requested, all=False):
            if trainer.strategy.reduce_boolean_decision(self.terminated is not None, all=False):  # said so, 143
                self.terminated = self.terminated or "SIGTERM"
            self.requested = trainer.should_stop = True

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.requested and trainer.world_size == 1 and trainer.state.fn == "fit":  # stopped during a validation
            trainer.should_stop = True

    def stop(self) -> KeyboardInterrupt:
        """The exception that ends the command for the stop asked: :class:`Terminated` (143) or KeyboardInterrupt."""
        return Terminated(self.terminated) if self.terminated else KeyboardInterrupt()

    def __enter__(self) -> StopOnInterrupt:
        """Ctrl-C and SIGTERM noted from here (Lightning calls the SIGTERM handler it finds from its own, during fit)
        until the block ends: the final checkpoint is written after fit, and a signal then must not cut it."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            if self._previous is not signal.SIG_IGN:  # ignored from the start: a background job's, which the shell
                signal.signal(signal.SIGINT, self._handle)  # keeps out of a terminal's Ctrl-C (as Python does)
            self._previous_term = {sig: signal.signal(sig, self._terminate) for sig in TERMINATING}
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            restore_handlers({signal.SIGINT: self._previous, **self._previous_term})
