"""The frozen back-translator: loading it, and reading poses back into glosses, text and features."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fgdm.checkpoint import read_checkpoint, state_mismatch, substate
from fgdm.config import BackTranslatorConfig, from_dict
from fgdm.data.dataset import pad_sequences
from fgdm.data.vocab import Vocabulary
from fgdm.model.backtranslator import BackTranslator
from fgdm.runtime import one_thread_after_fork, resolve_device


@dataclass
class LoadedBackTranslator:
    """The evaluator rebuilt from its checkpoint, with its config and both vocabularies."""

    model: BackTranslator
    cfg: BackTranslatorConfig
    gloss_vocab: Vocabulary
    text_vocab: Vocabulary
    step: int = 0  # its training step
    weights: str = ""  # the SHA-256 of its weights (names and values), 16 hex digits: the same evaluator, or not


def weights_digest(model: torch.nn.Module) -> str:
    """16 hex digits of the SHA-256 of a model's state (each name and its values' bytes, in order): reports
    scored by back-translators of the same digest are comparable, whatever their files' names and optimiser state."""
    digest = hashlib.sha256()
    for name, t in model.state_dict().items():
        digest.update(name.encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_backtranslator(path: Path | str, device: str | torch.device = "auto") -> LoadedBackTranslator:
    """The frozen evaluator from its checkpoint (eval mode, no gradients)."""
    ckpt = read_checkpoint(path, "back-translator checkpoint")
    hp = ckpt["hyper_parameters"]
    if isinstance(hp, dict) and "vocab" in hp and "text_vocab" not in hp:
        raise ValueError(f"{path}: a generator's checkpoint, not a back-translator's (fgdm backtranslator train "
                         "makes one)")  # fmt: skip
    try:
        cfg = from_dict(hp["config"], BackTranslatorConfig)
        gv, tv = Vocabulary(hp["gloss_vocab"]), Vocabulary(hp["text_vocab"])
    except (KeyError, TypeError, ValueError) as err:  # a generator's or a damaged checkpoint
        raise ValueError(f"{path}: not a back-translator checkpoint ({type(err).__name__}: {err})") from None
    with torch.random.fork_rng(devices=[]):  # built on the CPU; its initial weights are overwritten: no draw
        model = BackTranslator(len(gv), len(tv), cfg.model)
    try:
        model.load_state_dict(substate(ckpt["state_dict"], "model."))
    except RuntimeError as err:
        raise ValueError(f"{path}: its weights do not fit its stored config ({state_mismatch(err)})") from None
    weights = weights_digest(model)
    model.eval().requires_grad_(False).to(resolve_device(device))
    one_thread_after_fork()  # as load_for_sampling: a process forked from this one would otherwise hang
    return LoadedBackTranslator(model, cfg, gv, tv, int(ckpt.get("global_step", 0)), weights)


@torch.no_grad()
def back_translate(
    bt: LoadedBackTranslator, poses: Sequence[np.ndarray], batch_size: int = 32, progress: bool = False, desc: str = ""
) -> tuple[list[str], list[str], np.ndarray]:
    """(gloss strings, text strings, (N, D) features) for a list of (S_i, J, 3) sequences."""
    model = bt.model
    device = next(model.parameters()).device
    order = np.argsort([len(p) for p in poses], kind="stable")  # similar lengths together
    results: dict[int, tuple[str, str, np.ndarray]] = {}
    for start in tqdm(range(0, len(poses), batch_size), desc=desc, disable=not progress):
        idx = order[start : start + batch_size]
        x, mask = pad_sequences([np.asarray(poses[i], dtype=np.float32) for i in idx], 0.0, torch.float32)
        memory, mmask = model.encode(x.to(device), mask.to(device))
        g = model.ctc_greedy(model.gloss_log_probs(memory), mmask)
        t = model.translate(memory, mmask)
        f = model.pool(memory, mmask).float().cpu().numpy()
        for b, i in enumerate(idx):
            results[int(i)] = (" ".join(bt.gloss_vocab.decode(g[b])), " ".join(bt.text_vocab.decode(t[b])), f[b])
    glosses, texts, feats = zip(*(results[i] for i in range(len(poses))), strict=True)
    return list(glosses), list(texts), np.stack(feats)
