"""Learning curves: how many steps and seconds until the generated signing can be read.

    python benchmarks/learning_curve.py run NAME --data DIR [--config A.yaml B.yaml] [--set key=value ...]
        [--at 500,1000,1500,2000,3000] [--bt BT.ckpt | --bt-steps 1500] [--split test] [--max-minutes M]
    python benchmarks/learning_curve.py run NAME ... --at 3000,4500,6000 --resume   # extend a curve
    python benchmarks/learning_curve.py sampling NAME --checkpoint CKPT --data DIR --bt BT [--steps 5 10] [--eta 1 0]
    python benchmarks/learning_curve.py report [NAME ...] [--title T] [--out learning_curves]

`run` trains one config (configs/synth.yaml unless --config) on DIR and, at each step in --at, samples
the evaluation split with the EMA weights (ground-truth lengths, the config's DDIM steps, seed 0) and
scores it with a frozen back-translator: WER, BLEU-4, DTW-MJE (all joints, body, hands), the finger
bone-length ratio and the handshape agreement (src/fgdm/metrics/handshape.py). Training seconds
exclude the evaluations. The back-translator is trained once on DIR's ground truth with
configs/backtranslator.yaml (--bt-steps) under --work, unless --bt names one; ground truth (the
ceiling) and the training set's mean pose (the floor) are scored with it too, once per data set, split
and back-translator file (cached under --work, so parallel curves on one data set score them once).
One JSON per curve is written to --results (benchmarks/results/learning_curves/NAME.json) after every point, so an
interrupted run keeps what it measured. With --resume, a curve is extended: training continues from the run's
last checkpoint under --work (optimizer, EMA, step and random streams restored: it ends with the weights of a run
that went straight through, as `fgdm train --resume` does), and the new points are appended to the curve's JSON,
their training minutes counted on from its last point. The JSON records the steps it was resumed at.

`sampling` scores one trained checkpoint under several sampling settings into --results/NAME.json.

`report` draws the named curves (default: all) into one table (Markdown) and one plot (PNG) beside
the JSONs: WER, BLEU-4, DTW hands and finger ratio against steps, and WER against training minutes.
None of them replaces a JSON, table or plot already there (the committed ones are under
benchmarks/results/learning_curves) without --overwrite.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "learning_curves"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402  (a sibling module)
    InputError,
    machine,
    nonnegative,
    number,
    positive,
    positive_int,
    probability,
    refuse_existing,
)
from common import run as run_main  # noqa: E402
from quality import flat_scores  # noqa: E402  (a sibling script; no torch)


def _step_counts(text: str) -> list[int]:
    return sorted({int(s) for s in text.split(",") if s.strip()})


# --at: sorted, without repeats; a usage error (argparse's) unless every one is a whole number ≥ 1
step_counts = number(_step_counts, lambda at: bool(at) and at[0] >= 1, "step counts ≥ 1 separated by commas (500,1000)")


@contextlib.contextmanager
def untouched_random_streams():
    """Runs a block without moving PyTorch's (CPU and current GPU), NumPy's or Python's global random streams.

    fgdm's loaders and its sampling copy no longer draw from PyTorch's stream, but an evaluation may still
    touch any of them (a data set, a metric); without this guard, a curve's later points could depend on
    which earlier points were evaluated."""
    import random

    import numpy as np
    import torch

    state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_initialized() else []):
        try:
            yield
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])


def curve_callback(evaluator, at: list[int], max_seconds: float | None, record, seed: int = 0, offset: float = 0.0):
    """A Lightning callback that evaluates the EMA generator at the given steps (and when time is up).

    ``evaluator()`` returns the back-translating evaluator (``fgdm.evaluation.protocol.Evaluator``, loaded on
    first use); ``offset``: training seconds before this process (a resumed curve's).
    """
    from lightning.pytorch.callbacks import Callback

    from fgdm.evaluation.scores import System
    from fgdm.sampling import generate_for

    class Curve(Callback):
        def __init__(self) -> None:
            self.start = 0.0
            self.paused = 0.0  # seconds spent evaluating, not training

        def on_train_start(self, trainer, module) -> None:
            self.start = time.perf_counter()

        def training_seconds(self) -> float:
            return time.perf_counter() - self.start - self.paused

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            step = trainer.global_step
            out_of_time = max_seconds is not None and offset + self.training_seconds() > max_seconds
            if step not in at and not out_of_time:
                return
            seconds = self.training_seconds()
            t0 = time.perf_counter()
            with untouched_random_streams():  # the rest of the run draws what it would without this point
                ev = evaluator()
                loaded = module.sampling_model()
                poses = generate_for(loaded, ev.samples, seed=seed)
                row = ev.score(System(f"step {step}", poses), examples=False)
            evaluated = time.perf_counter() - t0
            row |= {"step": step, "train_seconds": round(offset + seconds, 1), "eval_seconds": round(evaluated, 1),
                    "cut_by_time": out_of_time and step < max(at)}  # fmt: skip
            record(row)
            # the point and the weights it measured agree on disk: a killed run resumes from its last point
            trainer.save_checkpoint(Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt")
            module.train()
            self.paused += time.perf_counter() - t0
            if out_of_time or step >= max(at):
                trainer.should_stop = True

    return Curve()


def _portable(config: dict) -> dict:
    """The resolved config with this machine's directories cut to their names (data) or dropped (output)."""
    config = json.loads(json.dumps(config))
    if config["data"].get("path"):
        config["data"]["path"] = Path(config["data"]["path"]).name
    config["training"]["output_dir"] = Path(config["training"]["output_dir"]).name
    return config


def _reference_rows(ev, data: Path, bt_path: Path, split: str, work: Path) -> list[dict]:
    """Ground truth's and the mean pose's rows, scored once per (data, split, back-translator file) and kept
    under ``work``: every curve on the same data and evaluator shares them instead of scoring them again."""
    stat = bt_path.stat()
    key = json.dumps([str(data), split, str(bt_path.resolve()), stat.st_size, stat.st_mtime_ns])
    cache = work / f"reference-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
    if cache.is_file():
        return json.loads(cache.read_text())["rows"]
    rows = ev.reference_rows(examples=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")  # written whole, then renamed: parallel curves never read half
    tmp.write_text(json.dumps({"key": json.loads(key), "rows": rows}, ensure_ascii=False) + "\n")
    tmp.replace(cache)
    return rows


def _resumed(doc: dict, out: Path, at: list[int], run_dir: Path) -> tuple[dict, float]:
    """The curve ``out`` to extend, checked against this run's ``doc`` and its checkpoint under ``run_dir``,
    and its training seconds so far."""
    import torch

    if not out.is_file():
        raise InputError(f"--resume: {out} not found (run the curve once without --resume)")
    old = json.loads(out.read_text(encoding="utf-8"))
    for key in ("configs", "overrides", "data", "split", "backtranslator"):
        if old.get(key) != doc[key]:
            raise InputError(f"--resume: {out} has {key} {old.get(key)!r}, this run {doc[key]!r}")
    if not old["points"]:
        raise InputError(f"--resume: {out} has no points yet (run it again without --resume)")
    last = old["points"][-1]
    if at[-1] <= last["step"]:
        raise InputError(f"--resume: {out} already reached step {last['step']}; --at asks for {at[-1]} at most")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise InputError(f"--resume: {ckpt} not found (is --work the one the curve ran with?)")
    step = int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
    if step < last["step"]:  # killed after its last point was written, before its weights were
        print(f"--resume: {ckpt} is at step {step}: dropping the curve's points after it", file=sys.stderr)
        old["points"] = [p for p in old["points"] if p["step"] <= step]
        if not old["points"]:
            raise InputError(f"--resume: {out} has no point at or before step {step}")
        last = old["points"][-1]
    elif step > last["step"]:
        print(f"--resume: {ckpt} is at step {step}, past the last point ({last['step']}): training minutes from "
              "there on are counted from the last point's", file=sys.stderr)  # fmt: skip
    old["resumed_at"] = [*old.get("resumed_at", []), step]
    old["max_minutes"] = doc["max_minutes"]
    old["machine"] = doc["machine"] if old["machine"] == doc["machine"] else f"{old['machine']}; then {doc['machine']}"
    return old, float(last["train_seconds"])


def run(args: argparse.Namespace) -> None:
    import torch
    from quality import backtranslator, open_evaluator, same_reference

    from fgdm.cli import quiet_lightning
    from fgdm.config import load_config, to_dict
    from fgdm.evaluation.protocol import Evaluator
    from fgdm.runtime import keep_freed_memory
    from fgdm.training import train

    keep_freed_memory()
    data = Path(args.data).resolve()
    if not data.is_dir():
        raise InputError(f"{data}: not a data directory")
    results = Path(args.results).resolve()
    out = results / f"{args.name}.json"
    if out.is_file() and not (args.resume or args.overwrite):  # before a back-translator is trained
        raise InputError(f"{out}: the curve exists; --resume extends it, --overwrite starts it afresh")
    quiet_lightning(args.quiet)  # as fgdm train: Lightning's notes that say nothing here left out (--quiet: all)
    work = Path(args.work).resolve()
    checkpoints = work / args.name / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")) and not (args.resume or args.overwrite):
        raise InputError(f"{checkpoints.parent}: a curve's training run is there (its points may be in another "
                         "--results); --resume extends it, --overwrite starts it afresh, or choose another NAME or "
                         "--work")  # fmt: skip
    at = args.at
    configs = args.config or [str(ROOT / "configs" / "synth.yaml")]
    overrides = [
        *args.set, f"data.path={data}", f"training.output_dir={work / args.name}", f"training.max_steps={at[-1]}",
    ]  # fmt: skip
    cfg = load_config(configs, overrides)
    bt_path = Path(args.bt) if args.bt else backtranslator("curve", data, work / f"bt-{data.name}", args.bt_steps)
    device = "cuda" if cfg.training.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available() else "cpu"
    results.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": args.name,
        "configs": [
            str(Path(c).resolve().relative_to(ROOT)) if ROOT in Path(c).resolve().parents else c for c in configs
        ],
        "overrides": args.set,
        "data": data.name,
        "split": args.split,
        "sequences": None,
        "backtranslator": bt_path.name,
        "backtranslator_weights": None,  # their digest (fgdm evaluate's report records the same), once loaded
        "max_minutes": args.max_minutes,  # of training: a point where time ran out has cut_by_time
        "machine": machine(device),
        "config": _portable(to_dict(cfg)),
        "reference": [],
        "points": [],
    }
    offset = 0.0
    if args.resume:
        doc, offset = _resumed(doc, out, at, work / args.name)
        at = [s for s in at if s > doc["resumed_at"][-1]]
    loaded: list[Evaluator] = []

    def evaluator() -> Evaluator:
        """Loads the back-translator on first use, waiting up to --wait-bt minutes for it to be written."""
        if not loaded:
            deadline = time.monotonic() + 60 * args.wait_bt
            while not bt_path.is_file() and time.monotonic() < deadline:
                time.sleep(5)
            ev = open_evaluator(data, bt_path, args.split, device)
            if ev.skip_frames != cfg.data.skip_frames:
                raise InputError(
                    f"{bt_path}: skip_frames {ev.skip_frames} ≠ the generator's {cfg.data.skip_frames} "
                    f"(--set data.skip_frames={ev.skip_frames} trains the generator at its rate)"
                )
            doc["backtranslator_weights"] = ev.bt.weights
            rows = _reference_rows(ev, data, bt_path, args.split, work)
            if doc["reference"] and not same_reference(rows, doc["reference"]):  # a resumed curve's evaluator
                raise InputError(f"--resume: {out} was scored by another back-translator (ground truth WER "
                                 f"{doc['reference'][0]['wer']} there, {rows[0]['wer']} with {bt_path})")  # fmt: skip
            doc["sequences"], doc["reference"] = len(ev.samples), rows
            gt, mean = doc["reference"]
            print(f"[{args.name}] ground truth WER {gt['wer']:.1f} BLEU-4 {gt['bleu4']:.1f}; mean pose WER "
                  f"{mean['wer']:.1f}, DTW hands {mean['dtw_mje']['hands']:.2f}", flush=True)  # fmt: skip
            loaded.append(ev)
        return loaded[0]

    if bt_path.is_file():
        evaluator()  # fail before training, not after it, on a mismatched back-translator
    elif args.bt and not args.wait_bt:
        raise InputError(f"--bt {args.bt}: not found (--wait-bt MINUTES waits for one still being trained)")

    def record(row: dict) -> None:
        doc["points"].append(row)
        out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        d = row["dtw_mje"]
        print(f"[{args.name}] step {row['step']} ({row['train_seconds'] / 60:.1f} min): WER {row['wer']:.1f}, "
              f"BLEU-4 {row['bleu4']:.1f}, DTW hands {d['hands']:.2f}, finger ratio {row['finger_ratio']:.3f}, "
              f"handshape {row['handshape']:.1f}", flush=True)  # fmt: skip

    max_seconds = args.max_minutes * 60 if args.max_minutes else None
    callback = curve_callback(evaluator, at, max_seconds, record, offset=offset)
    train(cfg, resume=args.resume, progress=not args.quiet, callbacks=[callback], overwrite=not args.resume)
    print(f"[{args.name}] wrote {out}")


def sampling(args: argparse.Namespace) -> None:
    """Scores one trained checkpoint under several sampling settings (precision × DDIM steps × η)."""
    import torch
    from quality import open_evaluator

    from fgdm.evaluation.scores import System
    from fgdm.sampling import generate_for, load_for_sampling

    out = Path(args.results).resolve() / f"{args.name}.json"
    refuse_existing([out], args.overwrite, "NAME")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ev = open_evaluator(Path(args.data).resolve(), Path(args.bt), args.split, device)
    rows = []
    for precision, steps, eta in itertools.product(args.precision, args.steps, args.eta):
        loaded = load_for_sampling(args.checkpoint, device=device, precision=precision)
        if loaded.cfg.data.skip_frames != ev.skip_frames:
            raise InputError(f"{args.checkpoint}: skip_frames {loaded.cfg.data.skip_frames} ≠ the back-translator's "
                             f"{ev.skip_frames}")  # fmt: skip
        t0 = time.perf_counter()
        poses = generate_for(loaded, ev.samples, steps=steps, eta=eta, seed=0)
        seconds = time.perf_counter() - t0
        label = f"{steps} steps, η {eta}" + (f", {precision}" if precision != "32" else "")
        row = flat_scores(ev.score(System(label, poses), examples=False))
        rows.append(row | {"precision": precision, "steps": steps, "eta": eta, "sample_seconds": round(seconds, 1)})
        print(f"{precision} steps {steps} η {eta}: WER {row['wer']:.1f} BLEU-4 {row['bleu4']:.1f} DTW hands "
              f"{row['dtw_hands']:.2f} finger ratio {row['finger_ratio']:.3f} handshape {row['handshape']:.1f} "
              f"({seconds:.1f} s)", flush=True)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checkpoint_step": loaded.step, "split": args.split, "rows": rows}, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------- report

COLUMNS = [("WER", "wer", 1), ("BLEU-4", "bleu4", 1), ("DTW-MJE", "dtw_all", 2), ("DTW body", "dtw_body", 2),
           ("DTW hands", "dtw_hands", 2), ("finger ratio", "finger_ratio", 3), ("handshape", "handshape", 1),
           ("FID", "fid", 1)]  # fmt: skip


def report(args: argparse.Namespace) -> None:
    results = Path(args.results).resolve()
    stem = results / args.out
    refuse_existing([stem.with_suffix(".md"), stem.with_suffix(".png")], args.overwrite)
    names = args.names or sorted(p.stem for p in results.glob("*.json") if "points" in json.loads(p.read_text()))
    missing = [n for n in names if not (results / f"{n}.json").is_file()]
    if missing:
        raise InputError(f"{results}: no curve {', '.join(missing)}")
    docs = [json.loads((results / f"{n}.json").read_text()) for n in names]
    if not docs:
        raise InputError(f"{results}: no curves")
    words = ["python benchmarks/learning_curve.py report", *(args.names or [])]
    if args.out != "learning_curves":
        words.append(f"--out {args.out}")
    if args.title != "Learning curves":
        words.append(f"--title {shlex.quote(args.title)}")
    command = " ".join(words)
    lines = [f"# {args.title}", "", f"Made by `{command}` from the JSONs beside this file; each curve's config, "
             "overrides and machine are in its JSON.", ""]  # fmt: skip
    steps = sorted({p["step"] for doc in docs for p in doc["points"]})
    # with a back-translator that reads nothing (ground truth at WER ≥ 99: data without usable text), the
    # summary is DTW-MJE against the mean pose's instead of WER
    readable = any(r["system"] == "ground truth" and r["wer"] < 99 for doc in docs for r in doc["reference"])
    if readable:
        title, last = "WER (BLEU-4)", "first evaluated step with WER ≤ 50 (min)"
    else:
        title, last = "DTW-MJE", "lowest DTW-MJE, step (min), against the mean pose's"
    lines += [f"## Summary: {title} at each evaluated step", "",
              "| curve | " + " | ".join(str(st) for st in steps) + f" | {last} |",
              "|---|" + "---|" * (len(steps) + 1)]  # fmt: skip
    for doc in docs:
        at = {p["step"]: p for p in doc["points"]}
        if readable:
            cells = [f"{at[st]['wer']:.1f} ({at[st]['bleu4']:.1f})" if st in at else "–" for st in steps]
            below = next((p for p in doc["points"] if p["wer"] <= 50.0), None)
            end = f"{below['step']} ({below['train_seconds'] / 60:.1f})" if below else "not reached"
        else:
            cells = [f"{at[st]['dtw_mje']['all']:.2f}" if st in at else "–" for st in steps]
            best = min(doc["points"], key=lambda p: p["dtw_mje"]["all"])
            floor = next(r["dtw_mje"]["all"] for r in doc["reference"] if r["system"] == "mean pose")
            change = 100 * (best["dtw_mje"]["all"] / floor - 1)
            end = f"{best['dtw_mje']['all']:.2f}, {best['step']} ({best['train_seconds'] / 60:.1f}), {change:+.1f} %"
        lines.append(f"| {doc['name']} | " + " | ".join(cells) + f" | {end} |")
    lines.append("")
    for doc in docs:
        pts = [flat_scores(p) for p in doc["points"]]
        refs = [flat_scores(r) for r in doc["reference"]]
        sets = " ".join("--set " + o for o in doc["overrides"])
        where = f"{doc['data']} {doc['split']} split ({doc['sequences']} sequences); {doc['machine']}"
        lines += [f"## {doc['name']}", "", f"{' + '.join(doc['configs'])} {sets}; {where}.", ""]
        lines += [
            "| step | train min | " + " | ".join(c[0] for c in COLUMNS) + " |",
            "|---|---|" + "---|" * len(COLUMNS),
        ]
        for r in refs:
            lines.append(f"| {r['system']} | – | " + " | ".join(f"{r[k]:.{d}f}" for _, k, d in COLUMNS) + " |")
        for p in pts:
            cells = " | ".join(f"{p[k]:.{d}f}" for _, k, d in COLUMNS)
            lines.append(f"| {p['step']} | {p['train_seconds'] / 60:.1f} | {cells} |")
        lines.append("")
    stem.with_suffix(".md").write_text("\n".join(lines))
    plot(docs, stem.with_suffix(".png"), readable)
    print(stem.with_suffix(".md").read_text())


def plot(docs: list[dict], path: Path, readable: bool = True) -> None:
    """One panel per figure against steps (and one against minutes); with a back-translator that reads
    nothing (``readable`` false) DTW-MJE takes WER's and BLEU-4's places, drawn against the mean pose only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if readable:
        panels = [("wer", "WER (%) ↓", "step"), ("bleu4", "BLEU-4 ↑", "step"), ("dtw_hands", "DTW-MJE hands ↓", "step"),
                  ("finger_ratio", "finger bone-length ratio", "step"), ("wer", "WER (%) ↓", "minutes")]  # fmt: skip
    else:
        panels = [("dtw_all", "DTW-MJE ↓", "step"), ("dtw_hands", "DTW-MJE hands ↓", "step"),
                  ("finger_ratio", "finger bone-length ratio", "step"),
                  ("dtw_all", "DTW-MJE ↓", "minutes")]  # fmt: skip
    many = len(docs) > 10
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 2.2, 4))
    for ax, (key, title, x) in zip(axes, panels, strict=True):
        for i, doc in enumerate(docs):
            pts = [flat_scores(p) for p in doc["points"]]
            xs = [p["step"] if x == "step" else p["train_seconds"] / 60 for p in pts]
            color = plt.get_cmap("tab20")(i % 20) if many else f"C{i}"
            ax.plot(xs, [p[key] for p in pts], marker="o", markersize=3, label=doc["name"], color=color,
                    linestyle="-" if i < 20 else "--")  # fmt: skip
        refs = [flat_scores(r) for r in docs[0]["reference"]]
        for r, style in zip(refs, ("-", ":"), strict=False):
            if readable or not key.startswith("dtw") or r["system"] != "ground truth":  # DTW 0 would flatten the rest
                ax.axhline(r[key], color="grey", linestyle=style, linewidth=1, label=r["system"])
        ax.set_xlabel("training steps" if x == "step" else "training minutes")
        ax.set_title(title, fontsize=10)
    handles, labels = axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7)
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / (4.2 * len(panels) + 2.2), 1))
    fig.savefig(path, dpi=100)


def main() -> None:
    from fgdm.choices import PRECISIONS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train one config and evaluate it at chosen steps")
    r.add_argument("name", help="the curve's name (its JSON file under --results)")
    r.add_argument("--data", required=True, help="PT-format or synth-manifest directory to train and evaluate on")
    r.add_argument("--config", nargs="+", help="config files, later ones override (default configs/synth.yaml)")
    r.add_argument("--set", action="append", default=[], help="key=value override (repeatable)")
    r.add_argument("--at", type=step_counts, default="500,1000,1500,2000,3000",
                   help="steps at which to evaluate, comma-separated (default %(default)s)")  # fmt: skip
    r.add_argument("--split", default="test", help="evaluation split (default test)")
    r.add_argument("--bt", help="a trained back-translator checkpoint (default: train one under --work)")
    r.add_argument("--bt-steps", type=positive_int, default=1500, help="steps when training the back-translator (1500)")
    r.add_argument(
        "--max-minutes",
        type=positive,
        help="stop training after this many minutes of it, a resumed curve's earlier ones included (evaluating then)",
    )
    r.add_argument("--wait-bt", type=nonnegative, default=0.0, help="minutes to wait for a --bt still being trained")
    r.add_argument("--work", default="runs/learning_curve",
                   help="checkpoints, logs, back-translators (default %(default)s)")  # fmt: skip
    r.add_argument("--resume", action="store_true", help="extend the curve from its run's last checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace an existing curve and its run")
    r.add_argument("--quiet", action="store_true", help="no progress bar, nor Lightning's informational lines")
    r.set_defaults(func=run)
    q = sub.add_parser("sampling", help="score one checkpoint under several sampling settings")
    q.add_argument("name", help="file stem of the JSON written under --results")
    q.add_argument("--checkpoint", required=True, help="the trained generator's checkpoint")
    q.add_argument("--data", required=True, help="PT-format or synth-manifest directory to evaluate on")
    q.add_argument("--bt", required=True, help="the frozen back-translator")
    q.add_argument("--split", default="test", help="evaluation split (default test)")
    q.add_argument("--steps", type=positive_int, nargs="+", default=[5], help="DDIM steps to try (default 5)")
    q.add_argument("--eta", type=probability, nargs="+", default=[1.0, 0.0], help="η values to try (default 1 0)")
    q.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["32"], help="precisions (default 32)")
    q.add_argument("--results", default=str(RESULTS), help="where NAME.json goes (default "
                   "benchmarks/results/learning_curves)")  # fmt: skip
    q.add_argument("--overwrite", action="store_true", help="replace an existing NAME.json")
    q.set_defaults(func=sampling)
    p = sub.add_parser("report", help="table and plot of finished curves")
    p.add_argument("names", nargs="*", help="curves to include (default: all)")
    p.add_argument("--title", default="Learning curves", help="the table's heading (default %(default)s)")
    p.add_argument("--out", default="learning_curves", help="file stem for the .md and .png (default learning_curves)")
    p.add_argument("--overwrite", action="store_true", help="replace the .md and .png there")
    p.set_defaults(func=report)
    for q in (r, p):
        q.add_argument(
            "--results", default=str(RESULTS), help="curve JSONs (default benchmarks/results/learning_curves)"
        )
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    run_main(main)
