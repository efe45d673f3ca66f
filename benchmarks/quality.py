"""The paper's ablations, reproduced at a fixed CPU budget per run (issue: benchmarks/quality).

    python benchmarks/quality.py run phoenix-synth --source PHOENIX_ANNOTATIONS   # PHOENIX14T's annotations folder
    python benchmarks/quality.py run dgs-pt --source DGS_PT                         # a PT-format DGS data directory
    python benchmarks/quality.py report [--overwrite]

Datasets:
    phoenix-synth  the real PHOENIX14T gloss streams and German translations (the annotation CSVs), rendered
                   by the synthetic lexicon; scored on the test split (642) with a back-translator trained on
                   its ground truth: BLEU, ROUGE, WER, DTW-MJE, FID.
    dgs-pt         real DGS motion in PT format; scored on dev (30, the only held-out split) with DTW-MJE and
                   FID (features of a back-translator trained on its ground truth; its vocabulary is too
                   sparse for gloss or text scores to mean anything).

Every run trains `configs/synth.yaml` + `configs/ablations/ROW.yaml` for the same fixed budget
(--steps at batch 16; 300 by default) and samples the evaluation split with ground-truth lengths, 5 DDIM
steps, seed 0, EMA weights. A run writes one JSON under benchmarks/results/quality/DATASET/ and is skipped
when that file exists, so the set runs in parts (--rows, --seeds) and resumes after an interruption.
`report` turns the JSONs into results/quality.md (one table per dataset, mean ± half the range over
seeds) and results/quality.png; it replaces them (the committed ones) only with --overwrite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "quality"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import InputError, machine, positive_int, refuse_existing  # noqa: E402  (a sibling module; no torch)
from common import run as run_main  # noqa: E402

# (config under configs/ablations, label, seeds in the default set)
ROWS = [
    ("general_only", "General only", (0, 1)),
    ("focal_only", "+Focal", (0, 1)),
    ("scg_only", "+SCG", (0, 1)),
    ("full", "+Focal +SCG (full)", (0, 1)),
    ("no_contextual", "+Focal w/o A_a", (0,)),
    ("no_semantic_mask", "+Focal w/o M", (0,)),
    ("no_topology", "+Focal w/o A_b", (0,)),
]
LABELS = {name: label for name, label, _ in ROWS}
DATASETS = {
    # evaluation split, back-translator steps, metrics in the table
    "phoenix-synth": {"split": "test", "bt_steps": 2000, "text_scores": True},
    "dgs-pt": {"split": "dev", "bt_steps": 600, "text_scores": False},
}


def _fgdm(args: list[str], log: Path) -> float:
    """Runs the fgdm CLI in its own process, output to ``log``; seconds taken. Raises with the log's last line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "-m", "fgdm.cli", *args], stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        last = next((line for line in reversed(log.read_text(errors="replace").splitlines()) if line.strip()), "")
        raise ChildProcessError(f"fgdm {' '.join(args[:2])} failed (exit status {done.returncode}; the whole log: "
                                f"{log}): {last.strip()}")  # fmt: skip
    return time.perf_counter() - t0


def prepare(dataset: str, source: Path, work: Path) -> Path:
    """The data directory training reads: a lazy manifest for phoenix-synth, the PT directory for dgs-pt."""
    if not source.is_dir():
        raise InputError(f"{source}: not a directory")
    if dataset == "dgs-pt":
        return source.resolve()
    data = work / "data"
    if not (data / "synth.json").is_file():
        args = ["synth", "--out", str(data), "--lazy", "--glosses", str(source.resolve()), "--quiet"]
        _fgdm(args, work / "synth.log")
    return data


def backtranslator(dataset: str, data: Path, work: Path, steps: int | None = None) -> Path:
    """Trains (once) the frozen evaluator on the dataset's ground truth; its best dev-WER checkpoint."""
    out = work / "backtranslator"
    best, last = out / "checkpoints" / "best.ckpt", out / "checkpoints" / "last.ckpt"
    if not last.is_file():
        steps = steps or DATASETS[dataset]["bt_steps"]
        print(f"[{dataset}] training the back-translator on ground truth ({steps} steps)", flush=True)
        seconds = _fgdm(
            ["backtranslator", "train", "configs/backtranslator.yaml", "--set", f"data.path={data}",
             "--set", f"training.output_dir={out}", "--set", f"training.max_steps={steps}", "--overwrite", "--quiet"],
            work / "backtranslator.log",
        )  # fmt: skip
        print(f"[{dataset}] back-translator trained in {seconds / 60:.1f} min", flush=True)
    return best if best.is_file() else last  # no best when training ended before its first validation


def open_evaluator(data: Path, bt_path: Path, split: str, device: str = "cpu"):
    """The protocol's evaluator (fgdm.evaluation.protocol.Evaluator): back-translator and references, loaded once."""
    from fgdm.evaluation.protocol import Evaluator

    return Evaluator.open(bt_path, data, split, device=device)


def same_reference(a: list[dict], b: list[dict]) -> bool:
    """Whether two sets of reference rows (ground truth first) come from one back-translator on one split: the
    ground truth's figures agree, within what another device's arithmetic may move them."""
    ga, gb = a[0], b[0]
    close = all(abs(ga[k] - gb[k]) <= 0.05 for k in ("wer", "bleu4", "rouge_l"))
    return (
        close
        and ga["wer_counts"]["ref"] == gb["wer_counts"]["ref"]
        and abs(ga["diversity"] - gb["diversity"]) <= (1e-3 * max(1.0, abs(ga["diversity"])))
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refuse_other_reference(where: Path, rows: list[dict], known: list[dict], what: str, folder: Path) -> None:
    if not same_reference(rows, known):
        raise InputError(
            f"{where}: scored by another back-translator or split than {what} (ground truth WER {known[0]['wer']} "
            f"there, {rows[0]['wer']} here); rows scored by two must not share one table: move {folder} aside to "
            "start afresh"
        )


def run(args: argparse.Namespace) -> None:
    dataset, work = args.dataset, Path(args.work).resolve() / args.dataset
    chosen = args.rows.split(",") if args.rows else [name for name, _, _ in ROWS]
    for name in chosen:  # before any data is rendered or back-translator trained
        if name not in LABELS:
            raise InputError(f"--rows: unknown row {name!r}; rows are {', '.join(LABELS)}")
    data = prepare(dataset, Path(args.source), work)
    results = RESULTS / dataset
    results.mkdir(parents=True, exist_ok=True)
    bt_path = backtranslator(dataset, data, work, args.bt_steps)
    evaluator, split, sha = None, DATASETS[dataset]["split"], _sha256(bt_path)
    ref_path = results / "reference.json"
    known = json.loads(ref_path.read_text()) if ref_path.is_file() else None
    if known is None or known.get("backtranslator_sha256") != sha:  # a new folder, or a back-translator to check
        evaluator = open_evaluator(data, bt_path, split)
        rows = evaluator.reference_rows(examples=False)
        if known is not None:
            _refuse_other_reference(ref_path, known["rows"], rows, f"the back-translator {bt_path}", results)
        ref = {"split": split, "backtranslator_sha256": sha, "rows": rows}
        ref_path.write_text(json.dumps(ref, indent=2) + "\n")
    for name in chosen:
        seeds = args.seeds if args.seeds is not None else next(s for n, _, s in ROWS if n == name)
        for seed in seeds:
            out = results / f"{name}-seed{seed}.json"
            made = json.loads(out.read_text()).get("steps") if out.is_file() else None
            if out.is_file() and made != args.steps:
                raise InputError(f"{out}: made at {made} steps, not --steps {args.steps}: one table holds one budget "
                                 "(move it aside to run again)")  # fmt: skip
            if out.is_file():
                print(f"[{dataset}] {name} seed {seed}: done already ({out.name})", flush=True)
                continue
            run_dir = work / f"{name}-seed{seed}"
            print(f"[{dataset}] {name} seed {seed}: training {args.steps} steps", flush=True)
            seconds = _fgdm(
                ["train", "configs/synth.yaml", f"configs/ablations/{name}.yaml", "--set", f"data.path={data}",
                 "--set", f"training.output_dir={run_dir}", "--set", f"training.seed={seed}",
                 "--set", f"training.max_steps={args.steps}", "--set", f"training.val_every={args.steps}",
                 "--overwrite", "--quiet"],
                run_dir.with_suffix(".log"),
            )  # fmt: skip
            evaluator = evaluator or open_evaluator(data, bt_path, DATASETS[dataset]["split"])
            row = evaluate_run(evaluator, run_dir / "checkpoints" / "last.ckpt", name)
            row |= {"row": name, "seed": seed, "steps": args.steps, "train_minutes": round(seconds / 60, 2),
                    "machine": machine()}  # fmt: skip
            out.write_text(json.dumps(row, indent=2) + "\n")
            print(f"[{dataset}] {name} seed {seed}: {seconds / 60:.1f} min, WER {row['wer']:.2f}, "
                  f"DTW-MJE {row['dtw_mje']['all']:.3f}, FID {row['fid']:.2f}", flush=True)  # fmt: skip


def evaluate_run(evaluator, checkpoint: Path, name: str) -> dict:
    from fgdm.evaluation.scores import System
    from fgdm.sampling import generate_for, load_for_sampling

    loaded = load_for_sampling(checkpoint)
    if loaded.cfg.data.skip_frames != evaluator.skip_frames:
        raise InputError(f"{checkpoint}: skip_frames {loaded.cfg.data.skip_frames} ≠ the evaluator's "
                         f"{evaluator.skip_frames}")  # fmt: skip
    poses = generate_for(loaded, evaluator.samples, seed=0)
    return evaluator.score(System(LABELS[name], poses), examples=False)


def collect(args: argparse.Namespace) -> None:
    """Turns learning curves named ``DATASET-ROW-sSEED`` (benchmarks/learning_curve.py, e.g. the GPU runs of
    benchmarks/gpu_curves.sh) into run files: each curve's last point is that row's result at its budget, or,
    with ``--at``, each of its points at those steps (one run file per budget: ``ROW-seedS-stepN.json``).
    A last point where the curve's ``--max-minutes`` ran out is a result at that time budget: curves cut by the
    same minutes share one table whatever step each reached. Run files already there (committed ones among them)
    are replaced only with ``--overwrite``."""
    results = RESULTS / args.dataset
    results.mkdir(parents=True, exist_ok=True)
    ref_path = results / "reference.json"
    docs = {path: json.loads(path.read_text()) for path in map(Path, args.curves)}
    # every curve, and the rows already here, scored by one back-translator: checked before anything is written
    known = (ref_path, json.loads(ref_path.read_text())["rows"]) if ref_path.is_file() else None
    for path, doc in docs.items():
        if not isinstance(doc, dict) or not {"name", "points", "reference"} <= doc.keys():
            raise InputError(f"{path}: not a learning curve (benchmarks/learning_curve.py run writes them)")
        row, _, seed = doc["name"].removeprefix(f"{args.dataset}-").rpartition("-s")
        if row not in LABELS or not seed.isdigit() or not doc["points"]:
            rows = ", ".join(LABELS)
            raise InputError(f"{path}: not a finished curve named {args.dataset}-ROW-sSEED with ROW in {rows}")
        if doc["reference"]:
            rows = [{k: v for k, v in r.items() if k != "examples"} for r in doc["reference"]]
            if known is not None:
                _refuse_other_reference(path, rows, known[1], str(known[0]), results)
            known = known or (path, rows)
    chosen = {}  # curve → (its row, its seed, its points to collect)
    for path, doc in docs.items():
        row, _, seed = doc["name"].removeprefix(f"{args.dataset}-").rpartition("-s")
        chosen[path] = row, seed, [p for p in doc["points"] if p["step"] in args.at] if args.at else doc["points"][-1:]
    named = [f"{row}-seed{seed}" + (f"-step{p['step']}" if args.at else "") for row, seed, points in chosen.values()
             for p in points]  # fmt: skip
    refuse_existing([results / f"{name}.json" for name in named], args.overwrite, "--results")  # committed ones too
    # the same row, seed and budget under another name (collected with --at, or without) would be counted twice
    wanted = {(row, int(seed), p["step"]) for row, seed, points in chosen.values() for p in points}

    def budget(f: Path) -> tuple:
        doc = json.loads(f.read_text())
        return doc.get("row"), doc.get("seed"), doc.get("steps")

    twins = [f for f in results.glob("*-seed*.json") if f.stem not in named and budget(f) in wanted]
    if twins and not args.overwrite:
        raise InputError(f"{', '.join(map(str, twins))}: the same row, seed and budget already (--overwrite)")
    for twin in twins:
        twin.unlink()
    for path, doc in docs.items():
        row, seed, points = chosen[path]
        for point in points:
            out = {k: v for k, v in point.items() if k not in ("step", "train_seconds", "eval_seconds")}
            out |= {"system": LABELS[row], "row": row, "seed": int(seed), "steps": point["step"],
                    "batch_size": doc["config"]["training"]["batch_size"],
                    "train_minutes": round(point["train_seconds"] / 60, 2), "machine": doc["machine"],
                    "curve": path.name}  # fmt: skip
            if not args.at and point.get("cut_by_time"):
                out["budget_minutes"] = doc["max_minutes"]
            name = f"{row}-seed{seed}" + (f"-step{point['step']}" if args.at else "")
            (results / f"{name}.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
            print(f"[{args.dataset}] {row} seed {seed}: step {point['step']}, WER {point['wer']:.2f}")
        if args.at and len(points) < len(args.at):
            missing = sorted(set(args.at) - {p["step"] for p in points})
            print(f"[{args.dataset}] {row} seed {seed}: no point at step {', '.join(map(str, missing))}")
    if known is not None and known[0] != ref_path:  # the first curve's reference rows, where none were here
        ref = {"split": docs[known[0]]["split"], "rows": known[1]}
        ref_path.write_text(json.dumps(ref, indent=2, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------------- report


def _stat(values: list[float]) -> tuple[float, float]:
    return sum(values) / len(values), (max(values) - min(values)) / 2


def _cell(values: list[float], digits: int) -> str:
    mean, spread = _stat(values)
    return f"{mean:.{digits}f}" + (f" ± {spread:.{digits}f}" if len(values) > 1 else "")


TEXT_COLUMNS = [("BLEU-1", "bleu1", 2), ("BLEU-4", "bleu4", 2), ("ROUGE", "rouge_l", 2), ("WER", "wer", 2)]
DTW_COLUMNS = [("DTW-MJE", "dtw_all", 3), ("DTW body", "dtw_body", 3), ("DTW hands", "dtw_hands", 3)]
COLUMNS = {True: [*TEXT_COLUMNS, DTW_COLUMNS[0], ("FID", "fid", 2)], False: [*DTW_COLUMNS, ("FID", "fid", 2)]}


def flat_scores(row: dict) -> dict:
    """A scored row with its DTW-MJE parts also as top-level keys (``dtw_all``, ``dtw_body``, ``dtw_hands``)."""
    return {**row, **{f"dtw_{k}": v for k, v in row["dtw_mje"].items()}}


Runs = dict[str, list[dict]]  # row → its runs (one per seed) at one budget


def budget(run: dict) -> str:
    """A run's budget: ``N steps``, or ``M min`` for a curve that time cut (whatever step each run reached)."""
    minutes = run.get("budget_minutes")
    return f"{minutes:g} min" if minutes is not None else f"{run['steps']:,} steps"


def load_results(dataset: str) -> tuple[list[dict], dict[str, Runs]]:
    """The reference rows and the run files of ``dataset``, by budget (:func:`budget`): time budgets first, then
    step budgets, each largest first."""
    folder = RESULTS / dataset
    ref = json.loads((folder / "reference.json").read_text()) if (folder / "reference.json").is_file() else None
    budgets: dict[str, Runs] = {}
    seen: dict[tuple[str, int, str], Path] = {}
    for name, _, _ in ROWS:
        for path in sorted(folder.glob(f"{name}-seed*.json")):
            run = flat_scores(json.loads(path.read_text()))
            key = (name, run["seed"], budget(run))
            if key in seen:
                raise InputError(f"{path} and {seen[key]}: the same row, seed and budget ({key[2]}) twice")
            seen[key] = path
            budgets.setdefault(key[2], {}).setdefault(name, []).append(run)

    def size(item: tuple[str, Runs]) -> tuple[bool, float]:
        run = next(iter(item[1].values()))[0]
        minutes = run.get("budget_minutes")
        return minutes is not None, minutes if minutes is not None else run["steps"]

    return ([flat_scores(r) for r in ref["rows"]] if ref else []), dict(sorted(budgets.items(), key=size, reverse=True))


def table(dataset: str, refs: list[dict], runs: Runs) -> list[str]:
    cols = COLUMNS[DATASETS[dataset]["text_scores"]]
    head = "| system | seeds | " + " | ".join(c[0] for c in cols) + " |"
    lines = [head, "|---|---|" + "---|" * len(cols)]
    for r in refs:
        lines.append(f"| {r['system']} | – | " + " | ".join(f"{r[key]:.{d}f}" for _, key, d in cols) + " |")
    for name, got in runs.items():
        cells = [_cell([r[key] for r in got], d) for _, key, d in cols]
        lines.append(f"| {LABELS[name]} | {len(got)} | " + " | ".join(cells) + " |")
    return lines


def comparisons(dataset: str, runs: Runs) -> list[str]:
    """The paper's claims, checked on the means of this dataset's runs at one budget."""
    keys = ("bleu1", "wer", "dtw_all", "fid")
    mean = {name: {k: _stat([r[k] for r in got])[0] for k in keys} for name, got in runs.items()}
    # the seed-to-seed noise of a metric: the largest half-range among the rows with several seeds
    noise = {k: max([_stat([r[k] for r in got])[1] for got in runs.values() if len(got) > 1] or [0.0]) for k in keys}
    text = DATASETS[dataset]["text_scores"]
    out = []

    def claim(what: str, a: str, b: str, key: str, lower: bool) -> None:
        if a in mean and b in mean:
            x, y = mean[a][key], mean[b][key]
            holds = y < x if lower else y > x
            within = abs(y - x) <= 2 * noise[key]
            note = f" (a difference within twice the seed spread, {2 * noise[key]:.2f}: not resolved)" if within else ""
            out.append(
                f"- {what}: {LABELS[a]} {x:.2f} → {LABELS[b]} {y:.2f} — {'holds' if holds else 'does not hold'}{note}"
            )

    if text:
        claim("Focal raises BLEU-1 over General-only", "general_only", "focal_only", "bleu1", lower=False)
        claim("Focal lowers WER over General-only", "general_only", "focal_only", "wer", lower=True)
        claim("SCG lowers WER (General-only → +SCG)", "general_only", "scg_only", "wer", lower=True)
        claim("SCG lowers WER (+Focal → full)", "focal_only", "full", "wer", lower=True)
    main = [n for n in ("general_only", "focal_only", "scg_only") if n in mean]
    if text and "full" in mean and main:
        runner_up = min(main, key=lambda n: mean[n]["wer"])
        x, y = mean["full"]["wer"], mean[runner_up]["wer"]
        within = abs(y - x) <= 2 * noise["wer"]
        note = f" (a difference within twice the seed spread, {2 * noise['wer']:.2f}: not resolved)" if within else ""
        out.append(f"- The full model reads best (lowest WER of the main rows): {LABELS['full']} {x:.2f}, the best "
                   f"other {LABELS[runner_up]} {y:.2f} — {'holds' if x < y else 'does not hold'}{note}")  # fmt: skip
    claim("Focal lowers DTW-MJE over General-only", "general_only", "focal_only", "dtw_all", lower=True)
    claim("Focal lowers FID over General-only", "general_only", "focal_only", "fid", lower=True)
    key = "wer" if text else "dtw_all"
    drops = {n: mean[n][key] - mean["focal_only"][key] for n in ("no_contextual", "no_semantic_mask", "no_topology")
             if n in mean and "focal_only" in mean}  # fmt: skip
    if drops:
        worst = max(drops, key=drops.get)
        listing = ", ".join(f"{LABELS[n]} {d:+.2f}" for n, d in drops.items())
        verdict = "holds" if worst == "no_contextual" else f"does not hold: the largest change is {LABELS[worst]}"
        beyond = [f"{LABELS[n]} {d:+.2f}" for n, d in drops.items() if abs(d) > 2 * noise[key]]
        if beyond:
            verdict += f" (beyond twice the seed spread: {', '.join(beyond)})"
        else:
            verdict += " (every change within twice the seed spread: not resolved)"
        metric = "WER" if text else "DTW-MJE"
        out.append(
            f"- A_a matters most in ASGCN ({metric} change from +Focal: {listing}; seed spread "
            f"±{noise[key]:.2f}) — {verdict}"
        )
    return out


def plot(path: Path) -> None:
    """A panel per (dataset, metric): the rows against the budget where a dataset has several budgets
    (mean over seeds, dots single runs), else bars at its one budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("phoenix-synth", "wer", "WER (%) ↓"),
        ("phoenix-synth", "dtw_all", "DTW-MJE ↓"),
        ("dgs-pt", "dtw_all", "DTW-MJE ↓"),
        ("dgs-pt", "fid", "FID ↓"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4))
    colours = dict(zip(LABELS, plt.get_cmap("tab10").colors, strict=False))
    for ax, (dataset, key, title) in zip(axes, panels, strict=True):
        refs, budgets = load_results(dataset)
        if len(budgets) > 1:  # each row's runs at its mean step: a time budget's rows reach different steps
            for name in LABELS:
                got = sorted((sum(r["steps"] for r in runs[name]) / len(runs[name]), [r[key] for r in runs[name]])
                             for runs in budgets.values() if name in runs)  # fmt: skip
                xs, values = [x for x, _ in got], [v for _, v in got]
                means = [sum(v) / len(v) for v in values]
                ax.plot(xs, means, "-o", color=colours[name], markersize=3, label=LABELS[name],
                        linewidth=2.2 if name == "full" else 1.2)  # fmt: skip
                for x, v in zip(xs, values, strict=True):
                    ax.scatter([x] * len(v), v, color=colours[name], s=6, zorder=3)
            batches = sorted({r.get("batch_size", 16) for runs in budgets.values() for g in runs.values() for r in g})
            ax.set_xlabel(f"training steps (batch {', '.join(map(str, batches))})")
            if not any(label.endswith(" min") for label in budgets):  # step budgets: a tick at each
                ax.set_xticks(sorted({r["steps"] for runs in budgets.values() for g in runs.values() for r in g}))
            ceiling = next((r[key] for r in refs if r["system"] == "ground truth"), None)
            if ceiling is not None:
                ax.axhline(ceiling, color="grey", linewidth=1, label="ground truth")
        else:
            label, runs = next(iter(budgets.items()), ("no runs", {}))
            names = list(runs)
            for x, name in enumerate(names):
                values = [r[key] for r in runs[name]]
                ax.bar(x, sum(values) / len(values), color="tab:orange" if name == "full" else "tab:blue", alpha=0.7)
                ax.scatter([x] * len(values), values, color="black", s=12, zorder=3)
            for r, style in zip(refs, ("-", ":"), strict=False):
                ax.axhline(r[key], color="grey", linestyle=style, linewidth=1, label=r["system"])
            ax.set_xticks(range(len(names)), [LABELS[n] for n in names], rotation=60, ha="right", fontsize=8)
            title = f"{label}: {title}"
        ax.set_title(f"{dataset}, {title}", fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(args: argparse.Namespace) -> None:
    out, png = RESULTS.parent / "quality.md", RESULTS.parent / "quality.png"
    refuse_existing([out, png], args.overwrite, "--results")
    shown = RESULTS.relative_to(ROOT / "benchmarks") if RESULTS.is_relative_to(ROOT / "benchmarks") else RESULTS.name
    lines = ["# Quality: the paper's ablations at a fixed CPU budget", "",
             f"Generated by `python benchmarks/quality.py report` from the run files in `{shown}/`;",
             "how the runs were made: `benchmarks/README.md`. Mean ± half the range over seeds; in",
             "`quality.png` lines and bars are means, dots single runs.",
             ""]  # fmt: skip
    for dataset, spec in DATASETS.items():
        refs, budgets = load_results(dataset)
        if not refs and not budgets:
            continue
        for label, runs in budgets.items() or [(None, {})]:
            every = [r for got in runs.values() for r in got]
            lines += [f"## {dataset} — {spec['split']} split" + (f", {label}" if label else ""), ""]
            if every:
                minutes = [r["train_minutes"] for r in every]
                steps = [r["steps"] for r in every]
                batches = sorted({r.get("batch_size", 16) for r in every})
                machines = sorted({r.get("machine", "this project's 2-core CPU") for r in every})
                size = (f"{label} of training (the clock stopped the runs at steps {min(steps):,}–{max(steps):,})"
                        if "budget_minutes" in every[0] else label)  # fmt: skip
                lines += [f"Budget per run: {size} at batch {', '.join(map(str, batches))}; training took "
                          f"{min(minutes):.1f}–{max(minutes):.1f} min ({'; '.join(machines)}).", ""]  # fmt: skip
            found = comparisons(dataset, runs)
            lines += [*table(dataset, refs, runs), ""]
            lines += ["The paper's findings, checked on the means:", "", *found, ""] if found else []
    out.write_text("\n".join(lines))
    plot(png)
    print(out.read_text())


def main() -> None:
    global RESULTS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score ablation rows on one dataset (skips finished runs)")
    r.add_argument("dataset", choices=list(DATASETS))
    r.add_argument("--source", required=True, help="PHOENIX14T annotation CSV directory, or the dgs-pt PT directory")
    r.add_argument("--rows", help=f"comma-separated subset of {', '.join(LABELS)} (default: all)")
    r.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 0 1 for the main rows, 0 for the others)")
    r.add_argument("--steps", type=positive_int, default=300, help="training steps per run, batch 16 (default 300)")
    r.add_argument("--work", default="runs/quality", help="checkpoints and logs (default runs/quality)")
    r.add_argument("--bt-steps", type=positive_int,
                   help="back-translator steps (default 2000 phoenix-synth, 600 dgs-pt)")  # fmt: skip
    r.set_defaults(func=run)
    c = sub.add_parser("collect", help="run files from learning curves named DATASET-ROW-sSEED (their last points)")
    c.add_argument("dataset", choices=list(DATASETS))
    c.add_argument("curves", nargs="+", help="curve JSONs written by benchmarks/learning_curve.py")
    c.add_argument("--at", type=positive_int, nargs="+", help="budgets (steps): a run file per curve point at each")
    c.add_argument("--overwrite", action="store_true", help="replace the run files already there")
    c.set_defaults(func=collect)
    p = sub.add_parser("report", help="tables and plot from the finished runs")
    p.add_argument("--overwrite", action="store_true", help="replace the quality.md and quality.png there")
    p.set_defaults(func=report)
    for q in (r, c, p):
        q.add_argument("--results", default=str(RESULTS), help="run files (default benchmarks/results/quality); "
                       "report writes quality.md and quality.png into its parent folder")  # fmt: skip
    args = ap.parse_args()
    RESULTS = Path(args.results).resolve()
    args.func(args)


if __name__ == "__main__":
    run_main(main)
