"""Training on PyTorch Lightning: data module, Lightning module, checkpoints, the ``train`` entry point.

Distribution, mixed precision, gradient clipping, progress bars and logging are Lightning's; this
module only wires FGDM into it. Validation samples the dev set with ground-truth lengths and logs
DTW-MJE (``dev/dtw``), which drives the plateau scheduler, early stopping at a minimum learning
rate, and the "best" checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric

from fgdm.config import Config, TrainingConfig, from_dict, to_dict
from fgdm.data.corpus import Corpus, Subsampled
from fgdm.data.dataset import Batch, BucketBatchSampler, Collate, PoseDataset
from fgdm.data.sources import open_corpus
from fgdm.data.synth.corpus import SynthCorpus
from fgdm.data.vocab import Vocabulary
from fgdm.evaluation.dtw import dtw_mje
from fgdm.model import FGDM, build_model


def build_corpus(cfg: Config, split: str) -> Corpus:
    """The corpus of one split: ``data.path`` (PT files or a synth manifest), else the embedded synthetic data."""
    d = cfg.data
    if d.path is not None:
        return open_corpus(d.path, split, skip_frames=d.skip_frames)
    size = {"train": d.synth_train, "dev": d.synth_dev, "test": d.synth_test}[split]
    corpus: Corpus = SynthCorpus(size, split, seed=d.synth_seed)
    return Subsampled(corpus, d.skip_frames) if d.skip_frames > 1 else corpus


def build_vocab(cfg: Config, train: Corpus) -> Vocabulary:
    if cfg.data.vocab is not None:
        return Vocabulary.from_file(cfg.data.vocab)
    return Vocabulary.from_corpus(train.gloss_sequences())


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file, syncs it, then renames it over the target.

    A crash while saving leaves the previous checkpoint intact, never a truncated one.
    """

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


class FGDMDataModule(L.LightningDataModule):
    """Train/dev/test datasets with length-bucketed, rank-aware batching."""

    def __init__(self, cfg: Config, vocab: Vocabulary | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.corpora = {"train": build_corpus(cfg, "train")}
        self.vocab = vocab or build_vocab(cfg, self.corpora["train"])
        self.datasets: dict[str, PoseDataset] = {}

    def dataset(self, split: str) -> PoseDataset:
        if split not in self.datasets:
            corpus = self.corpora.get(split) or build_corpus(self.cfg, split)
            self.corpora[split] = corpus
            self.datasets[split] = PoseDataset(corpus, self.vocab)
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        ds = self.dataset(split)
        trainer = self._trainer if hasattr(self, "_trainer") else None
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = BucketBatchSampler(
            ds.frame_counts(), batch_size, shuffle=shuffle, seed=self.cfg.training.seed, num_replicas=world, rank=rank
        )
        return DataLoader(
            ds,
            batch_sampler=sampler,
            collate_fn=Collate(self.vocab.pad_index),
            num_workers=self.cfg.training.num_workers,
            persistent_workers=self.cfg.training.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.cfg.training.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", False, self.cfg.testing.batch_size)


class PlateauModule(L.LightningModule):
    """Adam with a plateau scheduler stepped on a validation metric, stopping at a minimum learning rate.

    The scheduler is stepped by hand after each validation; its state travels in the checkpoint.
    Subclasses set ``self.training_cfg`` and call :meth:`after_validation` with the monitored value.
    """

    training_cfg: TrainingConfig

    def __init__(self) -> None:
        super().__init__()
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._pending_plateau_state: dict | None = None

    def after_validation(self, value: float) -> None:
        if self.trainer.sanity_checking or self.plateau is None:
            return
        self.plateau.step(value)
        lr = self.optimizers().param_groups[0]["lr"]
        self.log("lr", lr)
        if lr < self.training_cfg.min_lr:
            self.trainer.should_stop = True

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        warmup = self.training_cfg.warmup_steps
        if warmup and self.trainer.global_step < warmup:  # linear warm-up; the plateau scheduler owns the rate after
            for group in optimizer.param_groups:
                group["lr"] = self.training_cfg.lr * (self.trainer.global_step + 1) / warmup
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # Nothing reads the gradients again before the next backward, but Lightning only clears them
        # after the next forward: freed here, they stay out of that forward's peak memory (paper size:
        # −160 MB of 1.55 GB on the CPU). The next backward starts from None as it would from zero.
        optimizer.zero_grad(set_to_none=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        t = self.training_cfg
        opt = torch.optim.Adam(self.parameters(), lr=t.lr)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=t.scheduler_factor, patience=t.scheduler_patience
        )
        if self._pending_plateau_state is not None:
            self.plateau.load_state_dict(self._pending_plateau_state)
        return opt

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plateau is not None:
            checkpoint["plateau"] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._pending_plateau_state = checkpoint.get("plateau")
        if self.plateau is not None and self._pending_plateau_state is not None:
            self.plateau.load_state_dict(self._pending_plateau_state)


class LitFGDM(PlateauModule):
    """FGDM in Lightning. The checkpoint carries the resolved config and the gloss vocabulary."""

    def __init__(self, config: dict, vocab: list[str]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = from_dict(config)
        self.training_cfg = self.cfg.training
        self.vocab = Vocabulary(vocab)
        self.model: FGDM = build_model(self.cfg, len(self.vocab))
        decay = self.cfg.training.ema_decay
        self.ema = (
            AveragedModel(self.model.denoiser, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
            if decay
            else None
        )
        self.val_dtw = MeanMetric()

    # -- training -------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        terms = self.model.loss(batch.pose, batch.frame_mask, batch.gloss, batch.gloss_mask)
        B = len(batch)
        self.log("train/loss", terms.total, prog_bar=True, batch_size=B)
        for name in ("joint", "bone", "scg", "length"):
            self.log(f"train/{name}", getattr(terms, name), batch_size=B)
        return terms.total

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model.denoiser)

    def sampling_denoiser(self) -> torch.nn.Module:
        """The weights used for sampling: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.model.denoiser

    def sampling_model(self) -> LoadedModel:
        """A copy of the generator for sampling now (EMA weights when enabled, no SCG branch, eval mode),
        as :func:`load_for_sampling` would rebuild it from a checkpoint written at this step."""
        model = build_model(self.cfg, len(self.vocab), with_scg=False)
        model.denoiser.load_state_dict(self.sampling_denoiser().state_dict())
        model.normalizer.load_state_dict(self.model.normalizer.state_dict())
        model.to(self.device).eval()
        return LoadedModel(model, self.cfg, self.vocab, int(self.global_step))

    # -- validation -----------------------------------------------------------------------
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        g = torch.Generator(device=batch.pose.device).manual_seed(self.cfg.testing.seed + batch_idx)
        terms = self.model.loss(batch.pose, batch.frame_mask, batch.gloss, batch.gloss_mask, generator=g)
        B = len(batch)
        self.log("dev/loss", terms.total, batch_size=B, sync_dist=True)
        for name in ("joint", "bone", "scg"):
            self.log(f"dev/{name}", getattr(terms, name), batch_size=B, sync_dist=True)
        frames = batch.frame_mask.sum(1)
        x0, _ = self.model.generate(
            batch.gloss, batch.gloss_mask, frames, generator=g, denoiser=self.sampling_denoiser()
        )
        hyp, ref = x0.float().cpu().numpy(), batch.pose.float().cpu().numpy()
        for b, n in enumerate(frames.tolist()):
            self.val_dtw.update(dtw_mje(hyp[b, :n], ref[b, :n]))

    def on_validation_epoch_end(self) -> None:
        dtw = self.val_dtw.compute()
        self.val_dtw.reset()
        self.log("dev/dtw", dtw, prog_bar=True, sync_dist=False)
        self.after_validation(float(dtw))


class Throughput(Callback):
    """Counts training sequences and time, for a sequences-per-second figure."""

    def __init__(self) -> None:
        self.sequences, self.seconds, self._t0 = 0, 0.0, 0.0

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Batch, idx: int) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch: Batch, idx: int):
        self.seconds += time.perf_counter() - self._t0
        self.sequences += len(batch)


@dataclass
class TrainResult:
    output_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    dev_dtw: float | None  # the monitored dev metric (dev/dtw for FGDM, dev/wer for the back-translator)
    sequences_per_second: float  # of this process
    is_global_zero: bool
    monitor: str = "dev/dtw"


def train(cfg: Config, resume: bool = False, progress: bool = True, callbacks: list[Callback] = ()) -> TrainResult:
    """Trains FGDM as configured; with ``resume``, continues from ``output_dir/checkpoints/last.ckpt``.

    ``callbacks``: extra Lightning callbacks (e.g. the learning-curve benchmark's evaluations).
    """
    data = FGDMDataModule(cfg, resumed_vocab(cfg.training, resume))
    module = LitFGDM(to_dict(cfg), data.vocab.itos)
    if cfg.diffusion.standardise and not resume:  # on resume μ and σ come back with the weights
        module.model.normalizer.fit(pose_sample(data.corpora["train"]))
    return fit(module, data, cfg, monitor="dev/dtw", resume=resume, progress=progress, callbacks=callbacks)


def pose_sample(corpus: Corpus, limit: int = 1000):
    """Up to ``limit`` training sequences spread evenly over the corpus: the poses statistics are taken from."""
    n = len(corpus)
    for i in np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int)) if n else []:
        yield corpus[int(i)].pose


def resumed_vocab(t: TrainingConfig, resume: bool) -> Vocabulary | None:
    """On resume the gloss vocabulary is part of the model: take it from the last checkpoint."""
    last = Path(t.output_dir) / "checkpoints" / "last.ckpt"
    if not resume:
        return None
    if not last.is_file():
        raise FileNotFoundError(f"{last}: nothing to resume (no last checkpoint in training.output_dir)")
    return Vocabulary(read_checkpoint(last)["hyper_parameters"]["vocab"])


def fit(
    module: L.LightningModule,
    data: FGDMDataModule,
    cfg: Any,
    monitor: str,
    resume: bool,
    progress: bool,
    callbacks: list[Callback] = (),
):
    """Runs Lightning on a module: CSV (and TensorBoard) logs, last/best checkpoints, atomic saves."""
    t: TrainingConfig = cfg.training
    out = Path(t.output_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    L.seed_everything(t.seed, workers=True, verbose=False)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    data.vocab.save(out / "gloss_vocab.txt")
    loggers: list = [CSVLogger(str(out), name="logs")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(out), name="tensorboard"))
    except ImportError:
        pass
    best = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min", save_top_k=1, save_last=True,
        auto_insert_metric_name=False, enable_version_counter=False,
    )  # fmt: skip
    throughput = Throughput()
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        max_steps=t.max_steps,
        max_epochs=-1,
        val_check_interval=t.val_every,
        check_val_every_n_epoch=None,
        limit_val_batches=t.val_batches if t.val_batches is not None else 1.0,
        num_sanity_val_steps=0,
        gradient_clip_val=t.clip_grad_norm,
        log_every_n_steps=t.log_every,
        logger=loggers,
        callbacks=[best, throughput, *callbacks],
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # BucketBatchSampler shards by rank itself
        default_root_dir=str(out),
    )
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume else None)
    trainer.save_checkpoint(last)  # the final state, also when training ended between validations
    value = trainer.callback_metrics.get(monitor)
    return TrainResult(
        output_dir=out,
        last_checkpoint=last,
        best_checkpoint=Path(best.best_model_path) if best.best_model_path else None,
        steps=trainer.global_step,
        dev_dtw=float(value) if value is not None else None,
        sequences_per_second=throughput.sequences / max(throughput.seconds, 1e-9),
        is_global_zero=trainer.is_global_zero,
        monitor=monitor,
    )


# -- loading for generation -------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint for sampling (no SCG branch), with its config and vocabulary."""

    model: FGDM
    cfg: Config
    vocab: Vocabulary
    step: int


def read_checkpoint(path: Path | str, what: str = "checkpoint") -> dict[str, Any]:
    """A Lightning checkpoint written by fgdm, on the CPU; clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "hyper_parameters" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not an fgdm {what} (no stored config and weights)")
    return ckpt


def load_for_sampling(path: Path | str, device: str | torch.device = "cpu", use_ema: bool = True) -> LoadedModel:
    """Rebuilds the generator from a checkpoint's stored config; EMA weights when present and ``use_ema``."""
    ckpt = read_checkpoint(path)
    try:
        hp = ckpt["hyper_parameters"]
        cfg, vocab = from_dict(hp["config"]), Vocabulary(hp["vocab"])
    except KeyError as err:
        raise ValueError(f"{path}: not an fgdm checkpoint (missing {err})") from None
    model = build_model(cfg, len(vocab), with_scg=False)
    state = ckpt["state_dict"]
    prefix = "ema.module." if use_ema and any(k.startswith("ema.module.") for k in state) else "model.denoiser."
    denoiser_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    model.denoiser.load_state_dict(denoiser_state)
    normalizer_state = {k[len("model.normalizer.") :]: v for k, v in state.items() if k.startswith("model.normalizer.")}
    if normalizer_state:
        model.normalizer.load_state_dict(normalizer_state)
    elif cfg.diffusion.standardise:
        raise ValueError(f"{path}: diffusion.standardise is on but the checkpoint has no pose statistics")
    model.eval().to(device)
    return LoadedModel(model, cfg, vocab, int(ckpt.get("global_step", 0)))


def generate_poses(
    loaded: LoadedModel,
    glosses: list[list[int]],
    frames: list[int] | None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
    eta: float | None = None,
) -> list[np.ndarray]:
    """Samples one (S_i, J, 3) sequence per gloss-id list; ``frames=None`` uses the length head.

    Batches in the given order, so results depend only on the seed and the inputs.
    """
    from tqdm.auto import tqdm

    model = loaded.model
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    out: list[np.ndarray] = []
    pad = loaded.vocab.pad_index
    for start in tqdm(range(0, len(glosses), batch_size), desc="generate", disable=not progress):
        chunk = glosses[start : start + batch_size]
        Lmax = max(len(g) for g in chunk)
        gloss = torch.full((len(chunk), Lmax), pad, dtype=torch.long, device=device)
        for b, g in enumerate(chunk):
            gloss[b, : len(g)] = torch.tensor(g, dtype=torch.long)
        gloss_mask = gloss != pad
        n = (
            model.predict_frames(gloss, gloss_mask)
            if frames is None
            else torch.tensor(frames[start : start + len(chunk)])
        )
        x0, _ = model.generate(gloss, gloss_mask, n.to(device), steps=steps, eta=eta, generator=generator)
        x0 = x0.float().cpu().numpy()
        out += [x0[b, : int(n[b])] for b in range(len(chunk))]
    return out
