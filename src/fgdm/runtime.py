"""Process-wide settings: CPU runs faster without changing any result; SIGTERM as an exception; signals held off while
files are swapped, and a file replaced whole (:func:`replacing`); one thread in a forked child
(:func:`one_thread_after_fork`); the device a command runs on (:func:`resolve_device`); Lightning's notes that say
nothing to an fgdm user left out (:func:`lightning_noise_dropped`)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit systems
_applied: bool | None = None


def keep_freed_memory(trim_threshold: int = 2**31 - 1) -> bool:
    """Lets glibc's malloc keep freed memory for reuse instead of handing it back to the system.

    PyTorch allocates every large CPU tensor with malloc. By default glibc serves blocks of more than a
    few megabytes with mmap and unmaps them on free, so the next tensor of that size is page-faulted in
    again: ~40,000 page faults per 5-step sampling of the paper-size model (~5 % of its time). Raising the
    mmap threshold to its maximum and the trim threshold to ``trim_threshold`` bytes keeps those pages
    mapped; the peak memory is unchanged, the resident memory no longer shrinks after the peak.
    Returns whether the setting applied (Linux with glibc); a no-op elsewhere and on repeated calls.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # not glibc (e.g. musl)
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _applied = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
            mallopt(_M_TRIM_THRESHOLD, trim_threshold)
        )
    return _applied


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done: a few renames that must happen together (a PT split's four
    files, a report's three) are never cut between two. Their handlers are swapped for ones that note the signal
    (Python runs handlers in the main thread, whichever thread the system delivered it to), and a signal noted is
    raised again after the block. Outside the main thread, where handlers cannot be set, nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    before = {sig: signal.signal(sig, lambda signum, frame: noted.append(signum)) for sig in _HELD}
    try:
        yield
    finally:
        restore_handlers(before)
        for sig in dict.fromkeys(noted):
            signal.raise_signal(sig)


_HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """A file to write beside ``path`` (hidden, with ``path``'s suffix, which writers go by), renamed over ``path``
    once written: a failed or interrupted write leaves no partial file and an older ``path`` whole, and a reader never
    sees half a file (where a rename is atomic: Linux, macOS; nothing is synced, so not after a power loss).
    A symbolic link is written through; a file replaced keeps its permissions, one not writable is refused as writing
    it would be, and a hard link to it keeps the old content. Errors name ``path``, not the temporary file."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # per thread; the stem cut short, so that a name near the file system's 255 bytes still has a temporary
    tmp = path.with_name(f".{path.stem[:64]}.{os.getpid()}-{threading.get_native_id()}.tmp{path.suffix}")
    try:
        if path.is_file() and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        yield tmp
        if path.is_file():
            shutil.copymode(path, tmp)
        tmp.replace(path)
    except OSError as err:  # named as the user named it, not as the hidden temporary
        if err.filename in (str(tmp), tmp) and err.errno is not None:
            raise type(err)(err.errno, err.strerror, str(path)) from err  # (one name: no "tmp -> path")
        raise
    finally:
        with contextlib.suppress(OSError):  # (an error removing it must not hide the error that stopped the write)
            tmp.unlink(missing_ok=True)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by SIGTERM (a cluster scheduler's, ``kill``), or SLURM's warning SIGUSR1: raised
    where it was, so that its ``finally`` blocks run (temporary files removed, training's last checkpoint written).
    Exit status 143."""

    exit_status = 143  # 128 + SIGTERM, as shells report it
    reported = False  # True once the command has said what it left (the command line then adds nothing)

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


# what stops a command as SIGTERM does: SLURM's --signal=USR1@SECONDS too, a warning before the job's end
TERMINATING = (signal.SIGTERM, *([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else []))


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (the default kills the process at
    once, leaving a half-written file's temporary beside it); the handler before it is put back after. Training
    replaces it for its fit and final checkpoint with :class:`fgdm.training.ranks.StopOnInterrupt`'s, which notes the
    signal and stops after the step (writing the last checkpoint, stopping every process): Lightning calls the
    handler it finds from its own, and a raising one would cut its steps anywhere."""

    def terminate(signum, frame) -> None:
        raise Terminated(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, terminate) for sig in TERMINATING}
    try:
        yield
    finally:
        restore_handlers(before)


def restore_handlers(before: dict) -> None:
    """Puts back the handlers ``signal.signal`` returned, by signal (one set outside Python, None, as the default)."""
    for sig, handler in before.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


_fork_hook = False


def one_thread_after_fork() -> None:
    """A process forked from this one from now on computes on one CPU thread (``torch.set_num_threads(1)``), as
    PyTorch's own DataLoader workers do.

    On Linux PyTorch's CPU threads are GNU OpenMP's, whose thread pool does not survive a fork: a child forked after
    the parent computed on more than one thread waits forever at its first parallel operation, silently, using no
    CPU. That is the worker of a pre-forking server that loaded the model first (gunicorn ``--preload``) and the
    worker of a ``multiprocessing`` pool with the "fork" start method. One thread per worker is what such servers
    want anyway (a worker per core); raising it again in the child hangs as before: for more threads per worker,
    load in each worker (a server without preloading; "spawn" or "forkserver"). Registered once per process; a
    no-op where ``os.register_at_fork`` is missing (Windows)."""
    global _fork_hook
    if _fork_hook or not hasattr(os, "register_at_fork"):
        return
    import torch

    os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))
    _fork_hook = True


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` or None (CUDA when present, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, in any case; a
    clear error for a device this machine lacks or fgdm does not run on."""
    import torch

    if name is None or str(name).lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        if not isinstance(name, (str, torch.device)):  # torch would take a bare number for a CUDA device's
            raise TypeError
        device = torch.device(name.lower() if isinstance(name, str) else name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available on this machine (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {name!r}: MPS is not available on this machine (use cpu or auto)")
    elif device.type != "cpu":
        raise ValueError(f"device {name!r}: fgdm samples on auto, cpu, cuda, cuda:N or mps")
    return device


# Lightning's notes that say nothing to an fgdm user: its own deprecations of torch internals, the checkpoint
# directory fgdm claimed itself (train --resume / --overwrite), torch.load's weights_only default, an advert, the
# time budget's callback missing when a run with training.max_minutes is resumed without one, and that training
# stopped at max_steps (the bar ends at it; the command's result says the steps). And its warnings of what fgdm
# does on purpose: a resumed epoch's batches go on where they stopped (EpochBatches), though Lightning cannot know
# it; the dev scores are joined over the ranks before they are logged (ranks.py), the same on every rank; the logs
# come every training.log_every steps of the whole run (Lightning counts across epochs), so an epoch shorter than
# that loses none (its warning names a Trainer argument fgdm's users do not set).
NOISE = (r".*isinstance\(treespec, LeafSpec\)", r"Checkpoint directory .* exists and is not empty",
         r".*`weights_only` was not set", r".*Tip: For seamless cloud logging",
         r".*callbacks used to create the checkpoint need to be provided.*\['Timer'\]",
         r"`Trainer.fit` stopped: `max_steps=\d+` reached", r".*your dataloader is not resumable",
         r".*sync_dist=True.*when logging on epoch level",
         r"The number of training batches .* logging interval")  # fmt: skip


def drop_noise_warnings() -> None:
    """Ignores the warnings :data:`NOISE` matches, from now on (a process that trains)."""
    for pattern in NOISE:
        warnings.filterwarnings("ignore", message=pattern)


class DropNoise(logging.Filter):
    """Drops the log records :data:`NOISE` matches."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(re.match(pattern, record.getMessage()) for pattern in NOISE)


@contextlib.contextmanager
def lightning_noise_dropped() -> Iterator[None]:
    """Within it (or a function it decorates), the warnings and Lightning's log lines :data:`NOISE` matches are
    left out: training from Python prints what ``fgdm train`` prints. Lightning's loggers as they were after."""
    names = ("lightning.pytorch", "lightning.fabric")
    handlers = [h for name in names for h in logging.getLogger(name).handlers]  # they see their children's records
    drop = DropNoise()
    with warnings.catch_warnings():
        drop_noise_warnings()
        for handler in handlers:
            handler.addFilter(drop)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(drop)
