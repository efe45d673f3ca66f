"""The back-translator's beam search against one that takes finished hypotheses out of the beam.

    python benchmarks/beam_search.py BT_CKPT DATA_DIR [--split test ...] [--beams 4 8] [--hyp NAME=DIR ...]
        [--out runs/beam_search.md]

fgdm's search (``BackTranslator.translate``) keeps a hypothesis that has ended in the beam, extended by
``<pad>`` at no cost, so it holds one of the k places while it stays among the k best by log-probability; the
translation is the best of the last beam by log-probability / length ** length_penalty. OpenNMT-py's way, the
*pooled* search here, takes an ended hypothesis out of the beam into its sentence's pool (the beam goes on
with k unfinished ones) and ends a sentence when the best candidate of a step ends; the translation is the
best of the pool by the same normalised score. (The SLT code, built on JoeyNMT, does a third thing: ended
hypotheses stay in the beam and keep being extended, and GNMT's length penalty ((5 + n) / 6) ** α scores
them.) Each split's ground truth (and each ``--hyp`` directory's poses of that split, e.g. ``fgdm generate``
output, read as ``fgdm evaluate --hyp`` reads them: frame rates included) is back-translated with both searches
and scored with the protocol's BLEU and ROUGE-L. The table goes to ``--out``: Markdown, or JSON rows where its name
ends in ``.json`` (the hand-written analysis is in benchmarks/results/beam_search.md).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import InputError, positive_int, refuse_existing, run  # a sibling module

from fgdm.data.corpus import PTCorpus
from fgdm.data.dataset import pad_sequences
from fgdm.data.hypotheses import names_elsewhere, read_hypotheses
from fgdm.data.pt import DataFormatError
from fgdm.data.vocab import Vocabulary
from fgdm.evaluation.backtranslation import load_backtranslator
from fgdm.evaluation.scores import reference_text
from fgdm.metrics.text import bleu, rouge_l
from fgdm.model.backtranslator import BackTranslator


@torch.no_grad()
def pooled_search(model: BackTranslator, memory: torch.Tensor, mask: torch.Tensor, k: int) -> list[list[int]]:
    """Beam search in which an ended hypothesis (``</s>`` or the length limit) leaves the beam for its sentence's
    pool; a sentence ends when the best-scored candidate of a step ends."""
    B, device = memory.shape[0], memory.device
    L, W, alpha = model.cfg.max_output_length, model.word_head.out_features, model.cfg.length_penalty
    eos, pad = Vocabulary.eos_index, Vocabulary.pad_index
    mem, mem_mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    tokens = torch.full((B * k, L + 1), pad, dtype=torch.long, device=device)
    tokens[:, 0] = Vocabulary.bos_index
    scores = torch.full((B, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    best = torch.full((B, L + 1), pad, dtype=torch.long, device=device)
    best_score = torch.full((B,), float("-inf"), device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    rows = torch.arange(B, device=device)
    for step in range(1, L + 1):
        logp = torch.log_softmax(model.word_logits(mem, mem_mask, tokens[:, :step])[:, -1].float(), dim=-1)
        scores, flat = (scores.view(-1, 1) + logp).view(B, k * W).topk(k, dim=1)
        tokens = tokens[(flat // W + rows[:, None] * k).view(-1)]
        word = flat % W
        tokens[:, step] = word.view(-1)
        finished = ((word == eos) | (step == L)) & scores.isfinite() & ~ended[:, None]
        top, arg = torch.where(finished, scores / step**alpha, float("-inf")).max(1)
        better = top > best_score
        best = torch.where(better[:, None], tokens.view(B, k, -1)[rows, arg], best)
        best_score = torch.maximum(best_score, top)
        ended |= finished[:, 0]
        scores = scores.masked_fill(finished | ended[:, None], float("-inf"))
        if bool(ended.all()):
            break
    return [list(itertools.takewhile(lambda w: w not in (eos, pad), row[1:])) for row in best.tolist()]


def translations(bt, poses: list[np.ndarray], search: str, k: int, batch_size: int = 32) -> list[str]:
    model = bt.model
    order = np.argsort([len(p) for p in poses], kind="stable")
    out: dict[int, str] = {}
    for start in range(0, len(poses), batch_size):
        idx = order[start : start + batch_size]
        x, mask = pad_sequences([np.asarray(poses[i], dtype=np.float32) for i in idx], 0.0, torch.float32)
        memory, mmask = model.encode(x, mask)
        words = model.translate(memory, mmask, beam=k) if search == "fgdm" else pooled_search(model, memory, mmask, k)
        out.update({int(i): " ".join(bt.text_vocab.decode(w)) for i, w in zip(idx, words, strict=True)})
    return [out[i] for i in range(len(poses))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("backtranslator", metavar="BT_CKPT", help="a trained back-translator checkpoint")
    ap.add_argument("data", metavar="DATA_DIR", help="the PT-format data directory whose splits it reads")
    ap.add_argument("--split", nargs="+", default=["test"], help="splits to back-translate (default test)")
    ap.add_argument("--beams", nargs="+", type=positive_int, default=[4, 8], help="beam sizes (default 4 8)")
    ap.add_argument("--hyp", nargs="*", default=[], help="NAME=DIR: generated poses of the splits it has")
    ap.add_argument("--out", type=Path, default=Path("runs/beam_search.md"), help="(default runs/beam_search.md)")
    ap.add_argument("--overwrite", action="store_true", help="replace --out")
    args = ap.parse_args()
    refuse_existing([args.out], args.overwrite)
    hyps = []
    for h in args.hyp:
        name, _, path = h.partition("=")
        if not name or not Path(path).is_dir():
            raise InputError(f"--hyp {h}: expected NAME=DIR, DIR a directory of generated poses")
        hyps.append((name, path))
    torch.set_num_threads(1)
    bt = load_backtranslator(args.backtranslator, "cpu")
    rows, scored = [], set()  # scored: the --hyp systems read for some split
    for split in args.split:
        corpus = PTCorpus.read(args.data, split, bt.cfg.data.skip_frames)
        refs = [reference_text(t) for t in corpus.texts()]
        samples = [corpus[i] for i in range(len(corpus))]
        systems = [("ground truth", [s.pose for s in samples])]
        for name, path in hyps:
            try:  # as evaluate --hyp reads them: frame rates, files of another split refused
                got = read_hypotheses(path, split, [s.name for s in samples], 25 / bt.cfg.data.skip_frames,
                                      lengths=[len(s.pose) for s in samples], glosses=[s.glosses for s in samples],
                                      elsewhere=functools.partial(names_elsewhere, args.data, split))  # fmt: skip
            except DataFormatError as err:  # none of the split's files, or loose ones of another split: skipped
                if (Path(path) / f"{split}.skels").is_file() or (Path(path) / split).is_dir():
                    raise
                print(f"--hyp {name}={path}: not {split}'s files ({err}); skipped", file=sys.stderr)
                continue
            for said in got.notes(25 / bt.cfg.data.skip_frames):
                print(f"--hyp {name}={path}: {said}", file=sys.stderr)
            systems.append((name, got.poses))
            scored.add(name)
        for name, poses in systems:
            for k in args.beams:
                for search in ("fgdm", "pooled"):
                    start = time.perf_counter()
                    hyp = translations(bt, poses, search, k)
                    rows.append({"split": split, "sentences": len(refs), "system": name, "beam": k, "search": search,
                                 "bleu4": round(bleu(hyp, refs)["bleu4"], 2), "rouge_l": round(rouge_l(hyp, refs), 2),
                                 "mean_words": round(float(np.mean([len(h.split()) for h in hyp])), 2),
                                 "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
    unread = [f"{name}={path}" for name, path in hyps if name not in scored]
    if unread:  # the table's command would name a system it has no row of
        raise InputError(f"--hyp {', '.join(unread)}: files of none of the splits {', '.join(args.split)}; nothing "
                         "written")  # fmt: skip
    head = "| split (sentences) | system | beam | search | BLEU-4 | ROUGE-L | words per translation | seconds |"
    hyp_args = "".join(f" --hyp {name}=DIR" for name, _ in hyps)
    command = f"python benchmarks/beam_search.py BT_CKPT DATA_DIR --split {' '.join(args.split)} --beams " + " ".join(
        map(str, args.beams)
    )
    lines = [f"`{command}{hyp_args}`", "", head, "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['split']} ({r['sentences']}) | {r['system']} | {r['beam']} | {r['search']} | {r['bleu4']} | "
              f"{r['rouge_l']} | {r['mean_words']} | {r['seconds']} |" for r in rows]  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".json":
        args.out.write_text(json.dumps({"command": command + hyp_args, "rows": rows}, indent=1) + "\n")
    else:
        args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run(main)
