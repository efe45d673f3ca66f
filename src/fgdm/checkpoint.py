"""Reading the checkpoints fgdm writes (Lightning's format: config, vocabularies and weights in one file)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

# what a file that is no checkpoint is, by its suffix
_KINDS = {".yaml": "a config", ".yml": "a config", ".json": "a JSON file", ".txt": "a text file",
          ".pose": "a pose file", ".npy": "a NumPy array", ".skels": "a PT data file", ".gif": "an animation",
          ".mp4": "an animation"}  # fmt: skip


def read_checkpoint(path: Path | str, what: str = "checkpoint") -> dict[str, Any]:
    """A checkpoint written by fgdm, on the CPU; clear errors for a missing or foreign file.

    Read by PyTorch's weights-only unpickler, which builds tensors and plain containers and nothing else: fgdm's
    checkpoints hold no other objects, a foreign pickle runs no code, and a damaged byte cannot make it grow its
    memo to gigabytes, as Python's full unpickler does for a corrupted index (one damaged checkpoint in a thousand,
    by the reader fuzz test)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: a directory, not a {what}{run_checkpoints(path)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        with warnings.catch_warnings():  # torch's advice to call torch.jit.load: said below as what the file is
            warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated, corrupt or foreign file: pickle, zip and torch all raise their own
        kind = _KINDS.get(path.suffix.lower()) or ("a TorchScript archive" if "TorchScript" in str(err) else None)
        if kind is not None:
            raise ValueError(f"{path}: {kind}, not a {what} (a training checkpoint is a .ckpt file)") from None
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: {_problem(err)})") from err
    if not isinstance(ckpt, dict) or "hyper_parameters" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not an fgdm {what} (no stored config and weights)")
    return ckpt


def run_checkpoints(directory: Path) -> str:
    """Advice for a training run's directory given where a checkpoint is wanted: its checkpoints, by name."""
    found = [f for f in ("best.ckpt", "last.ckpt") if (directory / "checkpoints" / f).is_file()]
    named = " or ".join(str(directory / "checkpoints" / f) for f in found)
    return f" (a training run's: give {named})" if found else ""


def _problem(err: Exception) -> str:
    """The reader's error on one line. The weights-only unpickler wraps what it found in a page of advice (to load
    the file with the full unpickler, which fgdm never does): only what it found, kept as the error's context."""
    found = str(err)
    if "Weights only load failed" in found:
        inner = err.__context__ if err.__context__ is not None else err.__cause__
        found = (
            str(inner).split(". Please use")[0].rstrip(". ")
            if inner is not None
            else "not tensors and plain containers"
        )
        found += "; fgdm's checkpoints hold tensors and plain containers only" if "GLOBAL" in found else ""
    found = re.sub(r"\s*In PyTorch 2\.6, we changed .*?trusted source\.", "", found, flags=re.S)  # legacy .tar's
    return " ".join(found.split())


def substate(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of a state dict under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def state_mismatch(err: RuntimeError) -> str:
    """The first of the problems in PyTorch's ``load_state_dict`` error, and how many there are in all."""
    details = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
    if not details:
        return str(err).strip()
    more = f"; {len(details) - 1} more" if len(details) > 1 else ""
    return details[0] + more
