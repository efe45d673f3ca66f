"""Sampling poses from a loaded generator: :func:`generate_poses` for gloss-id lists, :func:`generate_for` for a
corpus's samples.

A pose is a (S, 50, 3) float32 array in PT units (:mod:`fgdm.skeleton`). Frame counts come from a
:class:`LengthMode`: the ground truth's (``gt``), the model's length head (``predicted``), or a fixed N.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from fgdm.choices import MAX_FRAMES, LengthMode, whole
from fgdm.data.corpus import Sample
from fgdm.data.dataset import pad_sequences
from fgdm.model.compiled import CUDA_GRAPHS, frame_bucket
from fgdm.sampling.loading import LoadedModel

LONG = 1.5  # sampling warns of sequences longer than this many times the longest training sequence


class LongSequenceWarning(UserWarning):
    """A sequence sampled longer than :data:`LONG` times the longest the model was trained on: its motion fades."""


def _is_list(values) -> bool:
    """A list, tuple, tensor or array of at least one dimension: not a string, a scalar or a 0-d array."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return values.ndim > 0
    return isinstance(values, Sequence) and not isinstance(values, (str, bytes))


def _listed(values, what: str) -> list:
    """:func:`_is_list`'s values as a list (of Python scalars, for a tensor or array); ``what`` names them."""
    if not _is_list(values):
        raise ValueError(f"{what}: expected a list, got {values!r}")
    return values.tolist() if isinstance(values, (torch.Tensor, np.ndarray)) else list(values)


def _namer(names: Sequence[str] | None) -> Callable[[int], str]:
    """How errors and warnings name the i-th sequence: by its name, where given, else by its place."""
    return lambda i: f"gloss sequence {names[i] if names is not None else i}"


def _sampling_inputs(loaded: LoadedModel, glosses, frames, seed, names, batch_size) -> tuple[list, list | None, list]:
    """:func:`generate_poses`' arguments checked, each problem named: (the gloss-id lists, the frame counts or
    None, one generator seed per sequence)."""
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"loaded: a model load_for_sampling(...) returns, got {type(loaded).__name__}")
    if not whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size: a whole number ≥ 1, got {batch_size!r}")
    how = "a list of gloss ids per sequence ([loaded.vocab.encode_sentence('MORGEN NORD')] makes one)"
    ids = _listed(glosses, f"glosses: {how}")
    if frames is not None:
        frames = _listed(frames, "frames: a frame count per sequence, or None for the length head's")
    if isinstance(names, (str, bytes)):
        raise ValueError(f"names: one name per sequence, as a list, got {names!r}")
    for what, given in (("frame counts", frames), ("names", names)):
        if given is not None and len(given) != len(ids):
            raise ValueError(f"{len(given)} {what} for {len(ids)} gloss sequences")
    name = _namer(names)
    vocab, itos = len(loaded.vocab), loaded.vocab.itos
    specials = {loaded.vocab.pad_index, loaded.vocab.bos_index, loaded.vocab.eos_index}
    for i, seq in enumerate(ids):
        listed = _listed(seq, "") if _is_list(seq) else None
        if listed is None or not all(whole(x) for x in listed):
            raise ValueError(f"{name(i)} is {seq!r}: give {how}")
        if not listed:
            raise ValueError(f"{name(i)} is empty: nothing to sign")
        outside = [x for x in listed if not 0 <= x < vocab]
        if outside:
            raise ValueError(f"{name(i)}: id {outside[0]} is not in the vocabulary (0 … {vocab - 1})")
        special = next((x for x in listed if x in specials), None)  # <unk> (0) is a gloss unknown to the model
        if special is not None:
            raise ValueError(f"{name(i)}: id {special} is {itos[special]}, no gloss (a padded batch? "
                             "give each sequence its own list, unpadded)")  # fmt: skip
        ids[i] = [int(x) for x in listed]
    if frames is not None:
        odd = next((i for i, f in enumerate(frames) if not whole(f)), None)
        if odd is not None:
            raise ValueError(f"frames: {name(odd)}'s is {frames[odd]!r}, not a whole number of frames (an int; give "
                             "a count for every sequence, or frames=None for the length head's)")  # fmt: skip
        short = [i for i, f in enumerate(frames) if f < 1]
        if short:
            raise ValueError(f"{len(short)} sequence(s) with no frames to sample, e.g. {name(short[0])} "
                             f"({frames[short[0]]} frames): frame counts go from 1 to {MAX_FRAMES}")  # fmt: skip
        long = [i for i, f in enumerate(frames) if f > MAX_FRAMES]
        if long:
            advice = "; choose another --length" if names is not None else ""  # references' lengths (gt)
            raise ValueError(f"{len(long)} sequence(s) longer than the {MAX_FRAMES} frames sampling allows, e.g. "
                             f"{name(long[0])} ({frames[long[0]]} frames){advice}")  # fmt: skip
        frames = [int(f) for f in frames]
    if isinstance(seed, (torch.Tensor, np.ndarray)) and seed.ndim == 0:
        seed = seed.item()
    own = _is_list(seed)
    given = _listed(seed, "seed") if own else [seed]  # one seed per sequence, or one for all
    if (own and len(given) != len(ids)) or not all(whole(x) and 0 <= x < 2**63 for x in given):
        raise ValueError(f"seed: a whole number from 0 to 2**63 - 1, or one per sequence ({len(ids)}), got {seed!r}")
    seeds = [sequence_seed(int(x), 0) for x in given] if own else [sequence_seed(int(seed), i) for i in range(len(ids))]
    return ids, frames, seeds


def generate_poses(
    loaded: LoadedModel,
    glosses: Sequence[Sequence[int]],
    frames: Sequence[int] | None,
    steps: int | None = None,
    seed: int | Sequence[int] = 0,
    batch_size: int = 32,
    progress: bool = False,
    eta: float | None = None,
    names: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Samples one (S_i, J, 3) sequence per gloss-id list (lists, arrays or tensors of ids); ``frames=None`` uses
    the length head. ``names`` (one per list) name the sequences in errors.

    Each sequence draws its noise from its own random generator, seeded by ``seed`` and its position in
    ``glosses`` (:func:`sequence_seed`), at its own length: its poses depend on the seed, its position and the
    device's random numbers (a CPU's and a GPU's differ), not on ``batch_size`` or the sequences beside it (up to
    float rounding), so the first k of a list are sampled as they would be alone. ``seed`` may also be one seed
    per sequence: each is then sampled as it would be alone, first in a list, with its own seed (an avatar that
    batches requests as they come gets each sentence's signing whatever its place in the batch).
    """
    from tqdm.auto import tqdm

    glosses, frames, seeds = _sampling_inputs(loaded, glosses, frames, seed, names, batch_size)
    loaded.model.diffusion.sampling_timesteps(steps)  # checks steps before any work
    model = loaded.model
    device = next(model.parameters()).device
    name = _namer(names)
    batches = []  # every batch's frame counts first: a refusal comes before any sampling
    for start in range(0, len(glosses), batch_size):
        gloss, gloss_mask = pad_sequences(glosses[start : start + batch_size], loaded.vocab.pad_index, torch.long)
        gloss, gloss_mask = gloss.to(device), gloss_mask.to(device)
        n = (  # on the host: read once per batch (a GPU would wait at each read)
            model.predict_frames(gloss, gloss_mask).cpu()
            if frames is None
            else torch.tensor(frames[start : start + len(gloss)])
        )
        if frames is None and int(n.max()) > MAX_FRAMES:
            raise ValueError(f"the length head predicts {int(n.max())} frames for {name(start + int(n.argmax()))}, "
                             f"beyond the {MAX_FRAMES} sampling allows: give fewer glosses, or a frame count for "
                             "it (frames=[N]; fgdm generate --length N)")  # fmt: skip
        batches.append((start, gloss, gloss_mask, n))
    out: list[np.ndarray] = []
    longest, too_long = int(model.normalizer.longest), []  # the longest training sequence, if recorded
    buckets = loaded.compile in CUDA_GRAPHS  # a CUDA graph per shape: a few shapes
    for start, gloss, gloss_mask, n in tqdm(batches, desc="generate", disable=not progress):
        too_long += [start + b for b, count in enumerate(n.tolist()) if longest and count > LONG * longest]
        generators = [torch.Generator(device=device).manual_seed(seeds[start + b]) for b in range(len(n))]
        frames_to = None
        if buckets:  # padded after the length head has read the glosses (padding may move its rounding)
            extra = frame_bucket(gloss.shape[1], grain=4) - gloss.shape[1]
            gloss = torch.nn.functional.pad(gloss, (0, extra), value=loaded.vocab.pad_index)
            gloss_mask = torch.nn.functional.pad(gloss_mask, (0, extra), value=False)
            frames_to = frame_bucket(int(n.max()))
        with loaded.lock if loaded.compiled is not None else contextlib.nullcontext():
            x0, _ = model.generate(gloss, gloss_mask, n, steps=steps, eta=eta, generator=generators,
                                   denoiser=loaded.compiled, frames_to=frames_to)  # fmt: skip
        x0 = x0.float().cpu().numpy()
        out += [x0[b, :count].copy() for b, count in enumerate(n.tolist())]  # not views keeping the batch alive
    if too_long:
        advice = "; give it sentence by sentence" if frames is None else ""  # (a batch changes no one's length)
        warnings.warn(f"{len(too_long)} sequence(s) longer than {LONG:g} × the longest the model was trained on "
                      f"({longest} frames), e.g. {name(too_long[0])} ({len(out[too_long[0]])} frames): it never "
                      f"learnt to sign so long, and its motion fades{advice}",
                      LongSequenceWarning, stacklevel=2)  # fmt: skip
    return out


def sequence_seed(seed: int, index: int) -> int:
    """The seed of sequence ``index``'s random generator in a sampling run seeded with ``seed``: distinct streams
    for every (seed, index) pair (NumPy's ``SeedSequence`` mixes them). A seed of 2³² or more is given as its two
    32-bit words and a mark: NumPy reads [s + 2³²·k, 0] as the words [s, k, 0], which it pads to [s, k], sequence
    k's of seed s, so two seeds drew the same noise. Seeds below 2³² keep the streams they always had."""
    seed %= 2**64
    entropy = [seed, index] if seed < 2**32 else [seed & 0xFFFFFFFF, seed >> 32, index, 1]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def generate_for(
    loaded: LoadedModel, samples: Sequence[Sample], length: LengthMode | str | int = LengthMode(), **kwargs
) -> list[np.ndarray]:
    """Samples one sequence per corpus sample, from its glosses; ``length``: a :class:`LengthMode`, or ``"gt"``,
    ``"predicted"`` or a frame count, as :func:`fgdm.evaluation.protocol.evaluate` takes it (keyword arguments:
    :func:`generate_poses`'s; ``names``: the samples' own unless given). Ground-truth lengths are the samples' frame
    counts: open the corpus at the model's frame rate (``skip_frames=loaded.cfg.data.skip_frames``)."""
    length = length if isinstance(length, LengthMode) else LengthMode.parse(length)
    ids = loaded.vocab.encode_all([s.glosses for s in samples])
    kwargs.setdefault("names", [s.name for s in samples])
    return generate_poses(loaded, ids, length.frame_counts(samples), **kwargs)
