"""Loading a trained generator for sampling, and the inference format it can be exported to.

:func:`load_for_sampling` reads a training checkpoint, an exported directory (:func:`export`: safetensors weights,
config, vocabulary, model card) or the weights shipped with fgdm (:func:`pretrained_path`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from fgdm.checkpoint import read_checkpoint, run_checkpoints, state_mismatch, substate
from fgdm.choices import COMPILE_MODES, PRECISIONS
from fgdm.config import Config, DataConfig, from_dict
from fgdm.data.vocab import Vocabulary
from fgdm.model import FGDM, build_model
from fgdm.runtime import one_thread_after_fork, resolve_device, signals_held


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint for sampling (no SCG branch), with its config and vocabulary; where
    ``compile`` asks, its denoiser through ``torch.compile`` too (``compiled``, made when not given), which one
    thread at a time calls (``lock``): Dynamo compiles for one thread, and CUDA graphs are recorded per thread."""

    model: FGDM
    cfg: Config
    vocab: Vocabulary
    step: int
    precision: str = "32"
    compile: bool | str = False
    compiled: nn.Module | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.compile is not False and self.compiled is None:  # compiled on its first sentence
            from fgdm.model.compiled import compile_module

            self.compiled = compile_module(self.model.denoiser, self.compile)

    def __getstate__(self) -> dict:
        """A pickled or deep-copied LoadedModel leaves its lock and compiled code behind: the copy makes its own."""
        return {k: v for k, v in self.__dict__.items() if k not in ("lock", "compiled")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.Lock(), compiled=None)
        self.__post_init__()

    def __repr__(self) -> str:  # not the network's and the config's hundred lines
        device = next(self.model.parameters()).device
        return (f"LoadedModel(step={self.step}, glosses={len(self.vocab)}, device={device}, "
                f"precision={self.precision!r}, compile={self.compile!r}, fps={self.fps:g})")  # fmt: skip

    @property
    def fps(self) -> float:
        """Frames per second of what it generates (PT data is 25 fps; ``data.skip_frames`` divides it)."""
        return 25.0 / self.cfg.data.skip_frames

    def sampling(self, steps: int | None = None) -> dict:
        """How it samples with ``steps`` (None: the config's), as evaluate's report and generate's JSON record it."""
        diffusion = self.model.diffusion
        return {"steps": len(diffusion.sampling_timesteps(steps)), "eta": diffusion.cfg.eta,
                "precision": self.precision, "compile": self.compile}  # fmt: skip


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
    compile: bool | str = False,
) -> LoadedModel:
    """The generator for sampling, from a training checkpoint (``.ckpt``: EMA weights when present and
    ``use_ema``), an inference directory written by :func:`export` (or a ``.safetensors`` file in one, read with
    the directory's config and vocabulary), or, with no path or the name of one (``"synth"``), the weights shipped
    with fgdm (:func:`pretrained_path`). ``device``: see :func:`resolve_device`.

    ``precision``: ``32`` (float32 throughout) or ``bf16``: the General part (F2G, the General stage, the
    output layer) in bfloat16, everything else in float32 (:meth:`fgdm.model.denoiser.Denoiser.lower_precision`).
    bf16 pays on GPUs and on CPUs with bfloat16 instructions (Intel AMX, AVX512-BF16); elsewhere it is slower.

    ``compile``: False, or True (torch.compile's default mode) or one of :data:`fgdm.choices.COMPILE_MODES`: the
    denoiser's steps through ``torch.compile``, compiled (seconds to minutes) on the first sentence, again on the
    first of another shape (the sizes that changed are then dynamic) and where a size of 1 (one sequence, one
    gloss) grows; the poses are eager's up to float rounding. With CUDA graphs (``reduce-overhead``,
    ``max-autotune``) each batch is padded to one of a few sizes of frames and glosses
    (:func:`fgdm.model.compiled.frame_bucket`), each recording its graph when first met; padding changes no
    sequence's poses beyond float rounding. On a CPU with the fused ASGCN kernel, compiled sampling measured no
    faster than eager (benchmarks/results/speed.md).

    Processes forked from this one afterwards (a pre-forking server's workers) compute on one CPU thread, where
    more would hang them (:func:`fgdm.runtime.one_thread_after_fork`)."""
    _refuse_options(precision, compile)  # before any reading
    named = isinstance(path, str) and _is_pretrained(path)  # "synth": shipped weights, unless a path is there
    if path is None or (named and not Path(path).exists()):
        path = pretrained_path(path or PRETRAINED)  # the weights shipped with fgdm, by name ("synth")
    path = Path(path)
    if path.is_dir() and (advice := run_checkpoints(path)):
        raise ValueError(f"{path}: a directory, not a checkpoint or an exported model{advice}")
    if named and path.is_dir() and not (path / WEIGHTS).is_file():
        raise ValueError(f"{path}: a folder here, without exported weights, has the name of fgdm's shipped "
                         f"weights and hides them: for those, give no path (no --checkpoint) or "
                         f"{pretrained_path(str(path))}")  # fmt: skip
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
    return ready_for_sampling(model, cfg, vocab, step, device, precision, compile)


def ready_for_sampling(
    model: FGDM,
    cfg: Config,
    vocab: Vocabulary,
    step: int,
    device: str | torch.device | None = "auto",
    precision: str = "32",
    compile: bool | str = False,
) -> LoadedModel:
    """A generator with its weights loaded (:func:`build_for_sampling`), made ready as :func:`load_for_sampling`
    makes the one it reads: on ``device``, in ``precision``, compiled where ``compile`` asks (see there)."""
    _refuse_options(precision, compile)
    device = resolve_device(device)
    one_thread_after_fork()  # a worker forked from this process would otherwise hang (gunicorn --preload)
    model.eval().to(device)
    kernel = False  # whether the ASGCN kernel computes
    if device.type == "cpu" and cfg.model.focal.enabled and cfg.model.focal.kernel != "torch":
        from fgdm.model import kernels  # built (seconds, once a machine; cached) or loaded now, not in the first call

        kernel = kernels.available()
    if str(precision) == "bf16":
        model.denoiser.lower_precision(torch.bfloat16)
        if device.type == "cpu" and not _has_bf16_units():
            warnings.warn("precision bf16: this CPU has no bfloat16 instructions (AMX, AVX512-BF16), so it samples "
                          "slower than in float32", stacklevel=3)  # fmt: skip
    if compile is not False and kernel:  # whose calls break the graph
        warnings.warn("compile on a CPU with the fused ASGCN kernel: compiled sampling measured no faster than "
                      "eager there, and its first sentence compiles for seconds to minutes", stacklevel=3)  # fmt: skip
    gc.collect()  # Python's first full collection after torch's import (~0.1 s) comes now, not in the first requests
    return LoadedModel(model, cfg, vocab, step, str(precision), compile)  # compiled there


def _refuse_options(precision: str, compile: bool | str) -> None:
    """A precision or compile mode that sampling does not know, refused naming those it does."""
    if str(precision) not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if not (compile is False or compile is True or compile in COMPILE_MODES):
        raise ValueError(f"compile {compile!r}: use False, True or one of {', '.join(COMPILE_MODES)}")


def _has_bf16_units() -> bool:
    """Whether this CPU computes bfloat16 products in hardware: Intel's AMX, or AVX512-BF16 (on an AMD Zen 4 the
    live sentence took 0.75 of float32's time); True when PyTorch cannot say."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(probe is None or bool(probe()) for probe in probes)


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
    import json

    from safetensors.torch import save

    from fgdm.config import to_dict
    from fgdm.version import __version__

    out = Path(out)
    refuse_run_directory(out)
    cfg = loaded.cfg
    if data != "keep":
        if data is not None and not Path(data).is_dir():  # ("embedded" is the command line's word for None)
            raise ValueError(f'data: {data}: no directory (give "keep", a data directory, or None: embedded)')
        if data is None and cfg.data.path is not None and (problem := _not_embedded(cfg.data)):
            raise ValueError(f"data: embedded, but {problem}: the exported config would name another language's "
                             'sentences (keep the data: "keep", --data keep)')  # fmt: skip
        path = str(Path(data).resolve()) if data is not None else None  # read later, from elsewhere
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=path))
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, output_dir="runs/fgdm"))
    tensors = {f"denoiser.{k}": v for k, v in loaded.model.denoiser.state_dict().items()}
    tensors |= {f"normalizer.{k}": v for k, v in loaded.model.normalizer.state_dict().items()}
    tensors = {k: (v.float() if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in tensors.items()}
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    names = [WEIGHTS, CONFIG, VOCAB, *([CARD] if card is not None else [])]
    tmp = {name: out / f".{name}.{os.getpid()}.tmp" for name in names}
    try:
        # written by Python, not safetensors' save_file: its errors were no OSError (a full disk gave a traceback),
        # and it made the file readable by its owner only
        metadata = {"format": "fgdm inference", "fgdm": __version__, "step": str(loaded.step)}
        tmp[WEIGHTS].write_bytes(save(tensors, metadata=metadata))
        meta = {"fgdm": __version__, "step": loaded.step, "config": to_dict(cfg)}
        tmp[CONFIG].write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        loaded.vocab.save(tmp[VOCAB])
        if card is not None:
            tmp[CARD].write_text(card(cfg), encoding="utf-8")
        with signals_held():
            for name, path in tmp.items():
                path.replace(out / name)
    except OSError as err:  # named as the file it was writing (a write's own error names none: the folder)
        ours = [out / name for name, path in tmp.items() if err.filename in (str(path), path)]
        target = ours[0] if ours else out if err.filename is None else None
        if target is not None and err.errno is not None:
            raise type(err)(err.errno, err.strerror, str(target)) from err
        raise
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
        if made:  # a folder made for a write that failed goes again
            with contextlib.suppress(OSError):
                out.rmdir()
    return cfg


def _not_embedded(data: DataConfig) -> str | None:
    """Why ``data.path``, data written to files, is not the embedded language that ``data`` describes (its seed and
    split sizes, which an export recording the data as embedded keeps), or None: every split it has holds that
    language's sentences, or the data is gone (then unchecked, with a warning)."""
    from fgdm.data.sources import SPLITS, data_splits, gloss_sequences

    path = Path(data.path or "")
    if not path.is_dir():
        warnings.warn(f"{path}, the run's data, is gone: that it was the embedded language of seed "
                      f"{data.synth_seed} (data.synth_seed) is not checked", stacklevel=3)  # fmt: skip
        return None
    embedded = dataclasses.replace(data, path=None, skip_frames=1)
    for split in [s for s in data_splits(path) if s in SPLITS]:
        have, want = gloss_sequences(data, split), gloss_sequences(embedded, split)
        if [tuple(g) for g in have] != [tuple(g) for g in want]:
            return (f"{path}'s {split} split ({len(have)} sentences) is not the embedded language's of the run's "
                    f"config (seed {data.synth_seed}, {len(want)} {split} sentences: data.synth_seed, "
                    f"data.synth_{split})")  # fmt: skip
    return None


def refuse_run_directory(out: Path) -> None:
    """An export is not written into a training run's directory (its config.json is the run's)."""
    if (out / "checkpoints").is_dir() or any(out.glob("*.ckpt")):
        raise ValueError(f"{out}: a training run's directory (its config.json is the run's): choose another one")
