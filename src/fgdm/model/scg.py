"""Semantic Consistent Guidance (docs/model.md §5): a CTC gloss recogniser on the General-stage output.

X^go (B, S, D_g) → V2S adapter → LSD (2 × Conv1d → BatchNorm → ReLU → MaxPool(2), lengths tracked)
→ GSD (BiLSTM, packed by length) → classifier (V + 1 classes, blank 0) → CTC against the glosses,
weighted per sample by w(t) = exp(−α t / T). Training only: never built or run at inference.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fgdm.config import SCGConfig
from fgdm.data.dataset import mask_counts
from fgdm.model.compiled import conv1d, dynamic, outside_graphs


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over (B, C, S) whose training statistics use valid positions only."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not self.training:
            return super().forward(x) * mask[:, None]
        m = mask[:, None].to(x.dtype)  # (B, 1, S)
        n = m.sum().clamp_min(1.0)
        mean = (x * m).sum(dim=(0, 2)) / n  # (C,)
        var = (((x - mean[None, :, None]) ** 2) * m).sum(dim=(0, 2)) / n
        with torch.no_grad():
            unbiased = var * n / (n - 1).clamp_min(1.0)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
            self.num_batches_tracked += 1
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return (y * self.weight[None, :, None] + self.bias[None, :, None]) * m


@outside_graphs  # its outputs' shapes depend on the lengths' values: torch.compile runs it as it is
def _ctc(log_probs: torch.Tensor, targets: torch.Tensor, counts: torch.Tensor):
    """Per-sample CTC of (S', B, V + 1) log-probabilities against (B, L) targets, blank 0; unalignable ones 0.
    ``counts``: (B, 2) frame and gloss counts on the host, where CTC reads its lengths."""
    ctc = nn.functional.ctc_loss(
        log_probs, targets, SCGBranch.output_length(counts[:, 0]), counts[:, 1], blank=0, reduction="none",
        zero_infinity=True,
    )  # fmt: skip
    return dynamic(ctc, 1)  # (B,)


def ctc_weight(t: torch.Tensor, timesteps: int, alpha: float) -> torch.Tensor:
    """w(t) = exp(−α t / T): strong guidance near clean poses, weak under heavy noise."""
    return torch.exp(-alpha * t.float() / timesteps)


class SCGBranch(nn.Module):
    """The semantic decoder and its CTC loss.

    Args:
        width: D_g, the General-stage width.
        num_glosses: V, the gloss vocabulary size; classes are V + 1 with the CTC blank at 0.
    """

    def __init__(self, width: int, num_glosses: int, cfg: SCGConfig, timesteps: int) -> None:
        super().__init__()
        self.cfg, self.timesteps = cfg, timesteps
        hidden = width // cfg.adapter_ratio
        self.adapter = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))  # V2S
        pad = cfg.conv_kernel // 2
        self.convs = nn.ModuleList(
            [nn.Conv1d(width, cfg.conv_width, cfg.conv_kernel, padding=pad),
             nn.Conv1d(cfg.conv_width, cfg.conv_width, cfg.conv_kernel, padding=pad)]
        )  # fmt: skip
        self.norms = nn.ModuleList([MaskedBatchNorm1d(cfg.conv_width) for _ in self.convs])
        self.lstm = nn.LSTM(
            cfg.conv_width, cfg.lstm_hidden, num_layers=cfg.lstm_layers, batch_first=True, bidirectional=True
        )
        self.classifier = nn.Linear(2 * cfg.lstm_hidden, num_glosses + 1)

    def forward(
        self, features: torch.Tensor, frame_mask: torch.Tensor, counts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gloss log-probabilities (B, S', V + 1) and output lengths (B,), S' = ⌈⌈S/2⌉/2⌉.

        ``counts``: the frame counts on the host in column 0 of a (B, ≥ 1) tensor, where the LSTM's packing reads
        its lengths, if the caller has them there (on a GPU, copying them from the mask waits for every kernel
        queued before)."""
        lengths = frame_mask.sum(1)
        h = self.adapter(features) * frame_mask[..., None]  # (B, S, D_g)
        h = h.transpose(1, 2)  # (B, D_g, S)
        mask = frame_mask
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = torch.relu(norm(conv1d(conv, h * mask[:, None]), mask))  # (B, C, S)
            # max-pooling by 2 in ceil mode, so a sequence of any length keeps at least one step: an odd length's
            # last step is paired with -inf (max_pool1d would make torch.compile specialise on the length)
            h = nn.functional.pad(h, (0, h.shape[-1] % 2), value=float("-inf")).unflatten(-1, (-1, 2)).amax(-1)
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
            mask = torch.arange(h.shape[-1], device=h.device)[None] < lengths[:, None]
        counts = frame_mask.sum(1, keepdim=True).cpu() if counts is None else counts
        return self._decode(h.transpose(1, 2), counts), lengths

    @outside_graphs  # packing reads the lengths on the host: torch.compile runs this part as it is
    def _decode(self, h: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """GSD: the BiLSTM over (B, S', C), packed by the lengths (zero past each length), and the classifier →
        log-probabilities (B, S', V + 1).

        The LSTM runs outside autocast, in its weights' dtype (float32 but under ``bf16-true``): CUDA's autocast
        would run it in float16 (whatever the autocast's dtype), where the small SCG loss's gradients underflow."""
        with torch.autocast(device_type=h.device.type, enabled=False):
            h = h.to(self.lstm.weight_ih_l0.dtype)
            lengths = self.output_length(counts[:, 0]).clamp_min(1)
            packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
        out = pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])[0]
        return dynamic(torch.log_softmax(self.classifier(out).float(), dim=-1), 2)

    def loss(
        self,
        features: torch.Tensor,
        frame_mask: torch.Tensor,
        gloss: torch.Tensor,
        gloss_mask: torch.Tensor,
        t: torch.Tensor,
        counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """w(t_b) · CTC_b averaged over the batch (paper Eq. 17–18); unalignable samples contribute 0.

        With ``scg.per_gloss`` each CTC_b is divided by its gloss count |G_b| as well. ``counts``: the frame and
        gloss counts (B, 2) on the host (:attr:`Batch.counts <fgdm.data.dataset.Batch.counts>`), where packing and CTC
        read them; without them they are copied there from the masks, which on a GPU waits for every kernel
        queued before.
        """
        target_lengths = gloss_mask.sum(1)
        if counts is None:
            counts = mask_counts(frame_mask, gloss_mask).cpu()  # both in one copy
        log_probs, _ = self(features, frame_mask, counts)
        targets = (gloss + 1).masked_fill(~gloss_mask, 0)  # class 0 is the blank
        per_sample = _ctc(log_probs.transpose(0, 1), targets, counts)
        if self.cfg.per_gloss:
            per_sample = per_sample / target_lengths.clamp_min(1)
        return (ctc_weight(t, self.timesteps, self.cfg.alpha) * per_sample).mean()

    @staticmethod
    def output_length(frames: int | torch.Tensor) -> int | torch.Tensor:
        """S' = ⌈⌈S/2⌉/2⌉ = ⌈S/4⌉ after the two ceil-mode poolings, for a count or a tensor of counts."""
        return -(-frames // 4)

    @staticmethod
    def alignable(frames: int, glosses: Sequence[str]) -> bool:
        """Whether CTC can align ``glosses`` to a ``frames``-frame sequence's S' steps: one a gloss, and a blank
        between two alike. Where it cannot, the sample's L_SCG is 0 (``zero_infinity``), and teaches nothing."""
        return SCGBranch.output_length(frames) >= len(glosses) + sum(a == b for a, b in itertools.pairwise(glosses))
