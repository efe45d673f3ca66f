"""Configuration: commented YAML (joeynmt layout) loaded into frozen, validated dataclasses.

Sections: ``data``, ``training``, ``model`` (with ``gloss_encoder``, ``focal``, ``general``, ``scg``),
``diffusion``, ``testing``. Unknown keys and bad values are rejected with messages that list the
valid choices; ``--set key=value`` overrides any key; the resolved config is stored with every
checkpoint (:func:`to_dict`) and rebuilt from it (:func:`from_dict`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names the key and the valid choices."""


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None  # a PT-format directory (or synth manifest); None: the embedded synthetic data
    vocab: str | None = None  # gloss vocabulary file (src_vocab.txt); None: built from train
    skip_frames: int = 1
    synth_seed: int = 0
    synth_train: int = 1000
    synth_dev: int = 100
    synth_test: int = 100


@dataclass(frozen=True)
class TrainingConfig:
    output_dir: str = "runs/fgdm"
    max_steps: int = 100_000
    batch_size: int = 64
    lr: float = 1e-3
    clip_grad_norm: float = 5.0
    bone_weight: float = 0.1  # λ
    bone_mode: Literal["vector", "direction"] = "vector"
    # Where L_joint is measured: "pose" = PT units (the paper); "model" = the diffusion representation
    # (diffusion.standardise / hands_relative), where every coordinate has about unit spread.
    joint_loss_space: Literal["pose", "model"] = "pose"
    hand_weight: float = 1.0  # weight of the 42 hand joints against the 8 body joints in L_joint
    length_weight: float = 0.01
    warmup_steps: int = 0  # linear learning-rate warm-up from 0 over this many optimizer steps
    scheduler_patience: int = 7
    scheduler_factor: float = 0.7
    min_lr: float = 1e-4
    ema_decay: float | None = None
    val_every: int = 1000
    val_batches: int | None = None
    log_every: int = 50
    devices: int | str = 1
    num_nodes: int = 1
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    strategy: str = "auto"
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "bf16-true", "64-true"] = "32-true"
    seed: int = 42
    num_workers: int = 0


@dataclass(frozen=True)
class GlossEncoderConfig:
    layers: int = 2
    heads: int = 4
    ff: int = 2048
    dropout: float = 0.0


@dataclass(frozen=True)
class FocalConfig:
    enabled: bool = True
    layers: int = 3  # L1
    width: int = 16  # D_f
    neighbors: int = 3  # n: contextual window ±n frames
    contextual: bool = True  # A_a
    semantic_mask: bool = True  # M
    topology: bool = True  # A_b
    tcn_kernel: int = 9
    # How A_b's one-hop adjacency is degree-normalised: "receiving" = D^-1 A, each joint averages its
    # neighbourhood (the paper); "sending" = A D^-1, divided by the sender's degree (ST-GCN's code, the
    # authors' release and fgdm 0.1).
    prior_norm: Literal["receiving", "sending"] = "receiving"
    # Execution only (results are identical), PyTorch path: ASGCN works through about this many frames
    # (B·s) at a time so its (2n+1)·J·J maps stay in cache, recomputing each chunk in the backward pass.
    # 0 = all frames at once (more memory; may suit GPUs). The C kernel (below) goes frame by frame.
    chunk_frames: int = 64
    # Execution only: "auto" runs ASGCN as one fused C kernel (fgdm/model/kernels/asgcn.c, compiled on first
    # use) for float32 on the CPU when a C compiler is present, else the PyTorch path; "c" insists on the
    # kernel, "torch" never uses it. The kernel computes the same equations (equivalence tests).
    kernel: Literal["auto", "c", "torch"] = "auto"


@dataclass(frozen=True)
class GeneralConfig:
    layers: int = 2  # L2
    heads: int = 4
    ff: int = 2048
    dropout: float = 0.1
    attention: Literal["bidirectional", "causal"] = "bidirectional"


@dataclass(frozen=True)
class SCGConfig:
    enabled: bool = True
    weight: float = 1e-4  # γ
    alpha: float = 10.0  # w(t) = exp(−α t / T)
    adapter_ratio: int = 4  # V2S bottleneck D_g / ratio
    conv_width: int = 1024
    conv_kernel: int = 5
    lstm_hidden: int = 512  # per direction
    lstm_layers: int = 2
    # The paper's L_SCG is w(t)·CTC per sample, averaged over the batch. True divides each sample's CTC
    # by its gloss count as well (as fgdm 0.1 did), which shrinks the effective γ about 7.5-fold.
    per_gloss: bool = False


@dataclass(frozen=True)
class ModelConfig:
    width: int = 512  # D_g
    gloss_encoder: GlossEncoderConfig = field(default_factory=GlossEncoderConfig)
    focal: FocalConfig = field(default_factory=FocalConfig)
    general: GeneralConfig = field(default_factory=GeneralConfig)
    scg: SCGConfig = field(default_factory=SCGConfig)
    length_head: bool = True
    # Progress through the sequence (i / S for frames, l / L for glosses, as Progressive Transformers'
    # counter) added as sinusoidal features to both: alignment of frames to glosses is then easy to
    # learn. Not in the paper (its frames carry absolute positions only).
    counter: bool = False
    # False: the length head learns from a detached gloss encoding, so its loss never trains the encoder
    # the denoiser conditions on. True lets its gradient into the gloss encoder (as fgdm 0.1 did).
    length_head_grad: bool = False


@dataclass(frozen=True)
class DiffusionConfig:
    timesteps: int = 1000  # T
    schedule: Literal["cosine"] = "cosine"
    cosine_s: float = 0.008
    sampling_steps: int = 5  # I
    eta: float = 1.0
    # The representation diffusion works in (fgdm/representation.py): z = data_scale · (r(x) − μ) / σ.
    # data_scale: one global factor (PT coordinates have std ≈ 0.2); 1.0 with the two switches off is
    # raw coordinates, as the released code.
    data_scale: float = 1.0
    # μ, σ: per-coordinate statistics of the training frames (motion diffusion models' normalisation).
    standardise: bool = False
    # r: hand joints relative to the wrist they hang from (finger shape apart from arm motion).
    hands_relative: bool = False


@dataclass(frozen=True)
class TestingConfig:
    length: Literal["gt", "predicted", "fixed"] = "gt"
    fixed_length: int = 130
    batch_size: int = 32
    seed: int = 0


@dataclass(frozen=True)
class BackTranslatorModelConfig:
    width: int = 256
    encoder_layers: int = 3
    decoder_layers: int = 2
    heads: int = 4
    ff: int = 1024
    dropout: float = 0.1
    frame_stride: int = 2  # a strided convolution shortens the pose sequence before the encoder
    ctc_weight: float = 1.0  # gloss recognition (CTC) loss weight
    translation_weight: float = 1.0  # text cross-entropy weight
    label_smoothing: float = 0.1
    beam: int = 4
    length_penalty: float = 1.0  # beam scores are divided by length ** this
    max_output_length: int = 40


@dataclass(frozen=True)
class BackTranslatorConfig:
    """The evaluator: trained on ground-truth poses only, then frozen (SPEC §8)."""

    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(output_dir="runs/backtranslator"))
    model: BackTranslatorModelConfig = field(default_factory=BackTranslatorModelConfig)
    testing: TestingConfig = field(default_factory=TestingConfig)

    def __post_init__(self) -> None:
        m = self.model
        if m.width % m.heads:
            raise ConfigError(f"model.heads: model.width {m.width} is not divisible by {m.heads} heads")
        for key in ("width", "encoder_layers", "decoder_layers", "frame_stride", "beam", "max_output_length"):
            if getattr(m, key) < 1:
                raise ConfigError(f"model.{key}: must be ≥ 1, got {getattr(m, key)}")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    testing: TestingConfig = field(default_factory=TestingConfig)

    def __post_init__(self) -> None:
        _check_ranges(self)


def _check_ranges(cfg: Config) -> None:
    positive = {
        "model.width": cfg.model.width, "model.focal.layers": cfg.model.focal.layers,
        "model.focal.width": cfg.model.focal.width, "model.general.layers": cfg.model.general.layers,
        "model.general.heads": cfg.model.general.heads, "diffusion.timesteps": cfg.diffusion.timesteps,
        "diffusion.sampling_steps": cfg.diffusion.sampling_steps, "training.batch_size": cfg.training.batch_size,
        "training.max_steps": cfg.training.max_steps, "model.focal.tcn_kernel": cfg.model.focal.tcn_kernel,
        "data.skip_frames": cfg.data.skip_frames,
    }  # fmt: skip
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}: must be ≥ 1, got {value}")
    if cfg.model.focal.neighbors < 0:
        raise ConfigError(f"model.focal.neighbors: must be ≥ 0, got {cfg.model.focal.neighbors}")
    if cfg.model.focal.tcn_kernel % 2 == 0:
        raise ConfigError(f"model.focal.tcn_kernel: must be odd, got {cfg.model.focal.tcn_kernel}")
    for key, width, heads in (
        ("model.general.heads", cfg.model.width, cfg.model.general.heads),
        ("model.gloss_encoder.heads", cfg.model.width, cfg.model.gloss_encoder.heads),
    ):
        if width % heads:
            raise ConfigError(f"{key}: model.width {width} is not divisible by {heads} heads")
    if cfg.diffusion.sampling_steps > cfg.diffusion.timesteps:
        raise ConfigError("diffusion.sampling_steps: more sampling steps than diffusion timesteps")
    if cfg.training.hand_weight < 0:
        raise ConfigError(f"training.hand_weight: must be ≥ 0, got {cfg.training.hand_weight}")
    if cfg.training.warmup_steps < 0:
        raise ConfigError(f"training.warmup_steps: must be ≥ 0, got {cfg.training.warmup_steps}")
    if cfg.diffusion.data_scale <= 0:
        raise ConfigError(f"diffusion.data_scale: must be > 0, got {cfg.diffusion.data_scale}")
    if not 0.0 <= cfg.diffusion.eta <= 1.0:
        raise ConfigError(f"diffusion.eta: must be in [0, 1], got {cfg.diffusion.eta}")


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Checks/coerces ``value`` against a type hint, raising :class:`ConfigError` naming ``key``."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return _build(hint, value, key)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: {value!r} does not fit {_type_name(hint)}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML (YAML 1.1) reads 3e-4 as a string; accept what float() reads
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover


def _type_name(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    names = [getattr(a, "__name__", str(a)) for a in args]
    return " or ".join(names) + (" or null" if type(None) in typing.get_args(hint) else "")


def _build(cls: type, raw: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"unknown key {where!r}; valid keys here: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in raw.items()}
    return cls(**kwargs)


def from_dict(raw: dict | None, schema: type = Config) -> Any:
    """Builds and validates a config (a :class:`Config` by default) from nested dictionaries.

    Missing keys take their defaults.
    """
    return _build(schema, raw or {})


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Applies ``key.sub=value`` strings (values parsed as YAML) to a nested dictionary, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return raw


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections")
    return raw


def _merge(base: dict, top: dict) -> dict:
    """Deep merge: keys of ``top`` win; sections merge recursively."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(
    paths: Path | str | list[Path | str] | None = None, overrides: list[str] | None = None, schema: type = Config
) -> Any:
    """Loads YAML config files (later ones override earlier ones), then ``--set`` overrides.

    Layering lets an ablation file (``configs/ablations/*.yaml``) apply to any base config.
    """
    if paths is None:
        paths = []
    elif isinstance(paths, str | Path):
        paths = [paths]
    raw: dict = {}
    for path in map(Path, paths):
        raw = _merge(raw, _read_yaml(path))
    apply_overrides(raw, list(overrides or []))
    where = " + ".join(str(p) for p in paths)
    try:
        return from_dict(raw, schema)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}" if where else str(err)) from None
