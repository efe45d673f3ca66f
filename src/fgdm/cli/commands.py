"""The commands of ``fgdm``: each reads its parsed arguments and makes one call into the library."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

from fgdm.cli.arguments import BATCH_SIZE
from fgdm.cli.refusals import refuse_existing, refuse_nonempty, refuse_unwritable
from fgdm.data.pt import DataFormatError, not_a_folder


def print_json(value) -> None:
    """A command's result on stdout, as indented JSON; names in any script as they are (not \\u00fc)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):  # a terminal or pipe that cannot show them (PYTHONIOENCODING=ascii, a
        text = json.dumps(value, indent=2)  # cp1252 console): JSON's escapes (main's backslashreplace is not JSON)
    print(text)


def cmd_synth(args: argparse.Namespace) -> int:
    from fgdm.data.sources import make_synth

    refuse_nonempty(Path(args.out), args.overwrite)
    sizes = {"train": args.num_train, "dev": args.num_dev, "test": args.num_test}
    summary = make_synth(args.out, args.seed, sizes, args.glosses, args.lazy, args.workers, progress=not args.quiet)
    print_json(summary)
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from fgdm.data.stats import check_directory

    report = check_directory(args.dir, args.split, args.skip_frames, progress=not args.quiet)
    print_json(report)
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    from fgdm.data.sources import import_holistic

    refuse_nonempty(Path(args.out), args.overwrite)
    print_json(import_holistic(args.poses, args.glosses, Path(args.out), progress=not args.quiet))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from fgdm.data.io import FPS, load_any_with_rate, playback_rate, read_frame_rate
    from fgdm.data.sources import MANIFEST, open_corpus
    from fgdm.render import animation_format, save_animation, shown_frames, warn_unconventional

    animation_format(args.out)  # a name that cannot be written fails before any reading
    if Path(args.out).is_dir():
        raise ValueError(f"{args.out} is a directory: --out names the animation's file")
    sequences, titles, rates = [], [], []  # rates: (input, its frame rate where it says one, else None)
    for spec in map(Path, args.inputs):
        if spec.is_dir():
            corpus = open_corpus(spec, args.split)
            if not 0 <= args.index < len(corpus):
                raise ValueError(
                    f"{spec}: the {args.split} split is empty"
                    if not len(corpus)
                    else f"--index {args.index} out of range: {spec}'s {args.split} split has 0 to {len(corpus) - 1}"
                )
            sample = corpus[args.index]
            sequences.append(sample.pose)
            titles.append(f"{spec.resolve().name}: {' '.join(sample.glosses)}"[:60])  # (".": the folder's name)
            rates.append((str(spec), FPS if (spec / MANIFEST).is_file() else read_frame_rate(spec, args.split, FPS)))
        elif not spec.exists():
            raise DataFormatError(spec, None, "file not found")
        else:
            pose, rate = load_any_with_rate(spec)
            sequences.append(pose)
            rates.append((str(spec), rate))
            titles.append(spec.name)
    warn_unconventional((name, seq) for (name, _), seq in zip(rates, sequences, strict=True))
    fps, steps = playback_rate(rates, played=args.fps)
    sequences = [s[::k] for s, k in zip(sequences, steps, strict=True)]
    refuse_unwritable(Path(args.out))
    refuse_existing([Path(args.out)], args.overwrite)
    path = save_animation(args.out, sequences, titles if not args.no_titles else None, fps=fps)
    print(f"wrote {path}: {shown_frames(max(map(len, sequences)), fps, path)}, {len(sequences)} panel(s)")
    return 0


def cmd_model_summary(args: argparse.Namespace) -> int:
    from fgdm.config import load_config
    from fgdm.data.vocab import SPECIALS
    from fgdm.model import build_model
    from fgdm.model.summary import model_summary

    if args.vocab_size <= len(SPECIALS):
        raise ValueError(f"--vocab-size {args.vocab_size}: a vocabulary holds {' '.join(SPECIALS)} and a gloss at "
                         f"least, {len(SPECIALS) + 1} tokens")  # fmt: skip
    model = build_model(load_config(args.config, args.set), args.vocab_size)
    summary = model_summary(model, args.batch, args.frames, args.glosses)
    print_json({"config": args.config, "vocab_size": args.vocab_size, **summary})
    return 0


def print_result(result) -> None:
    if result.is_global_zero:  # one summary, from the first process
        best = str(result.best_checkpoint) if result.best_checkpoint else None
        print_json({"output_dir": str(result.output_dir), "last_checkpoint": str(result.last_checkpoint),
                    "best_checkpoint": best, "steps": result.steps,
                    result.monitor.replace("/", "_"): result.monitored,  # the last validation's; best.ckpt's:
                    "best_" + result.monitor.replace("/", "_"): result.best_monitored,
                    "steps_per_second": round(result.steps_per_second, 2),
                    "late_steps_per_second": round(result.late_steps_per_second, 2),
                    "median_steps_per_second": round(result.median_steps_per_second, 2),
                    "train_sequences": result.sequences,
                    "train_sequences_per_second": round(result.sequences_per_second, 2)})  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    from fgdm.config import load_config
    from fgdm.training import train

    cfg = load_config(args.config, args.set)
    with contextlib.redirect_stdout(sys.stderr):  # progress bars on the terminal, stdout keeps the JSON
        result = train(cfg, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    print_result(result)
    return 0


def cmd_bt_train(args: argparse.Namespace) -> int:
    from fgdm.config import BackTranslatorConfig, load_config
    from fgdm.training import train_backtranslator

    cfg = load_config(args.config, args.set, schema=BackTranslatorConfig)
    with contextlib.redirect_stdout(sys.stderr):
        result = train_backtranslator(cfg, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    print_result(result)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from fgdm.config import to_dict
    from fgdm.evaluation.report import model_card, read_report
    from fgdm.sampling import export, load_for_sampling, refuse_run_directory

    out = Path(args.out)
    refuse_run_directory(out)  # before --overwrite is offered for it
    refuse_nonempty(out, args.overwrite, "the weights")
    if args.data not in ("keep", "embedded") and not Path(args.data).is_dir():
        raise DataFormatError(args.data, None, "data directory not found (--data: keep, embedded or a directory)")
    loaded = load_for_sampling(args.checkpoint)
    report = read_report(args.report, args.checkpoint, loaded.step) if args.report else None  # before any writing
    if args.data != "keep":  # the data the card and generate --split will take for its training data
        from fgdm.data.sources import known_glosses

        data = dataclasses.replace(loaded.cfg.data, path=None if args.data == "embedded" else args.data)
        loaded.vocab.require_mostly_known(known_glosses(data), f"--data {args.data}")
    known = " ".join([g for g in ("MORGEN", "NORD", "REGEN") if g in loaded.vocab] or loaded.vocab.itos[4:7])
    export(loaded, out, {"keep": "keep", "embedded": None}.get(args.data, args.data), card=lambda cfg: model_card(
        args.name or out.name, to_dict(cfg), loaded.step, len(loaded.vocab), report, args.how, known))  # fmt: skip
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print_json({"out": str(out), "step": loaded.step, "megabytes": round(size, 2)})
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fgdm.evaluation.protocol import evaluate
    from fgdm.evaluation.report import markdown_table, report_paths, write_report

    paths = report_paths(args.out)
    refuse_unwritable(paths[0])
    refuse_existing(list(paths), args.overwrite)
    for hyp in args.hyp or []:  # before sampling, which may take long
        if problem := not_a_folder(Path(hyp), "the system's poses"):
            raise DataFormatError(hyp, None, f"hypothesis directory {problem} (--hyp)")
    report = evaluate(args.backtranslator, args.checkpoint, args.data, args.split, args.length, args.hyp or [],
                      args.steps, args.seed, args.limit, args.batch_size or BATCH_SIZE, args.device, not args.quiet,
                      examples=3, precision=args.precision, compile=args.compile)  # fmt: skip
    paths = write_report(report, args.out)
    print(markdown_table(report))
    print(f"\nwrote {', '.join(map(str, paths))}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from fgdm.evaluation.scores import score_text_files

    print_json(score_text_files(args.hyp, args.ref, tokenize=not args.as_is))
    return 0
