"""Training FGDM: the Lightning module, and :func:`train`, the ``fgdm train`` entry point.

Validation samples the dev set with ground-truth lengths and logs DTW-MJE (``dev/dtw``), which picks
the "best" checkpoint and, with ``training.schedule: plateau``, drives the plateau scheduler and early
stopping at a minimum learning rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torchmetrics import MeanMetric

from fgdm.config import Config, from_dict, to_dict
from fgdm.data.corpus import Corpus
from fgdm.data.dataset import Batch, PoseDataset
from fgdm.data.stats import warn_unconventional
from fgdm.data.vocab import UnknownTokenWarning, Vocabulary
from fgdm.metrics.dtw import dtw_mje
from fgdm.model import FGDM, build_model
from fgdm.model.scg import SCGBranch
from fgdm.sampling import LoadedModel, build_for_sampling
from fgdm.training.compiling import compiled_loss
from fgdm.training.data import PoseDataModule
from fgdm.training.ema import EMA
from fgdm.training.loop import ScheduledModule, TrainResult, fit, seed_everything
from fgdm.training.ranks import dev_batch, quiet_workers, require_multinode_launch
from fgdm.training.rundir import claim, with_absolute_paths


class LitFGDM(ScheduledModule):
    """FGDM in Lightning. The checkpoint carries the resolved config and the gloss vocabulary."""

    def __init__(self, config: dict, vocab: list[str]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = from_dict(config)
        self.training_cfg = self.cfg.training
        self.vocab = Vocabulary(vocab)
        self.model: FGDM = build_model(self.cfg, len(self.vocab))
        decay = self.cfg.training.ema_decay
        self.ema = EMA(self.model.denoiser, decay) if decay else None
        self.val_dtw = MeanMetric()  # per sequence
        self.val_terms = torch.nn.ModuleDict({name: MeanMetric() for name in ("loss", "joint", "bone", "scg")})
        self._compiled_loss = None  # training.compile: made on the first training step

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_compiled_loss": None}  # compiled code does not travel

    # -- training -------------------------------------------------------------------------
    def training_loss(self):
        """What a training step calls with a batch and its :meth:`FGDM.draws`: :meth:`FGDM.loss_of_draws`, through
        ``torch.compile`` when ``training.compile`` asks (:func:`~fgdm.training.compiling.compiled_loss`, made
        once, with dynamic shapes; the draws and validation stay eager, so a compiled run draws the same numbers as
        an eager one)."""
        mode = self.training_cfg.compile
        if not mode:
            return self.model.loss_of_draws
        if self._compiled_loss is None:
            self._compiled_loss = compiled_loss(self.model.loss_of_draws, mode)
        return self._compiled_loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        draws = self.model.draws(batch.pose, batch.gloss, batch.gloss_mask, unk_rate=self.training_cfg.unk_rate)
        terms = self.training_loss()(batch.pose, batch.frame_mask, batch.gloss, batch.gloss_mask, *draws, batch.counts)
        self.check_finite(terms.total)
        self.log_training_terms(
            len(batch), loss=terms.total, joint=terms.joint, bone=terms.bone, scg=terms.scg, length=terms.length
        )
        return terms.total

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        if self.ema is not None:
            self.ema.update_parameters(self.model.denoiser)

    def sampling_denoiser(self) -> torch.nn.Module:
        """The weights used for sampling: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.model.denoiser

    def sampling_model(self) -> LoadedModel:
        """A copy of the generator for sampling now (EMA weights when enabled, no SCG branch, eval mode),
        as :func:`load_for_sampling` would rebuild it from a checkpoint written at this step, and like it
        without drawing from the random stream (:func:`fgdm.sampling.build_for_sampling`)."""
        model = build_for_sampling(self.cfg, len(self.vocab))
        model.denoiser.load_state_dict(self.sampling_denoiser().state_dict())
        model.normalizer.load_state_dict(self.model.normalizer.state_dict())
        model.to(self.device).eval()
        return LoadedModel(model, self.cfg, self.vocab, int(self.global_step))

    # -- validation -----------------------------------------------------------------------
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        index = dev_batch(self._trainer, batch_idx)  # its index in one process's order; None: a rank's filler
        if index is None:
            return
        g = torch.Generator(device=batch.pose.device).manual_seed(self.cfg.testing.seed + index)
        terms = self.model.loss(
            batch.pose, batch.frame_mask, batch.gloss, batch.gloss_mask, generator=g, counts=batch.counts
        )
        for name, metric in self.val_terms.items():
            metric.update(terms.total if name == "loss" else getattr(terms, name), len(batch))
        frames = batch.frame_mask.sum(1)
        x0, _ = self.model.generate(
            batch.gloss, batch.gloss_mask, frames, generator=g, denoiser=self.sampling_denoiser()
        )
        hyp, ref = x0.float().cpu().numpy(), batch.pose.float().cpu().numpy()
        for b, n in enumerate(frames.tolist()):
            self.val_dtw.update(dtw_mje(hyp[b, :n], ref[b, :n]))

    def on_validation_epoch_end(self) -> None:
        """The dev scores over every rank's sequences (torchmetrics joins the ranks' sums)."""
        for name, metric in self.val_terms.items():
            self.log(f"dev/{name}", metric.compute())
            metric.reset()
        dtw = self.val_dtw.compute()
        self.val_dtw.reset()
        self.log("dev/dtw", dtw, prog_bar=True)
        self.after_validation(float(dtw))


def train(
    cfg: Config,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
    overwrite: bool = False,
) -> TrainResult:
    """Trains FGDM as configured; with ``resume``, continues from ``output_dir/checkpoints/last.ckpt``, with
    ``overwrite``, starts afresh in an output directory that holds checkpoints (:func:`rundir.claim`).

    ``callbacks``: extra Lightning callbacks (e.g. the learning-curve benchmark's evaluations).
    """
    cfg = with_absolute_paths(cfg)
    config = to_dict(cfg)
    quiet_workers()
    require_multinode_launch(cfg.training.num_nodes)
    with claim(cfg.training.output_dir, config, Config, resume, overwrite) as stored:
        seed_everything(cfg.training.seed)  # the initial weights come from training.seed, whatever ran before
        vocab = Vocabulary(stored["vocab"]) if stored else None
        if vocab is not None and cfg.data.vocab and Vocabulary.from_file(cfg.data.vocab).itos != vocab.itos:
            raise ValueError(f"data.vocab {cfg.data.vocab}: not the vocabulary the run was trained with, which a "
                             "resumed run keeps (the model's embeddings are its tokens); --overwrite starts "
                             "afresh")  # fmt: skip
        data = PoseDataModule(cfg.data, cfg.training, cfg.testing.batch_size, vocab)
        why = "the run being resumed was trained on other data" if stored else "data.vocab belongs to other data"
        data.vocab.require_mostly_known(data.corpora["train"].gloss_sequences(), "the training split",
                                        why=f"{why} (it would train on <unk>)")  # fmt: skip
        module = LitFGDM(config, data.vocab.itos)
        suggest_gloss_dropout(data.dataset("dev"), cfg.training.unk_rate)
        if cfg.model.scg.enabled and cfg.loss.scg_weight > 0:
            warn_unalignable(data.corpora["train"])
        if cfg.data.path is not None and not stored:  # the embedded language is in the convention, and z moves
            warn_unconventional(pose_sample(data.corpora["train"], limit=50), f"{cfg.data.path} (train)",
                                cfg.diffusion.standardise)  # fmt: skip
        if cfg.diffusion.standardise and not resume:  # on resume μ and σ come back with the weights
            module.model.normalizer.fit(pose_sample(data.corpora["train"]))
        module.model.normalizer.longest.fill_(int(data.dataset("train").frame_counts().max()))
        return fit(module, data, cfg.training, config, "dev/dtw", resume, progress, callbacks)


def warn_unalignable(train: Corpus) -> None:
    """Warns of training sequences too short for their glosses under SCG's CTC (:meth:`SCGBranch.alignable`):
    their semantic loss would be 0, unsaid."""
    frames, glosses = train.frame_counts(), train.gloss_sequences()
    bad = [i for i, (n, g) in enumerate(zip(frames.tolist(), glosses, strict=True)) if not SCGBranch.alignable(n, g)]
    if bad:
        first = train[bad[0]]
        warnings.warn(f"{len(bad)} of the {len(frames)} training sequences are too short for their glosses under "
                      "SCG's CTC (⌈frames / 4⌉ steps: one a gloss, a blank between two alike), so their semantic loss "
                      f"is 0; e.g. {first.name}: {frames[bad[0]]} frames, {len(first.glosses)} glosses",
                      stacklevel=2)  # fmt: skip


def suggest_gloss_dropout(dev: PoseDataset, unk_rate: float, share: float = 0.05) -> None:
    """Warns when at least ``share`` of the dev split's glosses are unseen in training and ``unk_rate`` is 0:
    they all map to ``<unk>``, whose embedding training then never touches (``training.unk_rate``)."""
    total = sum(len(ids) for ids in dev.gloss_ids)
    unseen = sum(dev.unknown.values())
    if unk_rate == 0 and total and unseen >= share * total:
        warnings.warn(
            f"{unseen} of the dev split's {total} glosses ({100 * unseen / total:.0f} %) are unseen in training and "
            "map to <unk>, which training never shows the model; training.unk_rate (gloss dropout, e.g. 0.25) "
            "trains it",
            UnknownTokenWarning,
            stacklevel=2,
        )


def pose_sample(corpus: Corpus, limit: int = 1000):
    """Up to ``limit`` training sequences spread evenly over the corpus: the poses statistics are taken from."""
    n = len(corpus)
    for i in np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int)) if n else []:
        yield corpus[int(i)].pose
