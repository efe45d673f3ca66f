"""The configuration schema: frozen dataclasses, one per section, with their defaults and range checks.

Sections: ``data``, ``training``, ``loss``, ``model`` (with ``gloss_encoder``, ``focal``, ``general``,
``scg``: :mod:`fgdm.config.model`), ``diffusion``, ``testing``; the back-translator has its own
(:class:`BackTranslatorConfig`).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Literal

from fgdm.config.model import ModelConfig

MAX_FRAMES = 2000  # 80 s at 25 fps: longer requests are mistakes (attention memory grows with the square)

# Sentences per split of the embedded synthetic language, wherever none are given (config, ``fgdm synth``).
SYNTH_SPLIT_SIZES = {"train": 1000, "dev": 100, "test": 100}
# Lightning's strategies that fgdm runs under (single process, and data-parallel across processes).
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "ddp_notebook", "fsdp")
SPAWNED = ("ddp_spawn", "ddp_notebook")  # Lightning's, refused with the reason (TrainingConfig.__post_init__)


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names the key and the valid choices.

    ``also``: the other keys a check between fields read (the message names the first), so that a ``--set`` of
    any of them takes the blame.
    """

    def __init__(self, message: str, also: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.also = also


def _expand_home(section: object, *keys: str) -> None:
    """Paths given as ``~/…`` (a ``--set`` value, which the shell leaves as it is) made the home's: one directory,
    where a literal ``~`` folder would hold some files and Lightning the others under the home."""
    for key in keys:
        value = getattr(section, key)
        if isinstance(value, str) and value.startswith("~"):
            object.__setattr__(section, key, os.path.expanduser(value))  # frozen: set once, while it is made


def _devices_problem(devices: int | str) -> str | None:
    """Why Lightning would refuse ``training.devices`` (None: it takes it): a count, -1 or auto (all), or a string
    of device indices such as "0,1" (or "1,": the device of index 1)."""
    if isinstance(devices, str) and re.fullmatch(r"\s*-?[0-9]+\s*", devices):
        devices = int(devices)  # Lightning reads "2" as 2 devices, "-1" as -1
    if isinstance(devices, int):
        return None if devices >= 1 or devices == -1 else f"must be ≥ 1 (or -1 for all, or auto), got {devices}"
    listed = re.fullmatch(r"\s*[0-9]+\s*(,\s*[0-9]+\s*)*,?", devices)
    indices = [int(x) for x in devices.split(",") if x.strip()] if listed else []
    if devices != "auto" and (not indices or len(set(indices)) < len(indices)):
        return f'must be a count ≥ 1, -1 or auto (all), or distinct device indices such as "0,1", got {devices!r}'
    return None


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None  # a PT-format directory (or synth manifest); None: the embedded synthetic data
    vocab: str | None = None  # gloss vocabulary file (src_vocab.txt); None: built from train
    skip_frames: int = 1  # keep every k-th frame (PT data is 25 fps: 2 gives 12.5), for every kind of data
    # the embedded synthetic language (data.path null): its seed (one seed is one language) and split sizes
    synth_seed: int = 0
    synth_train: int = SYNTH_SPLIT_SIZES["train"]
    synth_dev: int = SYNTH_SPLIT_SIZES["dev"]
    synth_test: int = SYNTH_SPLIT_SIZES["test"]

    def __post_init__(self) -> None:
        _expand_home(self, "path", "vocab")
        if self.skip_frames < 1:
            raise ConfigError(f"data.skip_frames: must be ≥ 1, got {self.skip_frames}")
        for key in ("synth_train", "synth_dev", "synth_test"):
            if getattr(self, key) < 0:
                raise ConfigError(f"data.{key}: must be ≥ 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class TrainingConfig:
    output_dir: str = "runs/fgdm"  # checkpoints/ (last, best), logs/ (CSV), config.json, gloss_vocab.txt
    max_steps: int = 100_000  # optimizer steps
    # a time budget as well: training stops after this many minutes of its fit loop (a resumed run's earlier
    # minutes count), writes its last checkpoint and reports the steps it reached; null: max_steps alone
    max_minutes: float | None = None
    batch_size: int = 64  # sequences per step (per process under ddp)
    lr: float = 1e-3  # Adam's learning rate (the peak, after any warm-up)
    clip_grad_norm: float = 5.0  # the gradients' global L2 norm is clipped to this
    warmup_steps: int = 0  # linear learning-rate warm-up from 0 over this many optimizer steps
    # after the warm-up: "plateau" multiplies the rate by scheduler_factor when the dev metric has not
    # improved (by more than 0.01 %) for more than scheduler_patience validations (PyTorch's ReduceLROnPlateau)
    # and stops training below min_lr; "cosine" decays it from lr to min_lr over max_steps (half a cosine), for
    # a fixed budget
    schedule: Literal["plateau", "cosine"] = "plateau"
    scheduler_patience: int = 7
    scheduler_factor: float = 0.7
    min_lr: float = 1e-4
    # an exponential moving average of the weights, updated every step with this decay (e.g. 0.999); sampling and
    # export use it when present; null: none
    ema_decay: float | None = None
    # decoupled weight decay (AdamW) on the weight matrices and embeddings, not on biases and norm gains;
    # 0 keeps plain Adam, as the paper
    weight_decay: float = 0.0
    # gloss dropout: the denoiser sees each training gloss as <unk> with this probability, so <unk> (every
    # gloss unseen in training) has a trained embedding; SCG's CTC targets keep the true glosses
    unk_rate: float = 0.0
    val_every: int = 1000  # steps between validations (dev DTW-MJE of sampled sequences; best.ckpt by it)
    val_batches: int | None = None  # dev batches (of testing.batch_size) per validation, over all processes; null: all
    # steps between rows of the CSV log (loss terms, learning rate). Its step column is Lightning's, the steps done
    # before the row's: step 10's training row and the validation after it read 9 (report.html adds the 1)
    log_every: int = 50
    devices: int | str = 1  # Lightning's: how many (or which) devices, -1 or auto for all
    num_nodes: int = 1  # machines, for multi-node data-parallel training
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"  # auto: a GPU when present
    strategy: Literal[STRATEGIES] = "auto"  # Lightning's: ddp for several GPUs or processes
    # Lightning's: bf16-mixed on GPUs that support it (autocast; the weights stay float32)
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "bf16-true", "64-true"] = "32-true"
    tf32: bool = True  # on NVIDIA GPUs: fp32 matmuls and convolutions in TF32 (far faster); CPUs unaffected
    # torch.compile of the training loss: true (mode "default") or one of its modes ("reduce-overhead": also CUDA
    # graphs on a GPU). Execution only, meant for GPUs where a step is bound by its host; the random draws stay
    # eager, so a run draws an eager run's numbers. Compiled once, with dynamic shapes, for batches of every size
    # and length (a minute or two on a CPU); with CUDA graphs each batch is padded to one of a few frame counts,
    # each recording its graph (fgdm/training/compiling.py, benchmarks/results/speed.md). On a CPU the fused ASGCN
    # kernel is faster than compiling.
    compile: bool | Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = False
    seed: int = 42  # initial weights, data order and the training draws (t, noise)
    num_workers: int = 0  # data-loading processes (0: in the training process)

    def __post_init__(self) -> None:
        _expand_home(self, "output_dir")
        for key in ("batch_size", "max_steps", "val_every", "log_every", "num_nodes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"training.{key}: must be ≥ 1, got {getattr(self, key)}")
        if (problem := _devices_problem(self.devices)) is not None:
            raise ConfigError(f"training.devices: {problem}")
        if self.accelerator == "cpu" and self.devices != "auto" and not str(self.devices).strip().isdigit():
            raise ConfigError(f"training.devices: the cpu accelerator takes a number of processes ≥ 1 (or auto), got "
                              f"{self.devices!r}", also=("training.accelerator",))  # fmt: skip
        if self.strategy in SPAWNED:
            raise ConfigError(f"training.strategy: {self.strategy} trains in processes it starts itself, which do not "
                              "hand their step count, optimizer state or figures back to the process that saves the "
                              "final checkpoint and reports the run: use ddp, the same data-parallel training with "
                              "processes started as commands")  # fmt: skip
        if not 0 <= self.seed < 2**32:  # NumPy's and Lightning's seeds are 32-bit
            raise ConfigError(f"training.seed: must be in [0, 2**32 − 1 = {2**32 - 1}], got {self.seed}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"training.max_minutes: must be > 0 (or null), got {self.max_minutes}")
        if self.val_batches is not None and self.val_batches < 1:
            raise ConfigError(f"training.val_batches: must be ≥ 1 (or null for all), got {self.val_batches}")
        if self.num_workers < 0:
            raise ConfigError(f"training.num_workers: must be ≥ 0, got {self.num_workers}")
        if self.warmup_steps < 0:
            raise ConfigError(f"training.warmup_steps: must be ≥ 0, got {self.warmup_steps}")
        if not self.lr > 0:
            raise ConfigError(f"training.lr: must be > 0, got {self.lr}")
        if self.schedule == "cosine" and not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"training.min_lr: the cosine schedule decays to it, so it must lie in [0, lr = "
                              f"{self.lr}], got {self.min_lr}", also=("training.lr", "training.schedule"))  # fmt: skip
        if not 0 <= self.unk_rate < 1:
            raise ConfigError(f"training.unk_rate: must be in [0, 1), got {self.unk_rate}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"training.weight_decay: must be ≥ 0, got {self.weight_decay}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"training.ema_decay: must be between 0 and 1 (or null), got {self.ema_decay}")
        if self.ema_decay is not None and self.precision == "bf16-true":  # (0.999: 95 % of it unchanged after 30 steps)
            raise ConfigError("training.ema_decay: under bf16-true the average is held in bfloat16 too, whose 8-bit "
                              "mantissa rounds each step's small update away, so it barely moves; bf16-mixed keeps "
                              "float32 weights", also=("training.precision",))  # fmt: skip
        if self.schedule == "plateau" and self.lr < self.min_lr:
            raise ConfigError(f"training.min_lr: the plateau schedule stops training once the rate falls below it, "
                              f"so it must not exceed lr = {self.lr}, got {self.min_lr}",
                              also=("training.lr", "training.schedule"))  # fmt: skip
        if not self.clip_grad_norm >= 0:
            raise ConfigError(f"training.clip_grad_norm: must be ≥ 0 (0: no clipping), got {self.clip_grad_norm}")
        if self.scheduler_patience < 0:
            raise ConfigError(f"training.scheduler_patience: must be ≥ 0, got {self.scheduler_patience}")
        if not 0 < self.scheduler_factor < 1:
            raise ConfigError(f"training.scheduler_factor: must be between 0 and 1, got {self.scheduler_factor}")


@dataclass(frozen=True)
class LossConfig:
    """L = L_joint + bone_weight·L_bone + scg_weight·L_SCG + length_weight·L_length (docs/model.md §7)."""

    # Where L_joint is measured: "pose" = PT units (the paper); "model" = the diffusion representation
    # (diffusion.standardise / hands_relative), where every coordinate has about unit spread.
    joint_space: Literal["pose", "model"] = "pose"
    hand_weight: float = 1.0  # weight of the 42 hand joints against the 8 body joints in L_joint
    bone_weight: float = 0.1  # λ
    bone_mode: Literal["vector", "direction"] = "vector"  # L_bone on bone vectors, or unit directions (released code)
    # the terms of the parts a model may lack: the SCG branch (model.scg.enabled), the length head
    scg_weight: float = 1e-4  # γ
    length_weight: float = 0.01  # the length head's loss (log frame count)


@dataclass(frozen=True)
class DiffusionConfig:
    timesteps: int = 1000  # T
    schedule: Literal["cosine"] = "cosine"  # the noise schedule ᾱ_t (Nichol & Dhariwal's cosine)
    cosine_s: float = 0.008  # its offset s
    sampling_steps: int = 5  # I
    eta: float = 1.0  # DDIM's η: 1.0 as the released code; 0 = deterministic DDIM
    # The representation diffusion works in (fgdm/representation.py): z = data_scale · (r(x) − μ) / σ.
    # data_scale: one global factor (PT coordinates have std ≈ 0.2); 1.0 with the two switches off is
    # raw coordinates, as the released code.
    data_scale: float = 1.0
    # μ, σ: per-coordinate statistics of the training frames (motion diffusion models' normalisation).
    standardise: bool = False
    # r: hand joints relative to the wrist they hang from (finger shape apart from arm motion).
    hands_relative: bool = False
    # the timesteps training draws t from: "uniform" over 0 … T−1 (the paper); "sampling" only the
    # sampling_steps timesteps the sampler visits (999, 799, 599, 399, 199), where the model is used
    train_timesteps: Literal["uniform", "sampling"] = "uniform"


@dataclass(frozen=True)
class TestingConfig:
    # the frame counts fgdm generate and evaluate sample unless --length says otherwise: the reference's (gt),
    # the length head's (predicted), or fixed_length for every sequence; --gloss takes gt as predicted
    length: Literal["gt", "predicted", "fixed"] = "gt"
    fixed_length: int = 130
    batch_size: int = 32  # sequences sampled at once in validation
    seed: int = 0  # validation's sampling seed (each dev batch: seed + its index), so validations compare

    def __post_init__(self) -> None:
        for key in ("fixed_length", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"testing.{key}: must be ≥ 1, got {getattr(self, key)}")
        if self.length == "fixed" and self.fixed_length > MAX_FRAMES:
            raise ConfigError(f"testing.fixed_length: sampling takes at most {MAX_FRAMES} frames, got "
                              f"{self.fixed_length}")  # fmt: skip
        if not 0 <= self.seed < 2**32:  # as training.seed; each dev batch seeds a generator with seed + its index
            raise ConfigError(f"testing.seed: must be in [0, 2**32 − 1 = {2**32 - 1}], got {self.seed}")


@dataclass(frozen=True)
class BackTranslatorModelConfig:
    """The evaluator's network: a pose encoder with a CTC gloss head and a text decoder (docs/model.md §8)."""

    width: int = 256  # model width of encoder and decoder
    encoder_layers: int = 3  # Transformer layers over the (strided) pose frames
    decoder_layers: int = 2  # Transformer layers of the text decoder
    heads: int = 4  # attention heads in both
    ff: int = 1024  # feed-forward width in both
    dropout: float = 0.1  # in both (training only)
    frame_stride: int = 2  # a strided convolution shortens the pose sequence before the encoder
    ctc_weight: float = 1.0  # gloss recognition (CTC) loss weight
    translation_weight: float = 1.0  # text cross-entropy weight
    label_smoothing: float = 0.1  # of the text cross-entropy
    beam: int = 4  # beam search width of the translations
    length_penalty: float = 1.0  # beam scores are divided by length ** this
    max_output_length: int = 40  # tokens per translation at most


@dataclass(frozen=True)
class BackTranslatorConfig:
    """The evaluator: trained on ground-truth poses only, then frozen (docs/model.md §8)."""

    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(output_dir="runs/backtranslator"))
    model: BackTranslatorModelConfig = field(default_factory=BackTranslatorModelConfig)
    testing: TestingConfig = field(default_factory=TestingConfig)

    def __post_init__(self) -> None:
        m = self.model
        for key in ("width", "encoder_layers", "decoder_layers", "heads", "ff", "frame_stride", "beam",
                    "max_output_length"):  # fmt: skip
            if getattr(m, key) < 1:
                raise ConfigError(f"model.{key}: must be ≥ 1, got {getattr(m, key)}")
        if m.width % m.heads:
            raise ConfigError(
                f"model.heads: model.width {m.width} is not divisible by {m.heads} heads", ("model.width",)
            )
        for key in ("dropout", "label_smoothing"):
            if not 0 <= getattr(m, key) < 1:
                raise ConfigError(f"model.{key}: must be in [0, 1), got {getattr(m, key)}")
        for key in ("ema_decay", "unk_rate", "compile"):  # the generator's: never silently recorded and ignored
            if getattr(self.training, key) != getattr(TrainingConfig, key):
                raise ConfigError(f"training.{key}: a setting of the generator's training; the back-translator trains "
                                  f"without it (got {getattr(self.training, key)!r})")  # fmt: skip


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    testing: TestingConfig = field(default_factory=TestingConfig)

    def __post_init__(self) -> None:
        _check_ranges(self)


def _check_ranges(cfg: Config) -> None:
    positive = (
        "model.width", "model.focal.layers", "model.focal.width", "model.focal.tcn_kernel", "model.general.layers",
        "model.general.heads", "model.general.ff", "model.gloss_encoder.layers", "model.gloss_encoder.heads",
        "model.gloss_encoder.ff", "model.scg.conv_kernel", "model.scg.conv_width", "model.scg.adapter_ratio",
        "model.scg.lstm_hidden", "model.scg.lstm_layers", "diffusion.timesteps", "diffusion.sampling_steps",
    )  # fmt: skip
    for key in positive:
        value = functools.reduce(getattr, key.split("."), cfg)
        if value < 1:
            raise ConfigError(f"{key}: must be ≥ 1, got {value}")
    if cfg.model.focal.enabled and not (cfg.model.focal.topology or cfg.model.focal.contextual):
        raise ConfigError("model.focal.topology: false beside model.focal.contextual: false leaves ASGCN no graph to "
                          "convolve over; keep one of them (or both)", ("model.focal.contextual",))  # fmt: skip
    if cfg.model.focal.neighbors < 0:
        raise ConfigError(f"model.focal.neighbors: must be ≥ 0, got {cfg.model.focal.neighbors}")
    for key, kernel in (("model.focal.tcn_kernel", cfg.model.focal.tcn_kernel),
                        ("model.scg.conv_kernel", cfg.model.scg.conv_kernel)):  # fmt: skip
        if kernel % 2 == 0:  # an even kernel would add a frame: the masks would no longer fit
            raise ConfigError(f"{key}: must be odd, got {kernel}")
    for key, width, heads in (
        ("model.general.heads", cfg.model.width, cfg.model.general.heads),
        ("model.gloss_encoder.heads", cfg.model.width, cfg.model.gloss_encoder.heads),
    ):
        if width % heads:
            raise ConfigError(f"{key}: model.width {width} is not divisible by {heads} heads", ("model.width",))
    if cfg.diffusion.sampling_steps > cfg.diffusion.timesteps:
        raise ConfigError(
            f"diffusion.sampling_steps: {cfg.diffusion.sampling_steps} sampling steps are more than "
            f"diffusion.timesteps = {cfg.diffusion.timesteps}",
            ("diffusion.timesteps",),
        )
    for key in ("hand_weight", "bone_weight", "scg_weight", "length_weight"):
        if getattr(cfg.loss, key) < 0:
            raise ConfigError(f"loss.{key}: must be ≥ 0, got {getattr(cfg.loss, key)}")
    if cfg.diffusion.data_scale <= 0:
        raise ConfigError(f"diffusion.data_scale: must be > 0, got {cfg.diffusion.data_scale}")
    if not 0.0 <= cfg.diffusion.eta <= 1.0:
        raise ConfigError(f"diffusion.eta: must be in [0, 1], got {cfg.diffusion.eta}")
    if not cfg.diffusion.cosine_s > 0:
        raise ConfigError(f"diffusion.cosine_s: must be > 0, got {cfg.diffusion.cosine_s}")
    for key, p in (("gloss_encoder", cfg.model.gloss_encoder.dropout), ("general", cfg.model.general.dropout)):
        if not 0 <= p < 1:
            raise ConfigError(f"model.{key}.dropout: must be in [0, 1), got {p}")
