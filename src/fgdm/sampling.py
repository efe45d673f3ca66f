"""The public inference API: load a trained generator, sample poses for gloss sequences.

    loaded = load_for_sampling("runs/synth/checkpoints/best.ckpt")
    (pose,) = generate_poses(loaded, loaded.vocab.encode_all([["MORGEN", "NORD", "REGEN"]]), frames=None)

A pose is a (S, 50, 3) float32 array in PT units (:mod:`fgdm.skeleton`). Frame counts come from a
:class:`LengthMode`: the ground truth's (``gt``), the model's length head (``predicted``), or a fixed N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from fgdm.checkpoint import read_checkpoint, substate
from fgdm.config import Config, from_dict
from fgdm.data.corpus import Sample
from fgdm.data.dataset import pad_sequences
from fgdm.data.vocab import Vocabulary
from fgdm.model import FGDM, build_model

MAX_FRAMES = 2000  # 80 s at 25 fps: longer requests are mistakes (attention memory grows with the square)


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; a clear error without CUDA."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available on this machine (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


@dataclass(frozen=True)
class LengthMode:
    """How many frames to sample per sequence: ``gt`` (the reference's), ``predicted`` (the length head)
    or ``fixed`` (``frames`` each)."""

    kind: Literal["gt", "predicted", "fixed"] = "gt"
    frames: int | None = None

    def __post_init__(self) -> None:
        if (self.kind == "fixed") != (self.frames is not None) or not 1 <= (self.frames or 1) <= MAX_FRAMES:
            raise ValueError(f"length: a fixed length is a frame count from 1 to {MAX_FRAMES}, got {self.frames}")

    @classmethod
    def parse(cls, text: str | int) -> LengthMode:
        """``gt``, ``predicted`` or a whole number of frames ≥ 1."""
        if text in ("gt", "predicted"):
            return cls(text)  # type: ignore[arg-type]
        try:
            n = int(text)
        except ValueError:
            raise ValueError(
                f"length: expected gt, predicted or a frame count from 1 to {MAX_FRAMES}, got {text!r}"
            ) from None
        return cls("fixed", n)

    def frame_counts(self, samples: Sequence[Sample] | None = None, n: int | None = None) -> list[int] | None:
        """Frame counts for ``samples`` (or ``n`` sequences without ground truth); None = ask the length head."""
        if self.kind == "predicted":
            return None
        if self.kind == "fixed":
            return [int(self.frames)] * (len(samples) if samples is not None else int(n or 0))  # type: ignore[arg-type]
        if samples is None:
            raise ValueError("length gt needs ground truth: give reference samples, or use predicted or N frames")
        return [len(s.pose) for s in samples]

    def __str__(self) -> str:
        return str(self.frames) if self.kind == "fixed" else self.kind


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint for sampling (no SCG branch), with its config and vocabulary."""

    model: FGDM
    cfg: Config
    vocab: Vocabulary
    step: int

    @property
    def fps(self) -> float:
        """Frames per second of what it generates (PT data is 25 fps; ``data.skip_frames`` divides it)."""
        return 25.0 / self.cfg.data.skip_frames


def load_for_sampling(path: Path | str, device: str | torch.device = "cpu", use_ema: bool = True) -> LoadedModel:
    """Rebuilds the generator from a checkpoint's stored config; EMA weights when present and ``use_ema``.

    ``device``: see :func:`resolve_device` (``auto`` picks CUDA when present)."""
    ckpt = read_checkpoint(path)
    try:
        hp = ckpt["hyper_parameters"]
        cfg, vocab = from_dict(hp["config"]), Vocabulary(hp["vocab"])
    except KeyError as err:
        raise ValueError(f"{path}: not an fgdm checkpoint (missing {err})") from None
    device = resolve_device(device)
    model = build_model(cfg, len(vocab), with_scg=False)
    state = ckpt["state_dict"]
    prefix = "ema.module." if use_ema and any(k.startswith("ema.module.") for k in state) else "model.denoiser."
    try:
        model.denoiser.load_state_dict(substate(state, prefix))
    except RuntimeError as err:
        raise ValueError(f"{path}: its weights do not fit its stored config ({str(err).splitlines()[0]})") from None
    if not all(bool(t.isfinite().all()) for t in model.denoiser.state_dict().values() if t.is_floating_point()):
        raise ValueError(f"{path}: its weights hold NaN or infinite values (a damaged file, or a diverged run)")
    normalizer_state = substate(state, "model.normalizer.")
    if normalizer_state:
        model.normalizer.load_state_dict(normalizer_state)
        stats = model.normalizer
        if not (bool(stats.mean.isfinite().all()) and bool(stats.std.isfinite().all()) and bool((stats.std > 0).all())):
            raise ValueError(f"{path}: its pose statistics (mean, std) are not finite and positive")
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

    if frames is not None and not all(1 <= f <= MAX_FRAMES for f in frames):
        raise ValueError(f"frame counts go from 1 to {MAX_FRAMES}, got {min(frames)} … {max(frames)}")
    loaded.model.diffusion.sampling_timesteps(steps)  # checks steps before any work
    model = loaded.model
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    out: list[np.ndarray] = []
    for start in tqdm(range(0, len(glosses), batch_size), desc="generate", disable=not progress):
        chunk = glosses[start : start + batch_size]
        gloss, gloss_mask = pad_sequences(chunk, loaded.vocab.pad_index, torch.long)
        gloss, gloss_mask = gloss.to(device), gloss_mask.to(device)
        n = (
            model.predict_frames(gloss, gloss_mask)
            if frames is None
            else torch.tensor(frames[start : start + len(chunk)])
        )
        x0, _ = model.generate(gloss, gloss_mask, n.to(device), steps=steps, eta=eta, generator=generator)
        x0 = x0.float().cpu().numpy()
        out += [x0[b, : int(n[b])] for b in range(len(chunk))]
    return out


def generate_for(
    loaded: LoadedModel, samples: Sequence[Sample], length: LengthMode = LengthMode(), **kwargs
) -> list[np.ndarray]:
    """Samples one sequence per corpus sample, from its glosses (keyword arguments: :func:`generate_poses`'s)."""
    ids = loaded.vocab.encode_all([s.glosses for s in samples])
    return generate_poses(loaded, ids, length.frame_counts(samples), **kwargs)
