"""The ``model`` section of the configuration: the network's sizes and switches (docs/model.md §4, §5; the length
head §6), frozen dataclasses with their defaults (the paper's); their ranges are checked with the whole config
(:mod:`fgdm.config.schema`). Every ablation row (configs/ablations/) is a setting of these switches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class GlossEncoderConfig:
    """The Transformer encoder of the gloss sequence (its width is model.width, D_g)."""

    layers: int = 2  # Transformer encoder layers
    heads: int = 4  # attention heads
    ff: int = 2048  # feed-forward width
    dropout: float = 0.0  # in the encoder's layers (training only)


@dataclass(frozen=True)
class FocalConfig:
    enabled: bool = True  # false: the General-only baseline (no Focal stage)
    layers: int = 3  # L1
    width: int = 16  # D_f
    neighbors: int = 3  # n: contextual window ±n frames
    contextual: bool = True  # A_a
    semantic_mask: bool = True  # M
    topology: bool = True  # A_b
    tcn_kernel: int = 9  # the TCN's temporal convolution width, in frames
    # How A_b's one-hop adjacency is degree-normalised: "receiving" = D^-1 A, each joint averages its
    # neighbourhood (the paper); "sending" = A D^-1, divided by the sender's degree (ST-GCN's code, the
    # authors' release and fgdm 0.1).
    prior_norm: Literal["receiving", "sending"] = "receiving"
    # Execution only (results are identical), PyTorch path on the CPU: ASGCN works through about this many
    # frames (B·s) at a time so its (2n+1)·J·J maps stay in cache, recomputing each chunk in the backward
    # pass. 0 = all frames at once (more memory). GPUs always take all frames at once (chunks would only
    # multiply kernel launches). The C kernel (below) goes frame by frame.
    chunk_frames: int = 64
    # Execution only: "auto" runs ASGCN as one fused C kernel (fgdm/model/kernels/asgcn.c, compiled on first
    # use) for float32 on the CPU when a C compiler is present, else the PyTorch path; "c" insists on the
    # kernel, "torch" never uses it. The Focal blocks' LayerNorms follow the same choice (the library's
    # LayerNorm over narrow rows). The kernel computes the same equations (equivalence tests).
    kernel: Literal["auto", "c", "torch"] = "auto"


@dataclass(frozen=True)
class GeneralConfig:
    layers: int = 2  # L2: Transformer decoder layers over the frames
    heads: int = 4  # attention heads
    ff: int = 2048  # feed-forward width
    dropout: float = 0.1  # in the decoder's layers (training only)
    # frames attend to every frame, or only to earlier ones (parity with the released code)
    attention: Literal["bidirectional", "causal"] = "bidirectional"


@dataclass(frozen=True)
class SCGConfig:
    enabled: bool = True  # its weight γ is loss.scg_weight
    alpha: float = 10.0  # w(t) = exp(−α t / T)
    adapter_ratio: int = 4  # V2S bottleneck D_g / ratio
    conv_width: int = 1024  # channels of the recogniser's temporal convolutions
    conv_kernel: int = 5  # their width, in frames
    lstm_hidden: int = 512  # per direction
    lstm_layers: int = 2  # bidirectional LSTM layers before the CTC head
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
    length_head: bool = True  # predicts the frame count from the glosses (--length predicted)
    # Progress through the sequence (i / S for frames, l / L for glosses, as Progressive Transformers'
    # counter) added as sinusoidal features to both: alignment of frames to glosses is then easy to
    # learn. Not in the paper (its frames carry absolute positions only).
    counter: bool = False
    # False: the length head learns from a detached gloss encoding, so its loss never trains the encoder
    # the denoiser conditions on. True lets its gradient into the gloss encoder (as fgdm 0.1 did).
    length_head_grad: bool = False
