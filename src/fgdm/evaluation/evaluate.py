"""The evaluation protocol (SPEC §8): back-translation, DTW-MJE, FID, diversity; JSON and Markdown reports.

Rows: ground truth (the ceiling), the model, the trivial mean-pose baseline (DTW-MJE rewards static
average motion, so a model must beat it), and optionally poses made by another system.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fgdm.data.corpus import Corpus, Sample
from fgdm.evaluation.backtranslator import tokenize_text
from fgdm.evaluation.bt_training import LoadedBackTranslator
from fgdm.evaluation.dtw import dtw_mje_parts
from fgdm.evaluation.handshape import finger_length_ratio, handshape_agreement
from fgdm.evaluation.metrics import bleu, diversity, frechet_distance, rouge_l, wer

DEFINITIONS = {
    "BLEU-n": "corpus BLEU (sacrebleu, tokenize=none, no smoothing), cumulative n-grams, × 100, of the "
    "back-translator's beam-search translation against the reference text (lower-cased, punctuation split)",
    "ROUGE": "ROUGE-L: longest-common-subsequence F-measure with β = 1.2, per sentence, averaged, × 100",
    "WER": "corpus word error rate (S + D + I) / N × 100 of the back-translator's CTC gloss recognition "
    "(best path) against the reference glosses",
    "DTW-MJE": "dynamic time warping with an L1 frame cost (summed over the joints' coordinates), the path "
    "total divided by the reference length, averaged over sequences; 'all' = 50 joints, 'body' = joints "
    "0–7, 'hands' = joints 8–49",
    "FID": "Fréchet distance between Gaussians fitted to the back-translator's pose-encoder features "
    "(mean over time, one vector per sequence) of the ground-truth and of the system's test sequences",
    "diversity": "mean Euclidean distance between the encoder features of 300 random pairs of distinct sequences",
    "finger ratio": "summed length of the bones inside the hands over all frames, generated ÷ ground truth "
    "(1 = fingers of the true length; collapsed fingers score far below)",
    "handshape": "per hand and frame, each finger bent / curved / straight by its tip's distance from the hand "
    "root over its chain length (< 0.45, < 0.83, else); % of DTW-aligned frame pairs whose hand has the same "
    "five states, both hands averaged (ground truth: 100)",
}


@dataclass
class System:
    name: str
    poses: list[np.ndarray]


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


@torch.no_grad()
def back_translate(
    bt: LoadedBackTranslator, poses: Sequence[np.ndarray], batch_size: int = 32, progress: bool = False, desc: str = ""
) -> tuple[list[str], list[str], np.ndarray]:
    """(gloss strings, text strings, (N, D) features) for a list of (S_i, J, 3) sequences."""
    model = bt.model
    device = next(model.parameters()).device
    glosses, texts, feats = [], [], []
    order = np.argsort([len(p) for p in poses], kind="stable")  # similar lengths together
    results: dict[int, tuple[str, str, np.ndarray]] = {}
    for start, end in tqdm(list(_batches(len(poses), batch_size)), desc=desc, disable=not progress):
        idx = order[start:end]
        S = max(len(poses[i]) for i in idx)
        x = torch.zeros(len(idx), S, *poses[idx[0]].shape[1:])
        mask = torch.zeros(len(idx), S, dtype=torch.bool)
        for b, i in enumerate(idx):
            x[b, : len(poses[i])] = torch.from_numpy(np.asarray(poses[i], dtype=np.float32))
            mask[b, : len(poses[i])] = True
        memory, mmask = model.encode(x.to(device), mask.to(device))
        g = model.ctc_greedy(model.gloss_log_probs(memory), mmask)
        t = model.translate(memory, mmask)
        f = model.pool(memory, mmask).float().cpu().numpy()
        for b, i in enumerate(idx):
            results[int(i)] = (" ".join(bt.gloss_vocab.decode(g[b])), " ".join(bt.text_vocab.decode(t[b])), f[b])
    for i in range(len(poses)):
        glosses.append(results[i][0])
        texts.append(results[i][1])
        feats.append(results[i][2])
    return glosses, texts, np.stack(feats)


def mean_pose(train: Corpus, limit: int | None = 2000) -> np.ndarray:
    """The training set's mean pose (J, 3), over all frames of (at most ``limit``) sequences."""
    n = len(train) if limit is None else min(limit, len(train))
    total, frames = None, 0
    for i in range(n):
        p = train[i].pose.astype(np.float64)
        total = p.sum(0) if total is None else total + p.sum(0)
        frames += len(p)
    return (total / max(frames, 1)).astype(np.float32)


@dataclass
class Reference:
    """What every system is scored against: the test samples, their reference glosses and text, and the
    back-translation of the ground-truth poses (its features are FID's reference)."""

    samples: Sequence[Sample]
    gloss: list[str]
    text: list[str]
    translated: tuple[list[str], list[str], np.ndarray]  # back_translate of the ground truth

    @property
    def features(self) -> np.ndarray:
        return self.translated[2]

    @classmethod
    def build(cls, bt: LoadedBackTranslator, samples: Sequence[Sample], batch_size: int = 32, progress: bool = False):
        out = back_translate(bt, [s.pose for s in samples], batch_size, progress, "back-translate ground truth")
        gloss = [" ".join(s.glosses) for s in samples]
        return cls(samples, gloss, [" ".join(tokenize_text(s.text)) for s in samples], out)


def score_system(
    bt: LoadedBackTranslator,
    ref: Reference,
    system: System,
    batch_size: int = 32,
    progress: bool = False,
    translated: tuple[list[str], list[str], np.ndarray] | None = None,
) -> dict:
    """One report row: back-translation scores, DTW-MJE, FID and diversity of ``system`` against ``ref``.

    ``translated``: the system's back-translation when it is already known (the ground truth's is in ``ref``).
    """
    if len(system.poses) != len(ref.samples):
        raise ValueError(f"{system.name}: {len(system.poses)} sequences for {len(ref.samples)} references")
    if translated is None:
        translated = back_translate(bt, system.poses, batch_size, progress, f"back-translate {system.name}")
    glosses, texts, feats = translated
    refs = [s.pose for s in ref.samples]
    w = wer(glosses, ref.gloss)
    return {
        "system": system.name,
        **{k: round(v, 2) for k, v in bleu(texts, ref.text).items()},
        "rouge_l": round(rouge_l(texts, ref.text), 2),
        "wer": round(w.wer, 2),
        "wer_counts": {"sub": w.substitutions, "del": w.deletions, "ins": w.insertions, "ref": w.reference_words},
        "dtw_mje": {k: round(v, 4) for k, v in dtw_mje_parts(system.poses, refs).items()},
        "fid": round(frechet_distance(ref.features, feats), 4),
        "finger_ratio": round(finger_length_ratio(system.poses, refs), 4),
        "handshape": round(handshape_agreement(system.poses, refs), 2),
        "diversity": round(diversity(feats), 4),
        "examples": [
            {"reference": ref.text[i], "translation": texts[i], "glosses": glosses[i]}
            for i in range(min(3, len(ref.samples)))
        ],
    }


def evaluate_systems(
    bt: LoadedBackTranslator,
    samples: Sequence[Sample],
    systems: Sequence[System],
    batch_size: int = 32,
    progress: bool = False,
) -> dict:
    """Scores every system against the samples' ground truth under one protocol (ground truth first)."""
    ref = Reference.build(bt, samples, batch_size, progress)
    gt = System("ground truth", [s.pose for s in samples])
    rows = [score_system(bt, ref, gt, translated=ref.translated)]
    rows += [score_system(bt, ref, system, batch_size, progress) for system in systems]
    return {"sequences": len(samples), "definitions": DEFINITIONS, "rows": rows}


def markdown_table(report: dict) -> str:
    head = (
        "| system | BLEU-1 | BLEU-4 | ROUGE | WER | DTW-MJE | DTW body | DTW hands | finger ratio | handshape "
        "| FID | diversity |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in report["rows"]:
        d = r["dtw_mje"]
        lines.append(
            f"| {r['system']} | {r['bleu1']:.2f} | {r['bleu4']:.2f} | {r['rouge_l']:.2f} | {r['wer']:.2f} | "
            f"{d['all']:.3f} | {d['body']:.3f} | {d['hands']:.3f} | {r.get('finger_ratio', float('nan')):.3f} | "
            f"{r.get('handshape', float('nan')):.1f} | {r['fid']:.3f} | {r['diversity']:.3f} |"
        )
    return "\n".join(lines)


def write_report(report: dict, out: Path | str) -> tuple[Path, Path]:
    """Writes ``out.json`` and ``out.md`` (``out`` without suffix, or a directory ending in /)."""
    out = Path(out)
    base = out / "report" if out.is_dir() else out.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = report.get("meta", {})
    lines = [f"# fgdm evaluation — {meta.get('split', '')} split, {report['sequences']} sequences", ""]
    for key in ("checkpoint", "backtranslator", "data", "length", "steps", "seed"):
        if key in meta:
            lines.append(f"- {key}: `{meta[key]}`")
    lines += ["", markdown_table(report), "", "Ground truth is the back-translator's ceiling; 'mean pose' is the",
              "training set's mean pose held for the ground-truth length (a model must beat it on DTW-MJE).", "",
              "## Definitions", ""]  # fmt: skip
    lines += [f"- **{k}**: {v}" for k, v in report["definitions"].items()]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, md_path
