"""Where a training's checkpoints go and what they keep: written whole or not at all (:class:`AtomicCheckpointIO`),
and the best one's score kept across a moved run directory (:class:`MovableCheckpoint`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from fgdm.training.rundir import drop_replaced


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file, syncs it, then renames it over the target.

    A crash while saving leaves the previous checkpoint intact, never a truncated one. ``run_dir``: the run
    directory :func:`fgdm.training.rundir.claim` holds, whose old run an --overwrite set aside goes once a
    checkpoint is written.
    """

    def __init__(self, run_dir: Path | None = None) -> None:
        super().__init__()
        self.run_dir = run_dir

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        if self.run_dir is not None:  # the new run has a checkpoint: an old one an --overwrite set aside goes
            drop_replaced(self.run_dir)


class MovableCheckpoint(ModelCheckpoint):
    """Lightning's checkpointing, whose best score survives a run directory moved or copied (off a cluster,
    say): Lightning restores the score only where the stored directory is the current one, and otherwise lets the
    next validation, however bad, become ``best.ckpt``. The stored paths are taken over by file name. Its state
    is stored under ModelCheckpoint's key, so runs checkpointed before it resume with their scores. It also keeps
    the last validation's score (Lightning's ``current_score`` is the last one that was best), so a resumed run
    that validates no more still reports it."""

    last_score: float | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        if value is not None and not trainer.sanity_checking:
            self.last_score = float(value)
        super().on_validation_end(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Nothing: :func:`fgdm.training.loop.fit` writes last.ckpt after the fit. Lightning's save here wrote one at
        step 0 when training stopped before its first step, and it replaced an --overwrite's old run."""

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "last_score": self.last_score}

    @property
    def state_key(self) -> str:
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        stored = state_dict.get("dirpath")
        if stored is not None and self.dirpath is not None and stored != self.dirpath:

            def moved(path: str) -> str:
                return os.path.join(self.dirpath, os.path.basename(path)) if path else path

            paths = ("best_model_path", "kth_best_model_path", "last_model_path")
            kept = {moved(k): v for k, v in state_dict.get("best_k_models", {}).items()}
            state_dict = {**state_dict, "dirpath": self.dirpath, **{k: moved(state_dict.get(k, "")) for k in paths},
                          "best_k_models": kept}  # fmt: skip
        super().load_state_dict(state_dict)
        last = state_dict.get("last_score", state_dict.get("current_score"))  # (older runs kept the best alone)
        self.last_score = float(last) if last is not None else None
