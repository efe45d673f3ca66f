"""A training run's directory, claimed safely: nothing a user made is replaced without being asked.

- A directory that holds checkpoints is continued only with ``resume`` and started afresh only with
  ``overwrite``; a file where the directory should be is refused.
- A resumed run must keep what its checkpoint was trained with (model, loss, diffusion, optimiser);
  only how it runs (steps, intervals, devices, precision, workers, paths) may change.
- A lock file holds the directory for one training at a time; a lock left by a dead process is
  recognised and removed with a warning.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fgdm.checkpoint import read_checkpoint
from fgdm.config import BackTranslatorConfig, from_dict, to_dict
from fgdm.runtime import Terminated, signals_held
from fgdm.training.ranks import is_worker

# Keys a resumed run may change: how it runs, not what it learns. The ASGCN kernel and its frame chunks compute the
# same equations; testing.length and the back-translator's decoding settings only shape sampling after training.
# training.min_lr, lowered, lets a run its plateau schedule ended go on; a precision of another weight type is
# refused (WEIGHT_TYPE), and a cosine schedule's change of horizon is warned of (claim).
RESUMABLE = {
    "training.max_steps", "training.max_minutes", "training.val_every", "training.val_batches", "training.log_every",
    "training.devices", "training.num_nodes", "training.accelerator", "training.strategy", "training.precision",
    "training.num_workers", "training.tf32", "training.compile", "training.output_dir", "training.min_lr",
    "data.path", "data.vocab", "testing.batch_size", "testing.length", "testing.fixed_length", "model.focal.kernel",
    "model.focal.chunk_frames", "model.beam", "model.length_penalty", "model.max_output_length",
}  # fmt: skip
WEIGHT_TYPE = {"bf16-true": "bfloat16", "64-true": "float64"}  # the weights' type by training.precision; else float32
LOCK = ".lock"


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        out |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
    return out


def changed_settings(stored: dict, current: dict, schema: type) -> list[str]:
    """The settings (other than :data:`RESUMABLE`) in which ``current`` differs from a checkpoint's ``stored``."""
    old, new = _flat(to_dict(from_dict(stored, schema))), _flat(current)
    return [f"{k} is {old.get(k)!r} in the checkpoint and {new.get(k)!r} now" for k in sorted(set(old) | set(new))
            if k not in RESUMABLE and old.get(k) != new.get(k)]  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _identity(pid: int) -> list[str]:
    """Who process ``pid`` is, as a lock records it: this machine's name, its boot's id and the process's start
    (in clock ticks since the boot); the last two empty where the system does not say (no /proc)."""
    who = [socket.gethostname()]
    for read in (lambda: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
                 lambda: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]):  # fmt: skip
        try:
            who.append(read())
        except (OSError, IndexError):
            who.append("")
    return who


@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """Holds ``out/.lock`` (this process's id, and who it is: :func:`_identity`) while the block runs.

    A lock is another training's while its process runs: the same id, started at the same time (a process id is
    reused, a container's first one always). One written on another machine (a cluster job requeued elsewhere,
    the directory shared) cannot be checked from here; it is taken as left by a training that ended."""
    path = out / LOCK
    if path.exists():
        try:
            pid, *who = path.read_text().splitlines()
            pid = int(pid)
        except (ValueError, OSError):
            pid, who = -1, []
        here = _identity(pid) if pid > 0 else ["", "", ""]
        if pid > 0 and len(who) == 3 and who[0] != here[0]:
            warnings.warn(f"{path}: removing a lock of process {pid} on {who[0]}, which cannot be checked from "
                          f"{here[0]}: taken as left by a training that ended there (if it runs, stop one of "
                          "them)", stacklevel=3)  # fmt: skip
        elif pid > 0 and pid != os.getpid() and _alive(pid) and (len(who) != 3 or who == here or not here[2]):
            raise ValueError(f"{out}: another training (process {pid}) is running in this directory; wait for it "
                             f"or choose another training.output_dir")  # fmt: skip
        else:
            warnings.warn(f"{path}: removing a stale lock left by process {pid}, which is no longer running",
                          stacklevel=3)  # fmt: skip
        path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise ValueError(f"{out}: another training started in this directory just now") from None
    except FileNotFoundError:  # made by claim, removed by another training that failed before writing anything
        raise ValueError(f"{out}: another training removed this new directory just now; run again") from None
    mine = "\n".join([str(os.getpid()), *_identity(os.getpid())]) + "\n"
    with os.fdopen(fd, "w") as f:
        f.write(mine)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text() == mine:  # (not another's, taken over meanwhile)
                path.unlink()


@contextlib.contextmanager
def claim(output_dir: str, config: dict, schema: type, resume: bool, overwrite: bool) -> Iterator[dict | None]:
    """Checks and locks a run directory for training; yields the last checkpoint's hyper-parameters when
    resuming (its vocabularies are part of the model), else None."""
    out = Path(output_dir)
    last = out / "checkpoints" / "last.ckpt"
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite starts one afresh: choose one")
    if out.exists() and not out.is_dir():
        raise ValueError(f"training.output_dir {out} is a file, not a directory")
    if out.is_dir() and not is_worker():
        with lock(out):  # what a killed training left, settled before anything is read
            _recover(out)
            if resume:
                _last_from_best(out)
    stored = None
    if resume:
        if not last.is_file():
            raise FileNotFoundError(f"{last}: nothing to resume (no last checkpoint in training.output_dir)")
        ckpt = read_checkpoint(last)
        stored = ckpt["hyper_parameters"]
        kinds = ["a generator", "a back-translator"]  # (a back-translator stores its text vocabulary too)
        was, now = int("text_vocab" in stored), int(schema is BackTranslatorConfig)
        if was != now:
            raise ValueError(f"{last}: {kinds[was]}'s checkpoint, and this command trains {kinds[now]}: give it "
                             "another training.output_dir")  # fmt: skip
        changed = changed_settings(stored["config"], config, schema)
        if changed:
            raise ValueError(f"{last}: a resumed run keeps the model and optimiser it was trained with, but "
                             f"{'; '.join(changed)}. Drop the change, or start a new run (--overwrite or "
                             f"another training.output_dir)")  # fmt: skip
        was, now = (c.get("training", {}).get("precision", "32-true") for c in (stored["config"], config))
        if WEIGHT_TYPE.get(was, "float32") != WEIGHT_TYPE.get(now, "float32"):  # mixed ones keep float32 weights
            raise ValueError(f"{last}: training.precision {was} → {now} would turn the run's weights from "
                             f"{WEIGHT_TYPE.get(was, 'float32')} to {WEIGHT_TYPE.get(now, 'float32')} for good; "
                             "resume at a precision of the same weights (32-true, bf16-mixed and 16-mixed keep "
                             "float32 ones)")  # fmt: skip
        was, now = (c.get("data", {}).get("path") for c in (stored["config"], config))
        if was != now:  # allowed (data moved), but never unsaid: config.json will name the new data only
            warnings.warn(f"{last} was trained on {was or 'the embedded synthetic language'} and goes on with "
                          f"{now or 'the embedded synthetic language'} (data.path)", stacklevel=3)  # fmt: skip
        step, wanted = int(ckpt.get("global_step", 0)), config["training"]["max_steps"]
        if step >= wanted:
            raise ValueError(f"{last} is at step {step} already: training.max_steps {wanted} leaves nothing to train; "
                             "raise it to go on")  # fmt: skip
        t, old = config["training"], stored["config"].get("training", {})
        rates = [g["lr"] for state in ckpt.get("optimizer_states", []) for g in state.get("param_groups", [])]
        if t["schedule"] == "plateau" and step >= t["warmup_steps"] and rates and max(rates) < t["min_lr"]:
            raise ValueError(f"{last}: its learning rate fell to {max(rates):.3g}, below training.min_lr "
                             f"{t['min_lr']:g}, which ended the run; lower min_lr to go on")  # fmt: skip
        moved = [f"{k} {old.get(k)} → {t[k]}" for k in ("max_steps", "min_lr") if old.get(k, t[k]) != t[k]]
        if t["schedule"] == "cosine" and moved:  # allowed (a longer run), but said: the rate jumps at the resume
            warnings.warn(f"{last}: the cosine schedule runs from lr to min_lr over max_steps, so "
                          f"{' and '.join(moved)} moves step {step}'s rate to another curve: the run follows "
                          "neither", stacklevel=3)  # fmt: skip
        spent = ckpt.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {}).get("train", 0.0) / 60
        if (budget := config["training"].get("max_minutes")) is not None and spent >= budget:
            raise ValueError(f"{last} has trained {spent:.2f} minutes already: training.max_minutes {budget:g} leaves "
                             "nothing to train; raise it (or set it to null) to go on")  # fmt: skip
    if is_worker():
        yield stored
        return
    missing = [p for p in (out, *out.parents) if not p.exists()]  # made here: out, then its new parents
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield from _claimed(out, stored, resume, overwrite)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM where training's own stop does not apply: starting up
        if not getattr(stop, "reported", False):  # (training's stop says where its checkpoint is itself)
            kind = f"terminated ({stop.signal_name})" if isinstance(stop, Terminated) else "interrupted"
            kept = (f"{last} holds the run's last saved state (--resume continues)" if last.is_file() else
                    "nothing was kept: run the command again")  # fmt: skip
            print(f"fgdm: {kind} before training's end; {kept}", file=sys.stderr)
            stop.reported = True
        raise
    finally:
        for made in missing:  # a run that failed before writing anything (bad data) leaves no empty directories
            with contextlib.suppress(OSError):
                made.rmdir()


def _claimed(out: Path, stored: dict | None, resume: bool, overwrite: bool) -> Iterator[dict | None]:
    with lock(out):
        _recover(out)  # in case another training came and went since claim's look
        checkpoints = sorted((out / "checkpoints").glob("*.ckpt")) if (out / "checkpoints").is_dir() else []
        if checkpoints and not (resume or overwrite):
            names = ", ".join(p.name for p in checkpoints)
            last, best = out / "checkpoints" / "last.ckpt", out / "checkpoints" / "best.ckpt"
            how = "--resume continues that run"
            if not last.is_file() and not _best_is_latest(best):  # a later validation's best.ckpt is no run's end
                how = "its last.ckpt is gone, so --resume cannot continue it"
                how += " (a copy of best.ckpt named last.ckpt goes on from that validation)" if best.is_file() else ""
            raise ValueError(f"{out} holds checkpoints ({names}): {how}, --overwrite starts afresh there, or choose "
                             "another training.output_dir")  # fmt: skip
        if not (resume or overwrite) and (theirs := [name for name in RUN_FILES if (out / name).exists()]):
            raise ValueError(f"{out} holds {', '.join(theirs)} and no checkpoint (an exported model's? a run killed "
                             "before its first?): a new run would replace them; --overwrite does, or choose another "
                             "training.output_dir")  # fmt: skip
        # --overwrite: the old run (checkpoints, config, vocabulary, logs) steps aside, and goes once the new run
        # has written a checkpoint of its own (drop_replaced); a run that fails before (bad data, no GPU) puts it
        # back whole
        olds = [*checkpoints, *(out / name for name in RUN_FILES if (out / name).exists())] if overwrite else []
        aside = [(path, path.with_name(path.name + REPLACED)) for path in olds]
        # a fresh run that fails before its first checkpoint (bad data, no GPU) removes what it began there
        began = [] if resume else [out / name for name in (*RUN_FILES, "checkpoints") if not (out / name).exists()]
        started = False
        try:
            if aside:  # a kill between the moves leaves this: the run is put back whole, not half dropped
                (out / MOVING).touch()
            for path, moved in aside:
                path.replace(moved)
            (out / MOVING).unlink(missing_ok=True)
            started = True
            yield stored
        finally:
            with signals_held():  # a second signal must not cut the old run's return in two
                wrote = started and any((out / "checkpoints").glob("*.ckpt"))
                for path, moved in reversed(aside):  # its checkpoints last: _recover reads them as the run's
                    if moved.exists() and not wrote:
                        _remove(path)  # what the failed run began
                        moved.replace(path)
                    elif moved.exists():
                        _remove(moved)
                for path in began if not wrote else []:
                    _remove(path)


RUN_FILES = ("config.json", "gloss_vocab.txt", "logs", "tensorboard")  # beside checkpoints/ in a run directory
REPLACED = ".replaced"  # an old run's files while an --overwrite has not yet written its first checkpoint
MOVING = ".setting-aside"  # present while an --overwrite moves the old run's files aside


def _set_aside(out: Path) -> list[Path]:
    """The old run's files an --overwrite set aside (those claim moves, no other file that ends so)."""
    return [*(p for name in RUN_FILES if (p := out / (name + REPLACED)).exists()),
            *(out / "checkpoints").glob("*.ckpt" + REPLACED)]  # fmt: skip


def drop_replaced(out: Path) -> None:
    """An old run that an --overwrite set aside, removed: the new run has written a checkpoint of its own."""
    for moved in _set_aside(out):
        _remove(moved)


def _recover(out: Path) -> None:
    """What a killed training (SIGKILL: no ``finally`` ran) left in ``out``, settled: an --overwrite killed before
    its first checkpoint gets the run before it back in place of what it began (after its first checkpoint, the
    old run was removed then, or is now); a checkpoint's temporary, half written, is removed."""
    for tmp in (out / "checkpoints").glob(".*.tmp"):  # the lock is held: no training writes here now
        tmp.unlink(missing_ok=True)
    stale, moving = _set_aside(out), (out / MOVING).exists()
    (out / MOVING).unlink(missing_ok=True)
    if not stale:
        return
    if not moving and any((out / "checkpoints").glob("*.ckpt")):  # killed between its first checkpoint and
        drop_replaced(out)  # drop_replaced (a .ckpt during the moves is the old run's: put back below)
        return
    for moved in stale:
        path = moved.with_name(moved.name.removesuffix(REPLACED))
        _remove(path)
        moved.replace(path)
    warnings.warn(f"{out}: an --overwrite there was killed before its first checkpoint; the run before it is "
                  "back in place", stacklevel=4)  # fmt: skip


def _last_from_best(out: Path) -> None:
    """A training killed between its first validation's two checkpoints left best.ckpt alone: the run's whole state
    at that step, which last.ckpt would have held too. It becomes last.ckpt, so that --resume continues (it said
    there was nothing to resume, while a fresh start was refused for the checkpoint). A later validation's best.ckpt
    (it names a last.ckpt written before it) is older than the run's lost last state, and is left as it is."""
    best, last = out / "checkpoints" / "best.ckpt", out / "checkpoints" / "last.ckpt"
    if last.exists() or not _best_is_latest(best):
        return
    tmp = last.with_name(f".{last.name}.{os.getpid()}.tmp")
    with best.open("rb") as source, tmp.open("wb") as copy:
        shutil.copyfileobj(source, copy)
        copy.flush()
        os.fsync(copy.fileno())
    os.replace(tmp, last)
    warnings.warn(f"{out}: last.ckpt was missing (a training killed while writing it?); best.ckpt, the run's "
                  "latest state, is copied to it", stacklevel=5)  # fmt: skip


def _best_is_latest(best: Path) -> bool:
    """Whether ``best`` is a first validation's best.ckpt, written before any last.ckpt: the run's latest state."""
    if not best.is_file():
        return False
    kept = read_checkpoint(best).get("callbacks", {})
    return not any(state.get("last_model_path") for key, state in kept.items() if key.startswith("ModelCheckpoint"))


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def with_absolute_paths(cfg: Any) -> Any:
    """``cfg`` with ``data.path`` and ``data.vocab`` made absolute: the checkpoint's config is read later by
    generate, evaluate and export, from other directories, where a relative path would find nothing or other data."""
    import dataclasses

    changes = {k: str(Path(v).resolve()) for k in ("path", "vocab") if (v := getattr(cfg.data, k, None))}
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **changes)) if changes else cfg
