"""The back-translation evaluator, in the spirit of Sign Language Transformers (docs/model.md §8).

A pose encoder (strided convolution + Transformer) with a CTC gloss-recognition head (→ WER) and a
Transformer text decoder (beam search → BLEU, ROUGE). Trained on ground-truth poses only, then
frozen and reused for every evaluation; its scores on ground truth are the ceiling row.
"""

from __future__ import annotations

import torch
from torch import nn

from fgdm.config import BackTranslatorModelConfig
from fgdm.data.vocab import Vocabulary
from fgdm.model.embeddings import PositionalEncoding
from fgdm.skeleton import PT50


class BackTranslator(nn.Module):
    """Poses → (gloss CTC log-probabilities, text).

    Shape: pose (B, S, J, 3) and frame_mask (B, S) → memory (B, S', D) with S' = ⌈S / stride⌉.
    """

    def __init__(
        self, num_glosses: int, num_words: int, cfg: BackTranslatorModelConfig, joints: int = PT50.num_joints
    ) -> None:
        super().__init__()
        self.cfg = cfg
        D = cfg.width
        self.input = nn.Linear(joints * 3, D)
        self.stride = cfg.frame_stride
        self.subsample = nn.Conv1d(D, D, kernel_size=2 * self.stride - 1, stride=self.stride, padding=self.stride - 1)
        self.pos = PositionalEncoding(D)
        enc = nn.TransformerEncoderLayer(D, cfg.heads, cfg.ff, cfg.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc, cfg.encoder_layers, norm=nn.LayerNorm(D), enable_nested_tensor=False)
        self.gloss_head = nn.Linear(D, num_glosses + 1)  # CTC blank at 0, gloss id g at g + 1
        self.embed = nn.Embedding(num_words, D, padding_idx=Vocabulary.pad_index)
        dec = nn.TransformerDecoderLayer(D, cfg.heads, cfg.ff, cfg.dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec, cfg.decoder_layers, norm=nn.LayerNorm(D))
        self.word_head = nn.Linear(D, num_words)

    # -- encoder ------------------------------------------------------------------------------
    def encode(self, pose: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, S = pose.shape[:2]
        keep = frame_mask[..., None].to(pose.dtype)
        h = self.input(pose.reshape(B, S, -1)) * keep  # (B, S, D)
        h = self.subsample(h.transpose(1, 2)).transpose(1, 2)  # (B, S', D)
        lengths = (frame_mask.sum(1) + self.stride - 1) // self.stride
        mask = torch.arange(h.shape[1], device=h.device)[None] < lengths[:, None]
        h = self.encoder(self.pos(h), src_key_padding_mask=~mask)
        return h * mask[..., None], mask

    @staticmethod
    def pool(memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over valid steps: (B, S', D) → (B, D), the FID feature of a sequence."""
        m = mask[..., None].to(memory.dtype)
        return (memory * m).sum(1) / m.sum(1).clamp_min(1.0)

    # -- heads --------------------------------------------------------------------------------
    def gloss_log_probs(self, memory: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.gloss_head(memory).float(), dim=-1)  # (B, S', G + 1)

    def word_logits(self, memory: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Next-word logits (B, T, W) for (B, T) input tokens (teacher forcing, causal)."""
        T = tokens.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).triu(1)
        h = self.decoder(
            self.pos(self.embed(tokens)), memory, tgt_mask=causal, tgt_is_causal=True,
            tgt_key_padding_mask=tokens == Vocabulary.pad_index, memory_key_padding_mask=~mask,
        )  # fmt: skip
        return self.word_head(h)

    def loss(self, pose: torch.Tensor, frame_mask: torch.Tensor, gloss: torch.Tensor, gloss_mask: torch.Tensor,
             words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """(total, CTC, translation) losses; ``words`` is (B, T) ``<s> w … </s>`` padded with ``<pad>``."""
        memory, mask = self.encode(pose, frame_mask)
        log_probs = self.gloss_log_probs(memory)
        ctc = nn.functional.ctc_loss(
            log_probs.transpose(0, 1), (gloss + 1).masked_fill(~gloss_mask, 0), mask.sum(1), gloss_mask.sum(1),
            blank=0, reduction="mean", zero_infinity=True,
        )  # fmt: skip
        logits = self.word_logits(memory, mask, words[:, :-1])
        ce = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), words[:, 1:].reshape(-1),
            ignore_index=Vocabulary.pad_index, label_smoothing=self.cfg.label_smoothing,
        )  # fmt: skip
        total = self.cfg.ctc_weight * ctc + self.cfg.translation_weight * ce
        return total, ctc, ce

    # -- decoding -----------------------------------------------------------------------------
    @staticmethod
    def ctc_greedy(log_probs: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Best-path CTC decoding: argmax, collapse repeats, drop blanks → gloss ids. ``<pad>``, ``<s>`` and ``</s>``
        are never targets, so never chosen: decoded, ``</s>`` would end a sentence there and drop what follows."""
        never = [1 + i for i in (Vocabulary.pad_index, Vocabulary.bos_index, Vocabulary.eos_index)]
        best = log_probs.index_fill(-1, torch.tensor(never, device=log_probs.device), float("-inf")).argmax(-1).cpu()
        out = []
        for b, n in enumerate(mask.sum(1).tolist()):
            seq, prev = [], -1
            for c in best[b, :n].tolist():
                if c != prev and c != 0:
                    seq.append(c - 1)
                prev = c
            out.append(seq)
        return out

    @torch.no_grad()
    def translate(self, memory: torch.Tensor, mask: torch.Tensor, beam: int | None = None) -> list[list[int]]:
        """Batched beam search over words; scores are log-probabilities / length ** length_penalty."""
        beam = beam or self.cfg.beam
        B, device = memory.shape[0], memory.device
        bos, eos = Vocabulary.bos_index, Vocabulary.eos_index
        mem = memory.repeat_interleave(beam, 0)
        mem_mask = mask.repeat_interleave(beam, 0)
        tokens = torch.full((B * beam, 1), bos, dtype=torch.long, device=device)
        scores = torch.full((B, beam), float("-inf"), device=device)
        scores[:, 0] = 0.0  # all beams start identical: keep one
        done = torch.zeros(B * beam, dtype=torch.bool, device=device)
        lengths = torch.zeros(B * beam, device=device)
        W = self.word_head.out_features
        # a finished beam only extends with <pad> at no cost: its row of log-probabilities
        pad_only = torch.full((W,), float("-inf"), device=device)
        pad_only[Vocabulary.pad_index] = 0.0
        for _ in range(self.cfg.max_output_length):
            logp = torch.log_softmax(self.word_logits(mem, mem_mask, tokens)[:, -1].float(), dim=-1)  # (B·k, W)
            # a select, not a masked assignment (on a GPU that would wait for the mask's count every step)
            logp = torch.where(done[:, None], pad_only, logp)
            cand = (scores.view(-1, 1) + logp).view(B, beam * W)
            scores, flat = cand.topk(beam, dim=1)  # (B, k)
            src = (flat // W) + torch.arange(B, device=device)[:, None] * beam
            word = (flat % W).view(-1, 1)
            src = src.view(-1)
            tokens = torch.cat([tokens[src], word], dim=1)
            lengths = lengths[src] + (~done[src]).float()
            done = done[src] | (word.view(-1) == eos)
            if done.all():
                break
        norm = scores.view(-1) / lengths.clamp_min(1.0) ** self.cfg.length_penalty
        best = norm.view(B, beam).argmax(1) + torch.arange(B, device=device) * beam
        out = []
        for row in tokens[best, 1:].tolist():
            words = []
            for w in row:
                if w in (eos, Vocabulary.pad_index):
                    break
                words.append(w)
            out.append(words)
        return out
