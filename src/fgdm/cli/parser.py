"""The ``fgdm`` argument parser: every command, option and default in one place."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from fgdm.choices import COMPILE_MODES, MAX_FRAMES, PRECISIONS, LengthMode
from fgdm.cli import commands, generate
from fgdm.cli.arguments import BATCH_SIZE, count, positive_int, positive_rate, seed
from fgdm.version import __version__


def _length(text: str) -> LengthMode:
    try:
        return LengthMode.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes gt, predicted or a frame count from 1 to at most {MAX_FRAMES}, got {text!r}"
        ) from None


def _configs(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("config", nargs="+", help=f"YAML configs, later ones override earlier ones (e.g. {example})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. training.max_steps=500 (repeatable)")  # fmt: skip


def _trainer(sub, name: str, help: str, example: str, func) -> None:
    """A training command: configs, overrides, resume or overwrite."""
    p = sub.add_parser(name, help=help)
    _configs(p, example)
    p.add_argument("--resume", action="store_true", help="continue from training.output_dir/checkpoints/last.ckpt")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh where training.output_dir holds checkpoints (they are replaced)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=func)


def _sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=positive_int, default=None,
                   help="DDIM sampling steps, at most diffusion.timesteps (default: the config's, 5)")  # fmt: skip
    p.add_argument("--seed", type=seed, default=0, help="sampling seed (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"sequences sampled at once (with --split; default {BATCH_SIZE}). Each sequence's poses depend "
                   "on --seed, its position, --device and --precision, and on the batch size by float rounding only "
                   "(about 1e-6 in float32, a few 1e-3 in bf16); evaluate's report records them")  # fmt: skip
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N sequences of the split")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="32",
                   help="32 (default) or bf16: the General stage in bfloat16, faster on GPUs and on CPUs with "
                   "bfloat16 instructions (Intel AMX, AVX512-BF16 as on AMD Zen 4), slower on other CPUs")  # fmt: skip
    p.add_argument("--compile", nargs="?", const="default", default=False, choices=COMPILE_MODES,
                   help="torch.compile the denoiser, in its default mode or the one given (reduce-overhead: also "
                   "CUDA graphs): for many sentences on a GPU; it compiles for minutes; on a CPU no gain")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fgdm", description="Focal-General Diffusion Model for sign language "
                                     "production: glosses to 3D skeleton sequences")  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=f"fgdm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the synthetic sign language as a data directory")
    p.add_argument("--out", required=True, help="output directory (new or empty, unless --overwrite)")
    p.add_argument("--glosses", help="PHOENIX-style CSV (id|signer|annotation|translation), or a directory of "
                   "CSVs, one per split (whose name names it: x.train.csv, phoenix_dev.csv …; a split in doubt is "
                   "refused), rendered instead of grammar sentences")  # fmt: skip
    p.add_argument("--num-train", type=positive_int, default=None,
                   help="train sentences (default 1000; with --glosses: rows to keep, default all)")  # fmt: skip
    p.add_argument("--num-dev", type=positive_int, default=None,
                   help="dev sentences (default 100; with --glosses: rows to keep, default all)")  # fmt: skip
    p.add_argument("--num-test", type=positive_int, default=None,
                   help="test sentences (default 100; with --glosses: rows to keep, default all)")  # fmt: skip
    p.add_argument("--seed", type=seed, default=0, help="one seed is one sign language (default 0)")
    p.add_argument("--workers", type=positive_int, default=1, help="render in this many processes (default 1)")
    p.add_argument("--lazy", action="store_true",
                   help="write only a manifest (synth.json); samples are rendered on demand by index")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="write into a directory that is not empty")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_synth)

    p = sub.add_parser("data", help="check data directories, or import .pose files as one")
    dsub = p.add_subparsers(dest="data_command", required=True)
    for name in ("check", "stats"):
        q = dsub.add_parser(
            name,
            help="validate every split and print statistics as JSON"
            + (" (the same as data check)" if name == "stats" else ""),
        )
        q.add_argument("dir", help="a PT-format directory or a synthetic manifest directory")
        q.add_argument("--split", action="append", help="only this split (repeatable)")
        q.add_argument("--skip-frames", type=positive_int, default=1, help="keep every k-th frame (default 1)")
        q.add_argument("--quiet", action="store_true", help="no progress bars")
        q.set_defaults(func=commands.cmd_data_check)

    q = dsub.add_parser("import", help="MediaPipe Holistic .pose files + a PHOENIX-style gloss CSV → a PT directory")
    q.add_argument("poses", help="a directory of .pose files (video_to_pose's output), named like the CSV ids")
    q.add_argument("--glosses", required=True, help="a PHOENIX-style CSV (id|signer|annotation|translation), or "
                   "a directory of CSVs, one per split (whose name names it: x.train.csv, phoenix_dev.csv …; a split "
                   "in doubt is refused)")  # fmt: skip
    q.add_argument("--out", required=True, help="the PT directory to write (new or empty, unless --overwrite)")
    q.add_argument("--overwrite", action="store_true", help="write into a directory that is not empty")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=commands.cmd_data_import)

    p = sub.add_parser("render", help="render sequences to GIF or MP4 (several inputs: side by side)")
    p.add_argument("inputs", nargs="+", help=".npy or .pose files, or data directories (with --split/--index)")
    p.add_argument("--out", required=True, help="output .gif or .mp4")
    p.add_argument("--split", default="test", help="split of a data directory input (default test)")
    p.add_argument("--index", type=int, default=0, help="sequence index in a data directory input (default 0)")
    p.add_argument("--fps", type=positive_rate, default=None,
                   help="frames per second (default: the inputs' own: a .pose file's, or {split}.fps beside PT "
                   "files as fgdm generate writes it; else 25, also for a .npy, which holds no rate (a warning says "
                   "so beside inputs at other rates; give --fps for a model's .npy at its rate); inputs at whole "
                   "multiples of the lowest rate keep every k-th frame)")  # fmt: skip
    p.add_argument("--no-titles", action="store_true", help="no title above each panel")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=commands.cmd_render)

    _trainer(sub, "train", "train FGDM (PyTorch Lightning)", "configs/synth.yaml configs/ablations/focal_only.yaml",
             commands.cmd_train)  # fmt: skip

    p = sub.add_parser("generate", help="sample poses from a trained checkpoint")
    p.add_argument("--checkpoint", help="a training checkpoint (.ckpt) or an exported directory (default: the "
                   "weights shipped with fgdm, trained on the embedded synthetic language)")  # fmt: skip
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--gloss", help='one gloss sequence, e.g. "MORGEN NORD REGEN"')
    src.add_argument("--split", help="sample this split of --data (train, dev or test)")
    p.add_argument("--data", help="a PT-format or synthetic-manifest directory (with --split; default: the data the "
                   "checkpoint was trained on)")  # fmt: skip
    p.add_argument("--length", type=_length, default=None,
                   help="gt | predicted | N frames (default: the checkpoint config's testing.length, gt in fgdm's "
                   "configs, which --gloss, having no reference, takes as predicted)")  # fmt: skip
    p.add_argument(
        "--render",
        type=count,
        default=0,
        help="with --split, also render the first N as generated-vs-truth GIFs and PNG contact sheets",
    )
    p.add_argument("--no-ema", action="store_true", help="sample with the raw weights even if EMA weights exist")
    p.add_argument("--out", required=True, help="a .npy/.pose/.gif/.mp4 file (--gloss) or a directory (--split)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier output (never the data's own files)")
    _sampling(p)
    p.set_defaults(func=generate.cmd_generate)

    p = sub.add_parser("export", help="a training checkpoint → inference weights (safetensors, config, vocabulary)")
    p.add_argument("checkpoint", help="a training checkpoint (.ckpt; its EMA weights when it has them) or an "
                   "exported directory")  # fmt: skip
    p.add_argument("--out", required=True, help="the directory to write (new or empty, unless --overwrite)")
    p.add_argument("--data", default="keep", help="the training data the config records: keep (as trained; the "
                   "default), embedded (the embedded language, also when it was written to files first) or a "
                   "path")  # fmt: skip
    p.add_argument("--report", help="an fgdm evaluate report.json whose table goes into the model card")
    p.add_argument("--name", help="the model card's title (default: the directory's name)")
    p.add_argument("--how", default="", help="one line for the model card on how it was trained (a command)")
    p.add_argument("--overwrite", action="store_true", help="write into a directory that is not empty")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("backtranslator", help="the back-translation evaluator")
    bsub = p.add_subparsers(dest="bt_command", required=True)
    _trainer(bsub, "train", "train it on ground-truth poses (frozen afterwards)", "configs/backtranslator.yaml",
             commands.cmd_bt_train)  # fmt: skip

    p = sub.add_parser("evaluate", help="score a model (and baselines, other systems) under the paper's protocol")
    p.add_argument("--backtranslator", required=True, help="a back-translator checkpoint")
    p.add_argument("--checkpoint", help="an FGDM checkpoint to sample from (without it or --hyp, the report "
                   "scores the ground truth and the baselines only)")  # fmt: skip
    p.add_argument("--data", help="PT or synthetic-manifest directory (default: the back-translator's data)")
    p.add_argument("--split", default="test", help="the split to score (default test)")
    p.add_argument("--length", type=_length, default=None,
                   help="gt | predicted | N (default: the checkpoint config's testing.length, gt in fgdm's "
                   "configs)")  # fmt: skip
    p.add_argument("--hyp", action="append", help="poses of another system, matched to the split by name: a PT "
                   "directory (SPLIT.skels and .files; .gloss and .text optional) or a folder of .npy/.pose files "
                   "named like the split (hidden files ignored; in a folder named SPLIT where other splits share "
                   "the names) (repeatable); .skels/.npy count as 25 fps unless SPLIT.fps beside them says their "
                   "rate; what reading .pose files changes (points filled in, renormalised) goes in the "
                   "report's notes")  # fmt: skip
    p.add_argument("--out", required=True, help="report path without suffix: writes .json, .md and .html")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    _sampling(p)
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("score", help="BLEU-1..4, ROUGE-L and WER of two line-aligned text files (JSON)")
    p.add_argument("--hyp", required=True, help="hypotheses, one sentence per line")
    p.add_argument("--ref", required=True, help="references, one sentence per line")
    p.add_argument("--as-is", action="store_true",
                   help="every metric of the lines as written, split at whitespace (default: each metric as evaluate "
                   "computes it: BLEU and ROUGE-L of both sides lower-cased with punctuation split off, as its text; "
                   "WER of the lines as written, case and punctuation counting, as its glosses)")  # fmt: skip
    p.set_defaults(func=commands.cmd_score)

    p = sub.add_parser("model", help="inspect models")
    msub = p.add_subparsers(dest="model_command", required=True)
    q = msub.add_parser("summary", help="parameter counts per component and MACs of one denoiser call (JSON)")
    _configs(q, "configs/paper.yaml")
    q.add_argument("--vocab-size", type=positive_int, default=1089,
                   help="gloss vocabulary size (default 1089, PHOENIX14T's)")  # fmt: skip
    q.add_argument("--batch", type=positive_int, default=1, help="sequences in the call (default 1)")
    q.add_argument("--frames", type=positive_int, default=130, help="frames per sequence (default 130)")
    q.add_argument("--glosses", type=positive_int, default=8, help="glosses per sequence (default 8)")
    q.set_defaults(func=commands.cmd_model_summary)
    return parser


# A command's list of positionals, and which of the arguments left unrecognised after its options it takes: config
# files (YAML) for the training commands and model summary; render's inputs (.npy, .pose, a data directory)
_TRAILING = {
    "config": lambda item: item.lower().endswith((".yaml", ".yml")),
    "inputs": lambda item: item.lower().endswith((".npy", ".pose")) or Path(_home(item)).is_dir(),
}


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's arguments. A command's list of files may go on after options too (``train A.yaml --set
    K=V B.yaml``, ``render a.npy --out x.gif b.pose``): argparse takes a command's positionals in one run, so the
    files after an option come back unrecognised and join the others here, in their order (``--set`` applies after
    every config file, wherever it stands); anything else unrecognised is the usage error it always was, and is all
    the error names."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    extra = [item for item in extra if item != "--"]  # argparse's end of options, where it was left over
    if "--debug" in extra:  # after the command's name, where argparse's top-level option is not looked for
        extra, args.debug = [item for item in extra if item != "--debug"], True
    dest = next((name for name in _TRAILING if hasattr(args, name)), None)
    taken = [item for item in extra if dest and not item.startswith("-") and _TRAILING[dest](item)]
    wrong = [item for item in extra if item not in taken]
    if wrong:
        parser.error(f"unrecognized arguments: {' '.join(wrong)}")
    if taken:
        setattr(args, dest, getattr(args, dest) + taken)
    for name in _PATHS:  # what the shell left as it was (--out=~/x, a quoted "~/x"): the home's, as --set's paths
        value = getattr(args, name, None)
        if isinstance(value, (str, list)):
            setattr(args, name, _home(value) if isinstance(value, str) else [_home(v) for v in value])
    return args


# The arguments that name files or directories (a name such as --checkpoint synth or --data keep has no ~)
_PATHS = ("config", "out", "dir", "poses", "glosses", "inputs", "checkpoint", "data", "report", "backtranslator",
          "hyp", "ref")  # fmt: skip


def _home(path: str) -> str:
    return os.path.expanduser(path) if path.startswith("~") else path
