"""The public inference API: load a trained generator, sample poses for gloss sequences.

    loaded = load_for_sampling("runs/synth/checkpoints/best.ckpt")
    (pose,) = generate_poses(loaded, [loaded.vocab.encode_sentence("MORGEN NORD REGEN")], frames=None)

- :mod:`fgdm.sampling.loading`: :func:`load_for_sampling` (a checkpoint, an exported directory, the shipped
  weights), :func:`export` (the inference format), :class:`LoadedModel`;
- :mod:`fgdm.sampling.generating`: :func:`generate_poses`, :func:`generate_for`, :func:`sequence_seed`.

A pose is a (S, 50, 3) float32 array in PT units (:mod:`fgdm.skeleton`).
"""

from fgdm.sampling.generating import LONG, LongSequenceWarning, generate_for, generate_poses, sequence_seed
from fgdm.sampling.loading import (
    CARD,
    CONFIG,
    PRETRAINED,
    VOCAB,
    WEIGHTS,
    LoadedModel,
    build_for_sampling,
    export,
    load_for_sampling,
    pretrained_path,
    refuse_run_directory,
)

__all__ = [
    "CARD",
    "CONFIG",
    "LONG",
    "PRETRAINED",
    "VOCAB",
    "WEIGHTS",
    "LoadedModel",
    "LongSequenceWarning",
    "build_for_sampling",
    "export",
    "generate_for",
    "generate_poses",
    "load_for_sampling",
    "pretrained_path",
    "refuse_run_directory",
    "sequence_seed",
]
