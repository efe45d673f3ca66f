"""Evaluation reports: the metrics' definitions, a Markdown table, and the JSON + Markdown files."""

from __future__ import annotations

import json
import os
import re
import shlex
import warnings
from pathlib import Path

DEFINITIONS = {
    "BLEU-n": "corpus BLEU (sacrebleu, tokenize=none, no smoothing), cumulative n-grams, × 100, of the "
    "back-translator's beam-search translation against the reference text (lower-cased, punctuation split)",
    "ROUGE": "ROUGE-L: longest-common-subsequence F-measure with β = 1.2, per sentence, averaged, × 100",
    "WER": "corpus word error rate (S + D + I) / N × 100 of the back-translator's CTC gloss recognition "
    "(best path) against the reference glosses, as written (case-sensitive, split at whitespace); S, D and I come "
    "from a unit-cost alignment (each edit costs 1, the standard WER), not sclite's or the SLT code's weighted one "
    "(substitution 4, insertion and deletion 3)",
    "DTW-MJE": "dynamic time warping with an L1 frame cost (summed over the joints' coordinates), the path "
    "total divided by the reference length, averaged over sequences; 'all' = 50 joints, 'body' = joints "
    "0–7, 'hands' = joints 8–49, each with its own alignment. The warping hides tempo: a sequence played at half "
    "speed scores as the original. Every frame counts (Progressive Transformers' code drops each sequence's last "
    "frame and divides by the length less one: its figures differ slightly)",
    "FID": "Fréchet distance between Gaussians fitted to the back-translator's pose-encoder features "
    "(mean over time, one vector per sequence) of the ground-truth and of the system's test sequences; it "
    "grows as the number of sequences falls (the report's 'sequences'): compare FIDs at one number only; with "
    "fewer sequences than features (the back-translator's width) the covariances are rank-deficient and it is "
    "biased upward, and another network's features (the paper's) give another scale. Unpaired, "
    "as diversity and the finger ratio are: the right poses for the wrong sentences score as well as ground truth "
    "here (the back-translation and DTW columns pair each sequence with its reference)",
    "diversity": "mean Euclidean distance between the encoder features of 300 random pairs of distinct sequences",
    "finger ratio": "mean length of a bone inside the hands over all frames, generated ÷ ground truth "
    "(1 = fingers of the true length, whatever the sequences' lengths; collapsed fingers score far below)",
    "handshape": "per hand and frame, each finger bent / curved / straight by its tip's distance from the hand "
    "root over its chain length (< 0.45, < 0.83, else: the valleys of the embedded language's distribution, a "
    "rough guide on real data); % of DTW-aligned frame pairs whose hand has the same five states, both hands "
    "averaged (ground truth: 100)",
    "mean pose": "a baseline row: the mean over all frames of the first 2,000 training sequences (all of them "
    "when fewer), held still for each reference's length",
}


# The report's columns: (heading, the formatted cell of a row), in every table (Markdown, HTML). A column added
# after the first release reads its value with r.get(key, nan): report.json files written before it (the shipped
# model card's, `fgdm export --report`'s) lack the key and must still read (tests/test_evaluate.py).
COLUMNS = [
    ("BLEU-1", lambda r: f"{r['bleu1']:.2f}"), ("BLEU-4", lambda r: f"{r['bleu4']:.2f}"),
    ("ROUGE", lambda r: f"{r['rouge_l']:.2f}"), ("WER", lambda r: f"{r['wer']:.2f}"),
    ("DTW-MJE", lambda r: f"{r['dtw_mje']['all']:.3f}"), ("DTW body", lambda r: f"{r['dtw_mje']['body']:.3f}"),
    ("DTW hands", lambda r: f"{r['dtw_mje']['hands']:.3f}"),
    ("finger ratio", lambda r: f"{r.get('finger_ratio', float('nan')):.3f}"),
    ("handshape", lambda r: f"{r.get('handshape', float('nan')):.1f}"), ("FID", lambda r: f"{r['fid']:.3f}"),
    ("diversity", lambda r: f"{r['diversity']:.3f}"),
]  # fmt: skip


def markdown_table(report: dict) -> str:
    lines = ["| system | " + " | ".join(name for name, _ in COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    lines += [f"| {r['system']} | " + " | ".join(cell(r) for _, cell in COLUMNS) + " |" for r in report["rows"]]
    return "\n".join(lines)


REPORT_SUFFIXES = (".json", ".md", ".html")


def report_base(out: Path | str) -> Path:
    """Where a report goes: ``out`` without a report's suffix (.json, .md, .html; ``v1.5`` keeps its ``.5``), or
    ``out/report`` for a directory (one there, or a path written with a final ``/``, which is made)."""
    directory = str(out).endswith(("/", os.sep))
    out = Path(out)
    if out.is_dir() or directory:
        return out / "report"
    return out.with_suffix("") if out.suffix.lower() in REPORT_SUFFIXES else out


def report_paths(out: Path | str) -> tuple[Path, Path, Path]:
    """The report's ``.json``, ``.md`` and ``.html`` files for ``out`` (:func:`report_base`)."""
    base = report_base(out)
    return tuple(base.with_name(base.name + suffix) for suffix in REPORT_SUFFIXES)  # type: ignore[return-value]


def read_report(path: Path | str, checkpoint: Path | str | None = None, step: int | None = None) -> dict:
    """An ``fgdm evaluate`` report.json, checked to be one (its table can be drawn): errors name the file.
    ``checkpoint``: the model the report should have scored, and ``step`` its training step; refused where it scored
    no model (its table would describe none) or a model at another step (another run's, or this file before its
    training went on), a warning where it names another file at that step or no step (a copy?)."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        markdown_table(report)  # its rows have every column
        int(report["sequences"])
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{path}: not an fgdm evaluate report.json ({type(err).__name__}: {err})") from None
    scored = report.get("meta", {}).get("checkpoint")
    if checkpoint is not None and scored is None:
        raise ValueError(f"{path} scored no model (evaluate without --checkpoint): its table would describe none; "
                         "give the report of fgdm evaluate --checkpoint CKPT")  # fmt: skip
    if checkpoint is not None and step is not None and (at := scored_step(report)) not in (None, step):
        raise ValueError(f"{path} scored {Path(scored).name} at step {at}, and {checkpoint} is at step {step}: its "
                         "table describes other weights (fgdm evaluate these again)")  # fmt: skip
    if checkpoint is not None and not _same_file(scored, checkpoint):  # a copy, say: the step (if known) matched
        warnings.warn(f"{path} scored {scored}, not {checkpoint}: its table describes that one",
                      stacklevel=2)  # fmt: skip
    return report


def _same_file(recorded: str, path: Path | str) -> bool:
    """Whether ``recorded``, a path a report wrote as ``fgdm evaluate`` was given it (relative to where it ran), is
    ``path``: the same file, or a relative path that ``path`` ends in (the report read from another directory)."""
    full, parts = Path(path).resolve(), Path(recorded).parts
    relative = not Path(recorded).is_absolute() and ".." not in parts
    return Path(recorded).resolve() == full or (relative and full.parts[-len(parts) :] == parts)


def _batch(training: dict) -> str:
    """The batch a card states: ``batch_size`` is per process, so several make a larger one."""
    devices, nodes, per = training.get("devices", 1), training.get("num_nodes", 1), training["batch_size"]
    if devices == 1 and nodes == 1:
        return f"{per}"
    known = isinstance(devices, int) and devices > 0  # (auto, -1 or a list of devices: counted when it ran)
    return f"{per * devices * nodes} ({per} per process × {devices * nodes})" if known else f"{per} per process"


def _stages(model: dict) -> str:
    """The stages a card names: the Focal stage only where it is on (the General-only ablation has none)."""
    general = f"General {_layers(model['general']['layers'])}"
    focal = model["focal"]
    return f"Focal {_layers(focal['layers'])}, {general}" if focal.get("enabled", True) else f"{general}, no Focal"


def scored_step(report: dict) -> int | None:
    """The training step of the model a report scored: its meta's, or read from its row (reports before fgdm
    recorded it); None where it scored no model."""
    step = report.get("meta", {}).get("step")
    if step is not None:
        return int(step)
    found = [re.fullmatch(r"FGDM \(.*, step (\d+)\)", str(row.get("system", ""))) for row in report.get("rows", [])]
    return next((int(m.group(1)) for m in found if m), None)


def write_report(report: dict, out: Path | str) -> tuple[Path, Path, Path]:
    """Writes ``out.json``, ``out.md`` and ``out.html`` (:mod:`fgdm.evaluation.html`; with the animations of
    ``report["_examples"]`` when :func:`~fgdm.evaluation.protocol.evaluate` kept some). The three are written
    beside their targets and renamed into place together, so an interrupted write never leaves one run's page
    beside another's table."""
    from fgdm.evaluation.html import write_html
    from fgdm.runtime import signals_held

    paths = report_paths(out)
    temporary = [p.with_name(f".{p.name}.tmp") for p in paths]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_three(report, *temporary, write_html)
        with signals_held():
            for tmp, path in zip(temporary, paths, strict=True):
                tmp.replace(path)
    finally:
        for tmp in temporary:
            tmp.unlink(missing_ok=True)
    return paths


# What the Markdown report lists of its meta, in this order (the HTML page lists all of it); "notes" follow the table.
META_KEYS = ("checkpoint", "step", "backtranslator", "backtranslator_step", "backtranslator_weights", "data", "fps",
             "length", "steps", "eta", "seed", "batch_size", "device", "precision", "compile", "hypotheses",
             "unknown_to_backtranslator_percent", "versions")  # fmt: skip


def meta_text(value) -> str:
    """A meta value as the reports show it: a dictionary as ``key value, …``, a list comma-separated."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def reading_note(report: dict) -> str:
    """The sentence under a report's table: what its reference rows mean."""
    ceiling = "Ground truth is the back-translator's ceiling"
    if any(r.get("system") == "mean pose" for r in report["rows"]):
        return (f"{ceiling}; 'mean pose' is the training set's mean pose held for the ground-truth length (a model "
                "must beat it on DTW-MJE).")  # fmt: skip
    why = " (see the notes)" if report.get("meta", {}).get("notes") else ""
    return f"{ceiling}; this report has no mean-pose row, the floor a model must beat on DTW-MJE{why}."


def _write_three(report: dict, json_path: Path, md_path: Path, html_path: Path, write_html) -> None:
    plain = {k: v for k, v in report.items() if not k.startswith("_")}
    json_path.write_text(json.dumps(plain, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = report.get("meta", {})
    lines = [f"# fgdm evaluation — {meta.get('split', '')} split, {report['sequences']} sequences", ""]
    lines += [f"- {key}: `{meta_text(meta[key])}`" for key in META_KEYS if key in meta]
    lines += ["", markdown_table(report), "", reading_note(report), ""]
    if meta.get("notes"):
        lines += ["## Notes", "", *(f"- {note}" for note in meta["notes"]), ""]
    lines += ["## Definitions", ""]
    lines += [f"- **{k}**: {v}" for k, v in report["definitions"].items()]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_html(plain, html_path, report.get("_examples", ()), report.get("_fps", 25.0))


def _layers(n: int) -> str:
    return f"{n} layer{'' if n == 1 else 's'}"


def model_card(
    name: str, cfg: dict, step: int, vocab_size: int, report: dict | None = None, how: str = "", example: str = ""
) -> str:
    """A model card (Markdown) for exported weights: what they are, how they were trained, what they score.
    ``example``: glosses the model knows, for the card's command (the embedded language's by default)."""
    t, d = cfg["training"], cfg["data"]
    data = (
        d["path"]
        or f"the embedded synthetic sign language (seed {d['synth_seed']}, {d['synth_train']} training sentences)"
    )
    lines = [f"# {name}", "",
             "FGDM (Focal–General Diffusion Model, CVPR 2026) as fgdm implements it: glosses → 3D skeleton sequences "
             "in the PT 50-joint layout (neck at the origin, shoulders 0.334 apart), "
             f"{25 / d['skip_frames']:.4g} frames per second.", "",
             "## Training", "",
             f"- data: {data}; {vocab_size - 4} glosses in the vocabulary",
             f"- steps: {step} at batch {_batch(t)}, learning rate {t['lr']} (warm-up {t['warmup_steps']}), "
             f"{'no EMA' if t['ema_decay'] is None else 'EMA ' + str(t['ema_decay'])}, seed {t['seed']}",
             f"- model: width {cfg['model']['width']}, {_stages(cfg['model'])}; "
             f"{cfg['diffusion']['sampling_steps']} DDIM steps",
             "- the full resolved config is in config.json"]  # fmt: skip
    if how:
        lines += [f"- how: {how}"]
    if report:
        meta = report.get("meta", {})
        how_sampled = ", ".join(f"{k} {meta[k]}" for k in ("steps", "length", "precision", "seed") if k in meta)
        scorer = f", step {meta['backtranslator_step']}" if "backtranslator_step" in meta else ""
        lines += ["", "## What it scores", "",
                  f"On the {meta.get('split', 'test')} split ({report['sequences']} sequences), sampled with "
                  f"{how_sampled or 'the config'}, scored by a back-translator trained on ground truth{scorer} "
                  "(`fgdm evaluate`):", "", markdown_table(report), "",
                  *(["The report's notes:", "", *(f"- {note}" for note in meta["notes"]), ""] if meta.get("notes")
                    else []),
                  *(f"- {name}: {text}" for name, text in report.get("definitions", {}).items())]  # fmt: skip
    # quoted for the shell as needed: real glosses may hold $ (DGS's $INDEX1), which double quotes would expand
    use = f"fgdm generate --checkpoint THIS_DIRECTORY --gloss {shlex.quote(example or 'MORGEN NORD REGEN')} --out a.gif"
    lines += ["", "## Use", "", "```bash", use, "```"]
    if d["path"] is None:
        lines += ["", "Limits: a synthetic language rendered by a procedural signer; it shows the pipeline and the "
                  "model, not real DGS."]  # fmt: skip
    return "\n".join(lines) + "\n"
