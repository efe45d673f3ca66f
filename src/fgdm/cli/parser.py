"""The ``fgdm`` argument parser: every command, option and default in one place."""

from __future__ import annotations

import argparse

from fgdm.cli import commands
from fgdm.sampling import LengthMode


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {n}")
    return n


def _length(text: str) -> LengthMode:
    try:
        return LengthMode.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--length takes gt, predicted or a frame count ≥ 1, got {text!r}") from None


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
    p.set_defaults(func=commands.cmd_synth)

    p = sub.add_parser("data", help="inspect data directories")
    dsub = p.add_subparsers(dest="data_command", required=True)
    for name in ("check", "stats"):
        q = dsub.add_parser(name, help="validate every split and print statistics as JSON")
        q.add_argument("dir", help="a PT-format directory or a synthetic manifest directory")
        q.add_argument("--split", action="append", help="only this split (repeatable)")
        q.add_argument("--skip-frames", type=int, default=1, help="keep every k-th frame")
        q.add_argument("--quiet", action="store_true", help="no progress bars")
        q.set_defaults(func=commands.cmd_data_check)

    p = sub.add_parser("render", help="render sequences to GIF or MP4 (several inputs: side by side)")
    p.add_argument("inputs", nargs="+", help=".npy or .pose files, or data directories (with --split/--index)")
    p.add_argument("--out", required=True, help="output .gif or .mp4")
    p.add_argument("--split", default="test", help="split of a data directory input (default test)")
    p.add_argument("--index", type=int, default=0, help="sequence index in a data directory input")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--no-titles", action="store_true")
    p.set_defaults(func=commands.cmd_render)

    p = sub.add_parser("train", help="train FGDM (PyTorch Lightning)")
    p.add_argument(
        "config",
        nargs="+",
        help="YAML configs, later ones override (e.g. configs/synth.yaml configs/ablations/focal_only.yaml)",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", action="store_true", help="continue from training.output_dir/checkpoints/last.ckpt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("generate", help="sample poses from a trained checkpoint")
    p.add_argument("--checkpoint", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--gloss", help='one gloss sequence, e.g. "MORGEN NORD REGEN"')
    src.add_argument("--split", help="a split of --data (default: the checkpoint's own training data)")
    p.add_argument("--data", help="a PT-format or synthetic-manifest directory (with --split)")
    p.add_argument("--length", type=_length, default=None,
                   help="gt | predicted | N frames (default: gt with --split, predicted with --gloss)")  # fmt: skip
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the config's, 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="only the first N sequences of the split")
    p.add_argument("--render", type=int, default=0, help="also render the first N as generated-vs-truth GIFs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-ema", action="store_true", help="sample with the raw weights even if EMA weights exist")
    p.add_argument("--out", required=True, help="a .npy/.pose/.gif/.mp4 file (--gloss) or a directory (--split)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=commands.cmd_generate)

    p = sub.add_parser("backtranslator", help="the back-translation evaluator")
    bsub = p.add_subparsers(dest="bt_command", required=True)
    q = bsub.add_parser("train", help="train it on ground-truth poses (frozen afterwards)")
    q.add_argument("config", nargs="+", help="YAML configs, e.g. configs/backtranslator.yaml")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    q.add_argument("--resume", action="store_true")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=commands.cmd_bt_train)

    p = sub.add_parser("evaluate", help="score a model (and baselines, other systems) under the paper's protocol")
    p.add_argument("--backtranslator", required=True, help="a back-translator checkpoint")
    p.add_argument("--checkpoint", help="an FGDM checkpoint to sample from")
    p.add_argument("--data", help="PT or synthetic-manifest directory (default: the back-translator's data)")
    p.add_argument("--split", default="test")
    p.add_argument("--length", type=_length, default=LengthMode("gt"), help="gt | predicted | N (default gt)")
    p.add_argument("--hyp", action="append", help="poses of another system: a PT directory or a folder of .npy")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="report path without suffix: writes .json and .md")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("score", help="BLEU-1..4, ROUGE-L and WER of two line-aligned text files (JSON)")
    p.add_argument("--hyp", required=True)
    p.add_argument("--ref", required=True)
    p.set_defaults(func=commands.cmd_score)

    p = sub.add_parser("model", help="inspect models")
    msub = p.add_subparsers(dest="model_command", required=True)
    q = msub.add_parser("summary", help="parameter counts per component and MACs of one denoiser call (JSON)")
    q.add_argument("config", nargs="+", help="YAML configs, later ones override (e.g. configs/paper.yaml)")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    q.add_argument("--vocab-size", type=int, default=1089, help="gloss vocabulary size (PHOENIX14T: 1089)")
    q.add_argument("--batch", type=int, default=1)
    q.add_argument("--frames", type=int, default=130)
    q.add_argument("--glosses", type=int, default=8)
    q.set_defaults(func=commands.cmd_model_summary)
    return parser
