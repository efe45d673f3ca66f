"""The ``fgdm`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fgdm.data.pt import DataFormatError
from fgdm.runtime import keep_freed_memory


def _cmd_synth(args: argparse.Namespace) -> int:
    from fgdm.data.sources import SynthManifest, open_corpus
    from fgdm.data.synth.corpus import write_pt
    from fgdm.data.vocab import Vocabulary

    out = Path(args.out)
    given = {"train": args.num_train, "dev": args.num_dev, "test": args.num_test}
    csv_files = _csv_splits(args.glosses) if args.glosses else {}
    if csv_files:  # every row of each CSV, unless a --num-* option caps that split
        sizes = {k: v for k, v in given.items() if k in csv_files and v is not None}
    else:
        sizes = {k: v if v is not None else DEFAULT_GRAMMAR_SIZES[k] for k, v in given.items()}
    manifest = SynthManifest(seed=args.seed, sizes=sizes, csv={k: str(Path(v).resolve()) for k, v in csv_files.items()})
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rendered = 0
    for split in manifest.splits():
        corpus = manifest.corpus(split, out)
        if args.lazy:
            continue
        write_pt(corpus, out, progress=not args.quiet, workers=args.workers)
        rendered += len(corpus)
    if args.lazy:
        manifest.save(out)
    train = open_corpus(out, "train") if "train" in manifest.splits() else None
    if train is not None:
        Vocabulary.from_corpus(train.gloss_sequences()).save(out / "src_vocab.txt")
    elapsed = time.perf_counter() - t0
    summary = {"out": str(out), "splits": manifest.splits(), "lazy": args.lazy, "seed": args.seed}
    if rendered:
        summary |= {
            "rendered_sequences": rendered,
            "seconds": round(elapsed, 2),
            "sequences_per_second": round(rendered / elapsed, 1),
        }
    print(json.dumps(summary, indent=2))
    return 0


DEFAULT_GRAMMAR_SIZES = {"train": 1000, "dev": 100, "test": 100}


def _csv_splits(path: str) -> dict[str, Path]:
    p = Path(path)
    if p.is_dir():
        found = {s: sorted(p.glob(f"*{s}*.csv")) for s in ("train", "dev", "test")}
        files = {s: f[0] for s, f in found.items() if f}
        if not files:
            raise DataFormatError(p, None, "no *train*.csv, *dev*.csv or *test*.csv in this directory")
        return files
    split = next((s for s in ("train", "dev", "test") if s in p.name), "train")
    return {split: p}


def _cmd_data_check(args: argparse.Namespace) -> int:
    from fgdm.data.sources import data_splits, open_corpus
    from fgdm.data.stats import corpus_statistics

    directory = Path(args.dir)
    splits = args.split or data_splits(directory)
    if not splits:
        raise DataFormatError(directory, None, "no splits found (expected {split}.skels files or synth.json)")
    report: dict = {"path": str(directory), "splits": {}}
    vocab: set[str] = set()
    for split in splits:
        corpus = open_corpus(directory, split, skip_frames=args.skip_frames)
        report["splits"][split] = corpus_statistics(corpus, progress=not args.quiet, name=split)
        glosses = {g for seq in corpus.gloss_sequences() for g in seq}
        if split == "train":
            vocab = glosses
        elif vocab:
            report["splits"][split]["gloss_types_unseen_in_train"] = len(glosses - vocab)
    report["gloss_vocabulary"] = len(vocab) if vocab else None
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from fgdm.render import save_animation

    sequences, titles = [], []
    for spec in args.inputs:
        pose, title = _load_for_render(spec, args.split, args.index)
        sequences.append(pose)
        titles.append(title)
    path = save_animation(args.out, sequences, titles if not args.no_titles else None, fps=args.fps)
    print(f"wrote {path} ({max(len(s) for s in sequences)} frames, {len(sequences)} panel(s))")
    return 0


def _load_for_render(spec: str, split: str, index: int) -> tuple[np.ndarray, str]:
    from fgdm.data.io import load_any
    from fgdm.data.sources import open_corpus

    path = Path(spec)
    if path.is_dir():
        corpus = open_corpus(path, split)
        if not 0 <= index < len(corpus):
            raise SystemExit(f"fgdm render: --index {index} out of range ({len(corpus)} sequences in {split})")
        sample = corpus[index]
        return sample.pose, " ".join(sample.glosses)[:60]
    if not path.exists():
        raise DataFormatError(path, None, "file not found")
    return load_any(path), path.name


def _cmd_model_summary(args: argparse.Namespace) -> int:
    from fgdm.config import load_config
    from fgdm.model import build_model
    from fgdm.model.summary import denoiser_macs, parameter_counts

    cfg = load_config(args.config, args.set)
    model = build_model(cfg, args.vocab_size)
    macs = denoiser_macs(model, args.batch, args.frames, args.glosses)
    summary = {
        "config": args.config,
        "vocab_size": args.vocab_size,
        "parameters": parameter_counts(model),
        "denoiser_call": {
            "batch": args.batch,
            "frames": args.frames,
            "glosses": args.glosses,
            "macs": macs,
            "gmacs": round(macs / 1e9, 3),
        },
    }
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from fgdm.config import load_config
    from fgdm.training import train

    cfg = load_config(args.config, args.set)
    with contextlib.redirect_stdout(sys.stderr):  # progress bars on the terminal, stdout keeps the JSON
        result = train(cfg, resume=args.resume, progress=not args.quiet)
    if not result.is_global_zero:  # one summary, from the first process
        return 0
    print(json.dumps({
        "output_dir": str(result.output_dir),
        "last_checkpoint": str(result.last_checkpoint),
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "steps": result.steps,
        "dev_dtw": result.dev_dtw,
        "train_sequences_per_second": round(result.sequences_per_second, 2),
    }, indent=2))  # fmt: skip
    return 0


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {n}")
    return n


def _parse_length(text: str) -> str | int:
    if text in ("gt", "predicted"):
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--length takes gt, predicted or a frame count ≥ 1, got {text!r}") from None


def _cmd_generate(args: argparse.Namespace) -> int:
    from fgdm.data.pt import PTSplit, write_split
    from fgdm.training import build_corpus, generate_poses, load_for_sampling

    loaded = load_for_sampling(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    out = Path(args.out)
    if args.gloss is not None:
        if args.length == "gt":
            raise ValueError("--length gt needs ground truth: use --data/--split, or give --length predicted or N")
        tokens = args.gloss.split()
        if not tokens:
            raise ValueError("--gloss is empty")
        ids = loaded.vocab.encode_all([tokens])
        frames = None if args.length == "predicted" else [args.length]
        (pose,) = generate_poses(loaded, ids, frames, steps=args.steps, seed=args.seed)
        _write_single(out, pose, " ".join(tokens))
        print(f"wrote {out} ({len(pose)} frames)")
        return 0
    if args.data is not None:
        from fgdm.data.sources import open_corpus

        corpus = open_corpus(args.data, args.split, skip_frames=loaded.cfg.data.skip_frames)
    else:  # the data the checkpoint was trained on (e.g. the embedded synthetic language)
        corpus = build_corpus(loaded.cfg, args.split)
    n = len(corpus) if args.limit is None else min(args.limit, len(corpus))
    samples = [corpus[i] for i in range(n)]
    ids = loaded.vocab.encode_all([s.glosses for s in samples])
    if args.length == "gt":
        frames = [len(s.pose) for s in samples]
    elif args.length == "predicted":
        frames = None
    else:
        frames = [args.length] * n
    poses = generate_poses(
        loaded, ids, frames, steps=args.steps, seed=args.seed, batch_size=args.batch_size, progress=not args.quiet
    )
    if out.suffix:
        raise ValueError(f"{out}: with --data/--split the output is a directory (PT files), not a {out.suffix} file")
    write_split(
        out,
        args.split,
        PTSplit(
            poses=poses,
            glosses=[list(s.glosses) for s in samples],
            texts=[s.text for s in samples],
            names=[s.name for s in samples],
        ),
    )
    rendered = []
    for i in range(min(args.render, n)):
        from fgdm.render import save_animation, save_contact_sheet

        path = out / f"{args.split}_{i:04d}.gif"
        save_animation(
            path,
            [poses[i], samples[i].pose],
            ["generated", "ground truth"],
            fps=round(25 / loaded.cfg.data.skip_frames),
        )
        sheet = save_contact_sheet(
            path.with_suffix(".png"), [poses[i], samples[i].pose], columns=6,
            title=" ".join(samples[i].glosses), labels=["generated", "true"], closeups=True,
        )  # fmt: skip
        rendered += [str(path), str(sheet)]
    print(json.dumps({"out": str(out), "split": args.split, "sequences": n, "rendered": rendered}, indent=2))
    return 0


def _write_single(out: Path, pose: np.ndarray, title: str) -> None:
    from fgdm.data.io import save_npy, save_pose
    from fgdm.render import save_animation

    suffix = out.suffix.lower()
    if suffix == ".npy":
        save_npy(out, pose)
    elif suffix == ".pose":
        save_pose(out, pose)
    elif suffix in (".gif", ".mp4"):
        save_animation(out, pose, [title[:60]])
    else:
        raise ValueError(f"{out}: unsupported output {suffix!r} (use .npy, .pose, .gif or .mp4)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fgdm", description="Focal-General Diffusion Model for sign language production"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the synthetic sign language as a data directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--glosses",
        help="PHOENIX-style CSV (id|signer|annotation|translation), or a directory of "
        "*train*/*dev*/*test*.csv, rendered instead of grammar sentences",
    )
    p.add_argument(
        "--num-train",
        type=int,
        default=None,
        help="train sentences (default 1000; with --glosses: rows to keep, default all)",
    )
    p.add_argument("--num-dev", type=int, default=None, help="dev sentences (default 100)")
    p.add_argument("--num-test", type=int, default=None, help="test sentences (default 100)")
    p.add_argument("--seed", type=int, default=0, help="one seed is one sign language (default 0)")
    p.add_argument("--workers", type=_positive_int, default=1, help="render in this many processes (default 1)")
    p.add_argument(
        "--lazy",
        action="store_true",
        help="write only a manifest (synth.json); samples are rendered on demand by index",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("data", help="inspect data directories")
    dsub = p.add_subparsers(dest="data_command", required=True)
    for name in ("check", "stats"):
        q = dsub.add_parser(name, help="validate every split and print statistics as JSON")
        q.add_argument("dir", help="a PT-format directory or a synthetic manifest directory")
        q.add_argument("--split", action="append", help="only this split (repeatable)")
        q.add_argument("--skip-frames", type=int, default=1, help="keep every k-th frame")
        q.add_argument("--quiet", action="store_true", help="no progress bars")
        q.set_defaults(func=_cmd_data_check)

    p = sub.add_parser("render", help="render sequences to GIF or MP4 (several inputs: side by side)")
    p.add_argument("inputs", nargs="+", help=".npy or .pose files, or data directories (with --split/--index)")
    p.add_argument("--out", required=True, help="output .gif or .mp4")
    p.add_argument("--split", default="test", help="split of a data directory input (default test)")
    p.add_argument("--index", type=int, default=0, help="sequence index in a data directory input")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--no-titles", action="store_true")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("train", help="train FGDM (PyTorch Lightning)")
    p.add_argument(
        "config",
        nargs="+",
        help="YAML configs, later ones override (e.g. configs/synth.yaml configs/ablations/focal_only.yaml)",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", action="store_true", help="continue from training.output_dir/checkpoints/last.ckpt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("generate", help="sample poses from a trained checkpoint")
    p.add_argument("--checkpoint", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--gloss", help='one gloss sequence, e.g. "MORGEN NORD REGEN"')
    src.add_argument("--split", help="a split of --data (default: the checkpoint's own training data)")
    p.add_argument("--data", help="a PT-format or synthetic-manifest directory (with --split)")
    p.add_argument("--length", type=_parse_length, default="gt", help="gt | predicted | N frames (default gt)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the config's, 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="only the first N sequences of the split")
    p.add_argument("--render", type=int, default=0, help="also render the first N as generated-vs-truth GIFs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-ema", action="store_true", help="sample with the raw weights even if EMA weights exist")
    p.add_argument("--out", required=True, help="a .npy/.pose/.gif/.mp4 file (--gloss) or a directory (--split)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("backtranslator", help="the back-translation evaluator")
    bsub = p.add_subparsers(dest="bt_command", required=True)
    q = bsub.add_parser("train", help="train it on ground-truth poses (frozen afterwards)")
    q.add_argument("config", nargs="+", help="YAML configs, e.g. configs/backtranslator.yaml")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    q.add_argument("--resume", action="store_true")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=_cmd_bt_train)

    p = sub.add_parser("evaluate", help="score a model (and baselines, other systems) under the paper's protocol")
    p.add_argument("--backtranslator", required=True, help="a back-translator checkpoint")
    p.add_argument("--checkpoint", help="an FGDM checkpoint to sample from")
    p.add_argument("--data", help="PT or synthetic-manifest directory (default: the back-translator's data)")
    p.add_argument("--split", default="test")
    p.add_argument("--length", type=_parse_length, default="gt", help="gt | predicted | N")
    p.add_argument("--hyp", action="append", help="poses of another system: a PT directory or a folder of .npy")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="report path without suffix: writes .json and .md")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("score", help="BLEU-1..4, ROUGE-L and WER of two line-aligned text files (JSON)")
    p.add_argument("--hyp", required=True)
    p.add_argument("--ref", required=True)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("model", help="inspect models")
    msub = p.add_subparsers(dest="model_command", required=True)
    q = msub.add_parser("summary", help="parameter counts per component and MACs of one denoiser call (JSON)")
    q.add_argument("config", nargs="+", help="YAML configs, later ones override (e.g. configs/paper.yaml)")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    q.add_argument("--vocab-size", type=int, default=1089, help="gloss vocabulary size (PHOENIX14T: 1089)")
    q.add_argument("--batch", type=int, default=1)
    q.add_argument("--frames", type=int, default=130)
    q.add_argument("--glosses", type=int, default=8)
    q.set_defaults(func=_cmd_model_summary)
    return parser


def _cmd_bt_train(args: argparse.Namespace) -> int:
    from fgdm.config import BackTranslatorConfig, load_config
    from fgdm.evaluation.bt_training import train_backtranslator

    cfg = load_config(args.config, args.set, schema=BackTranslatorConfig)
    with contextlib.redirect_stdout(sys.stderr):  # progress bars on the terminal, stdout keeps the JSON
        result = train_backtranslator(cfg, resume=args.resume, progress=not args.quiet)
    if result.is_global_zero:
        print(json.dumps({"output_dir": str(result.output_dir), "last_checkpoint": str(result.last_checkpoint),
                          "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
                          "steps": result.steps, "dev_wer": result.dev_dtw}, indent=2))  # fmt: skip
    return 0


def _load_hyp(path: Path, split: str, n: int) -> list[np.ndarray]:
    """Poses of another system: a PT directory holding ``{split}.skels``, or a directory of .npy/.pose files."""
    from fgdm.data.io import load_any
    from fgdm.data.pt import parse_skels_line

    if (path / f"{split}.skels").is_file():
        skels = path / f"{split}.skels"
        lines = skels.read_text(encoding="utf-8").splitlines()
        poses = [parse_skels_line(line, skels, i) for i, line in enumerate(lines, start=1)]
    else:
        files = sorted([*path.glob("*.npy"), *path.glob("*.pose")])
        if not files:
            raise DataFormatError(path, None, f"no {split}.skels and no .npy/.pose files to score")
        poses = [load_any(f) for f in files]
    if len(poses) != n:
        raise DataFormatError(path, None, f"{len(poses)} sequences, but the {split} split has {n}")
    return poses


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fgdm.evaluation.bt_training import load_backtranslator
    from fgdm.evaluation.evaluate import System, evaluate_systems, markdown_table, mean_pose, write_report
    from fgdm.training import build_corpus, generate_poses, load_for_sampling

    bt = load_backtranslator(args.backtranslator, device=args.device)
    skip = bt.cfg.data.skip_frames
    if args.data is not None:
        from fgdm.data.sources import open_corpus

        corpus, train = open_corpus(args.data, args.split, skip), open_corpus(args.data, "train", skip)
    else:  # the data the back-translator was trained on
        corpus, train = build_corpus(bt.cfg, args.split), build_corpus(bt.cfg, "train")
    n = len(corpus) if args.limit is None else min(args.limit, len(corpus))
    samples = [corpus[i] for i in tqdm_range(n, "load " + args.split, args.quiet)]
    systems = []
    if args.checkpoint:
        loaded = load_for_sampling(args.checkpoint, device=args.device)
        if loaded.cfg.data.skip_frames != skip:
            raise ValueError(f"the checkpoint samples at skip_frames={loaded.cfg.data.skip_frames}, the "
                             f"back-translator was trained at {skip}: they must match")  # fmt: skip
        ids = loaded.vocab.encode_all([s.glosses for s in samples])
        frames = {"gt": [len(s.pose) for s in samples], "predicted": None}.get(args.length, [args.length] * n)
        poses = generate_poses(loaded, ids, frames, steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                               progress=not args.quiet)  # fmt: skip
        systems.append(System(f"FGDM ({Path(args.checkpoint).name}, step {loaded.step})", poses))
    mean = mean_pose(train)
    systems.append(System("mean pose", [np.repeat(mean[None], len(s.pose), axis=0) for s in samples]))
    for hyp in args.hyp or []:
        systems.append(System(Path(hyp).name, _load_hyp(Path(hyp), args.split, n)))
    report = evaluate_systems(bt, samples, systems, batch_size=args.batch_size, progress=not args.quiet)
    report["meta"] = {"split": args.split, "checkpoint": args.checkpoint, "backtranslator": args.backtranslator,
                      "data": args.data or "the back-translator's training data", "length": args.length,
                      "steps": args.steps, "seed": args.seed}  # fmt: skip
    json_path, md_path = write_report(report, args.out)
    print(markdown_table(report))
    print(f"\nwrote {json_path} and {md_path}")
    return 0


def tqdm_range(n: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(range(n), desc=desc, disable=quiet)


def _cmd_score(args: argparse.Namespace) -> int:
    from fgdm.evaluation.metrics import bleu, rouge_l, wer

    hyp = Path(args.hyp).read_text(encoding="utf-8").splitlines()
    ref = Path(args.ref).read_text(encoding="utf-8").splitlines()
    if len(hyp) != len(ref):
        raise ValueError(f"{args.hyp} has {len(hyp)} lines but {args.ref} has {len(ref)}")
    w = wer(hyp, ref)
    print(json.dumps({**{k: round(v, 4) for k, v in bleu(hyp, ref).items()}, "rouge_l": round(rouge_l(hyp, ref), 4),
                      "wer": round(w.wer, 4), "wer_counts": w.as_dict(), "sentences": len(hyp)}, indent=2))  # fmt: skip
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"fgdm: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    keep_freed_memory()  # large tensors reuse freed pages instead of faulting fresh ones in (fgdm.runtime)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "quiet", False) and args.command in ("train", "backtranslator"):
        import lightning  # noqa: F401  (it sets its loggers' levels on import: quiet them afterwards)

        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (DataFormatError, ValueError, KeyError, FileNotFoundError) as err:
        print(f"fgdm {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
