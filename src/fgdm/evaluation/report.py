"""Evaluation reports: the metrics' definitions, a Markdown table, and the JSON + Markdown files."""

from __future__ import annotations

import json
from pathlib import Path

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
