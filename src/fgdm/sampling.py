"""The public inference API: load a trained generator, sample poses for gloss sequences.

    loaded = load_for_sampling("runs/synth/checkpoints/best.ckpt")
    (pose,) = generate_poses(loaded, [loaded.vocab.encode_sentence("MORGEN NORD REGEN")], frames=None)

A pose is a (S, 50, 3) float32 array in PT units (:mod:`fgdm.skeleton`). Frame counts come from a
:class:`LengthMode`: the ground truth's (``gt``), the model's length head (``predicted``), or a fixed N.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fgdm.checkpoint import read_checkpoint, run_checkpoints, state_mismatch, substate
from fgdm.choices import MAX_FRAMES, PRECISIONS, LengthMode, whole
from fgdm.config import Config, from_dict
from fgdm.data.corpus import Sample
from fgdm.data.dataset import pad_sequences
from fgdm.data.vocab import Vocabulary
from fgdm.model import FGDM, build_model
from fgdm.runtime import resolve_device, signals_held

LONG = 1.5  # sampling warns of sequences longer than this many times the longest training sequence


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint for sampling (no SCG branch), with its config and vocabulary."""

    model: FGDM
    cfg: Config
    vocab: Vocabulary
    step: int
    precision: str = "32"

    @property
    def fps(self) -> float:
        """Frames per second of what it generates (PT data is 25 fps; ``data.skip_frames`` divides it)."""
        return 25.0 / self.cfg.data.skip_frames


PRETRAINED = "synth"  # the weights shipped in fgdm/pretrained/ (fgdm generate's default)
WEIGHTS, CONFIG, VOCAB, CARD = "model.safetensors", "config.json", "vocab.txt", "README.md"


def pretrained_path(name: str = PRETRAINED) -> Path:
    """The directory of weights shipped with the package (``fgdm/pretrained/NAME``)."""
    from importlib.resources import files

    path = Path(str(files("fgdm") / "pretrained" / name))
    if not (path / WEIGHTS).is_file():
        raise FileNotFoundError(f"{path}: no pretrained weights {name!r} in this installation")
    return path


def _is_pretrained(name: str) -> bool:
    """Whether ``name`` (a bare name, no path) names weights shipped with fgdm."""
    if not name or name.startswith(".") or any(c in name for c in "/\\"):
        return False
    try:
        return pretrained_path(name).is_dir()
    except (FileNotFoundError, OSError):
        return False


def build_for_sampling(cfg: Config, vocab_size: int) -> FGDM:
    """The generator without its SCG branch, on the CPU, for weights to be loaded into it.

    It is built without drawing from PyTorch's random stream (its initial weights are overwritten anyway),
    so a run that loads or copies a generator mid-way draws the same noise after it as without."""
    with torch.random.fork_rng(devices=[]):
        return build_model(cfg, vocab_size, with_scg=False)


def load_for_sampling(
    path: Path | str | None = None,
    device: str | torch.device | None = "auto",
    use_ema: bool = True,
    precision: str = "32",
) -> LoadedModel:
    """The generator for sampling, from a training checkpoint (``.ckpt``: EMA weights when present and
    ``use_ema``), an inference directory written by :func:`export` (or a ``.safetensors`` file in one, read with
    the directory's config and vocabulary), or, with no path or the name of one (``"synth"``), the weights shipped
    with fgdm (:func:`pretrained_path`). ``device``: see :func:`resolve_device`.

    ``precision``: ``32`` (float32 throughout) or ``bf16``: the General part (F2G, the General stage, the
    output layer) in bfloat16, everything else in float32 (:meth:`fgdm.model.denoiser.Denoiser.lower_precision`).
    bf16 pays on GPUs and on CPUs with bfloat16 matrix units (Intel AMX); elsewhere it is slower."""
    if str(precision) not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if path is None or (isinstance(path, str) and not Path(path).exists() and _is_pretrained(path)):
        path = pretrained_path(path or PRETRAINED)  # the weights shipped with fgdm, by name ("synth")
    path = Path(path)
    if path.is_dir() and (advice := run_checkpoints(path)):
        raise ValueError(f"{path}: a directory, not a checkpoint or an exported model{advice}")
    if path.is_dir() or path.suffix == ".safetensors":
        if not use_ema:
            raise ValueError(f"{path}: exported weights are one set (the EMA's, where training kept one): raw "
                             "weights (use_ema=False, --no-ema) come from the training checkpoint (.ckpt)")  # fmt: skip
        cfg, vocab, state, step = _read_inference(path / WEIGHTS if path.is_dir() else path)
    else:
        ckpt = read_checkpoint(path)
        hp = ckpt["hyper_parameters"]
        if isinstance(hp, dict) and "text_vocab" in hp and "vocab" not in hp:
            raise ValueError(f"{path}: a back-translator's checkpoint, not a generator's (it belongs to evaluate "
                             "--backtranslator)")  # fmt: skip
        try:
            cfg, vocab = from_dict(hp["config"]), Vocabulary(hp["vocab"])
        except (KeyError, TypeError, ValueError) as err:  # a foreign or damaged checkpoint, or an invalid config
            raise ValueError(f"{path}: not an fgdm checkpoint ({type(err).__name__}: {err})") from None
        raw = ckpt["state_dict"]
        prefix = "ema.module." if use_ema and any(k.startswith("ema.module.") for k in raw) else "model.denoiser."
        state = {"denoiser": substate(raw, prefix), "normalizer": substate(raw, "model.normalizer.")}
        step = int(ckpt.get("global_step", 0))
    model = build_for_sampling(cfg, len(vocab))
    try:
        model.denoiser.load_state_dict(state["denoiser"])
        if state["normalizer"]:
            model.normalizer.load_state_dict(state["normalizer"])
    except RuntimeError as err:
        raise ValueError(f"{path}: its weights do not fit its stored config and vocabulary ({len(vocab)} tokens): "
                         f"{state_mismatch(err)}") from None  # fmt: skip
    if not all(bool(t.isfinite().all()) for t in model.state_dict().values() if t.is_floating_point()):
        raise ValueError(f"{path}: its weights hold NaN or infinite values (a damaged file, or a diverged run)")
    if not bool((model.normalizer.std > 0).all()):
        raise ValueError(f"{path}: its pose statistics have a spread of 0 or less")
    if cfg.diffusion.standardise and not state["normalizer"]:
        raise ValueError(f"{path}: diffusion.standardise is on but the checkpoint has no pose statistics")
    device = resolve_device(device)
    model.eval().to(device)
    if device.type == "cpu" and cfg.model.focal.enabled and cfg.model.focal.kernel != "torch":  # the ASGCN kernel
        from fgdm.model import kernels  # built (seconds, once a machine; cached) or loaded now, not in the first call

        kernels.available()
    if str(precision) == "bf16":
        model.denoiser.lower_precision(torch.bfloat16)
        if device.type == "cpu" and not _has_bf16_matrix_units():
            warnings.warn("precision bf16: this CPU has no bfloat16 matrix units (AMX), so it samples slower than "
                          "in float32", stacklevel=2)  # fmt: skip
    return LoadedModel(model, cfg, vocab, step, str(precision))


def _has_bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX); True when PyTorch cannot say."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return True if probe is None else bool(probe())


def _read_inference(weights: Path) -> tuple[Config, Vocabulary, dict, int]:
    """The weights file of an inference directory (its model.safetensors, or another a user saved there) and the
    directory's config.json and vocab.txt."""
    import json

    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    directory = weights.parent
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: not found" if weights.name != WEIGHTS else
                                f"{weights}: not found (an inference directory holds {WEIGHTS}, {CONFIG} and "
                                f"{VOCAB}; fgdm export writes them)")  # fmt: skip
    for name in (CONFIG, VOCAB):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name}: not found (the weights {weights.name} are read with the "
                                    f"{CONFIG} and {VOCAB} beside them, as fgdm export writes them)")  # fmt: skip
    try:
        meta = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
        cfg, step = from_dict(meta["config"]), int(meta.get("step", 0))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{directory / CONFIG}: not an fgdm export's config ({type(err).__name__}: {err})") from None
    try:
        tensors = load_file(weights)
        with safe_open(weights, "pt") as f:
            stored = (f.metadata() or {}).get("step")
    except (OSError, ValueError, SafetensorError) as err:
        raise ValueError(f"{weights}: not readable weights ({type(err).__name__}: {err})") from None
    if stored is not None and stored != str(step):
        raise ValueError(f"{directory}: {weights.name} holds step {stored}, {CONFIG} step {step}: two exports "
                         "mixed; export again")  # fmt: skip
    state = {part: {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(part + ".")}
             for part in ("denoiser", "normalizer")}  # fmt: skip
    return cfg, Vocabulary.from_file(directory / VOCAB), state, step


def export(
    loaded: LoadedModel, out: Path | str, data: str | None = "keep", card: Callable[[Config], str] | None = None
) -> Config:
    """Writes the inference format: ``model.safetensors`` (the sampling weights and pose statistics only),
    ``config.json`` (the resolved config, the step) and ``vocab.txt``, and ``card(config)`` as ``README.md`` (a
    model card, :func:`fgdm.evaluation.report.model_card`); returns the config it recorded.

    The files are written beside their targets and renamed in together (signals held), so an interruption
    never leaves one export's weights beside another's config; other files there stay (a repository's ``.git``),
    but a training run's directory is refused. ``data``: what the config records as the training
    data: ``"keep"`` it, or a directory (recorded absolute), or None for the embedded synthetic language
    (``data.path: null``). The run's output directory is not recorded.
    """
    import dataclasses
    import json

    from safetensors.torch import save_file

    from fgdm.config import to_dict
    from fgdm.version import __version__

    out = Path(out)
    refuse_run_directory(out)
    cfg = loaded.cfg
    if data != "keep":
        path = str(Path(data).resolve()) if data is not None else None  # read later, from elsewhere
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=path))
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, output_dir="runs/fgdm"))
    tensors = {f"denoiser.{k}": v for k, v in loaded.model.denoiser.state_dict().items()}
    tensors |= {f"normalizer.{k}": v for k, v in loaded.model.normalizer.state_dict().items()}
    tensors = {k: (v.float() if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in tensors.items()}
    out.mkdir(parents=True, exist_ok=True)
    names = [WEIGHTS, CONFIG, VOCAB, *([CARD] if card is not None else [])]
    tmp = {name: out / f".{name}.{os.getpid()}.tmp" for name in names}
    try:
        save_file(tensors, tmp[WEIGHTS],
                  metadata={"format": "fgdm inference", "fgdm": __version__, "step": str(loaded.step)})  # fmt: skip
        mask = os.umask(0o22)  # safetensors writes its file readable by its owner only; the others as umask says
        os.umask(mask)
        tmp[WEIGHTS].chmod(0o666 & ~mask)
        meta = {"fgdm": __version__, "step": loaded.step, "config": to_dict(cfg)}
        tmp[CONFIG].write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        loaded.vocab.save(tmp[VOCAB])
        if card is not None:
            tmp[CARD].write_text(card(cfg), encoding="utf-8")
        with signals_held():
            for name, path in tmp.items():
                path.replace(out / name)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    return cfg


def refuse_run_directory(out: Path) -> None:
    """An export is not written into a training run's directory (its config.json is the run's)."""
    if (out / "checkpoints").is_dir() or any(out.glob("*.ckpt")):
        raise ValueError(f"{out}: a training run's directory (its config.json is the run's): choose another one")


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
        raise TypeError(f"loaded: a model load_for_sampling(...) returns, got {loaded!r}")
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
    vocab = len(loaded.vocab)
    for i, seq in enumerate(ids):
        listed = _listed(seq, "") if _is_list(seq) else None
        if listed is None or not all(whole(x) for x in listed):
            raise ValueError(f"{name(i)} is {seq!r}: give {how}")
        if not listed:
            raise ValueError(f"{name(i)} is empty: nothing to sign")
        outside = [x for x in listed if not 0 <= x < vocab]
        if outside:
            raise ValueError(f"{name(i)}: id {outside[0]} is not in the vocabulary (0 … {vocab - 1})")
        ids[i] = [int(x) for x in listed]
    if frames is not None:
        odd = next((i for i, f in enumerate(frames) if not whole(f)), None)
        if odd is not None:
            raise ValueError(f"frames: {name(odd)}'s is {frames[odd]!r}, not a whole number of frames (give "
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
    for start, gloss, gloss_mask, n in tqdm(batches, desc="generate", disable=not progress):
        too_long += [start + b for b, count in enumerate(n.tolist()) if longest and count > LONG * longest]
        generators = [torch.Generator(device=device).manual_seed(seeds[start + b]) for b in range(len(n))]
        x0, _ = model.generate(gloss, gloss_mask, n, steps=steps, eta=eta, generator=generators)
        x0 = x0.float().cpu().numpy()
        out += [x0[b, :count].copy() for b, count in enumerate(n.tolist())]  # not views keeping the batch alive
    if too_long:
        advice = "; sample one sentence at a time" if frames is None and len(glosses) > 1 else ""
        warnings.warn(f"{len(too_long)} sequence(s) longer than {LONG:g} × the longest the model was trained on "
                      f"({longest} frames), e.g. {name(too_long[0])} ({len(out[too_long[0]])} frames): it never "
                      f"learnt to sign so long, and its motion fades{advice}", stacklevel=2)  # fmt: skip
    return out


def sequence_seed(seed: int, index: int) -> int:
    """The seed of sequence ``index``'s random generator in a sampling run seeded with ``seed``: distinct streams
    for every (seed, index) pair (NumPy's ``SeedSequence`` mixes them)."""
    return int(np.random.SeedSequence([seed % 2**64, index]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def generate_for(
    loaded: LoadedModel, samples: Sequence[Sample], length: LengthMode | str | int = LengthMode(), **kwargs
) -> list[np.ndarray]:
    """Samples one sequence per corpus sample, from its glosses; ``length``: a :class:`LengthMode`, or ``"gt"``,
    ``"predicted"`` or a frame count, as :func:`fgdm.evaluation.protocol.evaluate` takes it (keyword arguments:
    :func:`generate_poses`'s)."""
    length = length if isinstance(length, LengthMode) else LengthMode.parse(length)
    ids = loaded.vocab.encode_all([s.glosses for s in samples])
    return generate_poses(loaded, ids, length.frame_counts(samples), names=[s.name for s in samples], **kwargs)
