"""``fgdm generate``: one typed sentence to a pose file or an animation, or a data split to PT files (with
renders beside them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fgdm.cli.arguments import BATCH_SIZE
from fgdm.cli.commands import print_json
from fgdm.cli.refusals import refuse_existing, refuse_unwritable
from fgdm.data.pt import DataFormatError


def cmd_generate(args: argparse.Namespace) -> int:
    from fgdm.choices import LengthMode
    from fgdm.data.io import write_frame_rate
    from fgdm.data.pt import PTSplit, write_split
    from fgdm.data.vocab import gloss_tokens
    from fgdm.sampling import generate_for, generate_poses, load_for_sampling

    out = Path(args.out)
    refuse_unwritable(out)
    if args.gloss is not None:
        given = {"data": args.data, "limit": args.limit, "render": args.render, "batch-size": args.batch_size}
        split_only = [f"--{k}" for k, v in given.items() if v]
        if split_only:
            raise ValueError(f"{' and '.join(split_only)}: only with --split (--gloss samples one sentence)")
        tokens = gloss_tokens(args.gloss)
        if not tokens:
            raise ValueError("--gloss is empty")
        if out.suffix.lower() not in (".npy", ".pose", ".gif", ".mp4") or out.is_dir():
            raise ValueError(f"{out}: --gloss writes a .npy, .pose, .gif or .mp4 file"
                             + (", and this is a directory" if out.is_dir() else ""))  # fmt: skip
    loaded = load_for_sampling(args.checkpoint, device=args.device, use_ema=not args.no_ema, precision=args.precision,
                               compile=args.compile)  # fmt: skip
    if args.gloss is not None:
        ids = loaded.vocab.encode_sentence(tokens, "--gloss")  # a typo's warning offers the closest known gloss
        frames = (args.length or LengthMode.from_config(loaded.cfg, reference=False)).frame_counts(None, 1)
        refuse_existing([out], args.overwrite)
        (pose,) = generate_poses(loaded, [ids], frames, steps=args.steps, seed=args.seed)
        if out.suffix.lower() in (".gif", ".mp4"):
            from fgdm.render import save_animation

            save_animation(out, pose, [" ".join(tokens)], fps=loaded.fps, progress=False if args.quiet else None)
        else:
            from fgdm.data.io import save_sequence

            save_sequence(out, pose, fps=loaded.fps)
        hint = f"; a .npy holds no rate: fgdm render --fps {loaded.fps:g}" if out.suffix.lower() == ".npy" else ""
        print(f"wrote {out} ({len(pose)} frame{'s' * (len(pose) != 1)} at {loaded.fps:g} fps{hint})")
        return 0
    if out.suffix or (out.exists() and not out.is_dir()):
        raise ValueError(f"{out}: with --split the output is a directory (PT files), not a file")
    from fgdm.data.sources import MANIFEST, VOCAB, build_corpus, open_corpus  # (the synthetic signer: a split's)

    data = args.data or loaded.cfg.data.path  # the data the checkpoint was trained on unless --data
    if data is not None and out.is_dir() and out.resolve() == Path(data).resolve():
        raise ValueError(f"{out} is the data directory: writing there would overwrite the data's own "
                         f"{args.split}.skels; choose another --out")  # fmt: skip
    marks = [VOCAB, MANIFEST, *(["train.skels"] if args.split != "train" else [])]  # a data set's files
    if mark := next((m for m in marks if (out / m).exists()), None):
        raise ValueError(f"{out} holds a data set ({mark}): generated poses never replace a data set's splits; "
                         "choose another --out")  # fmt: skip
    refuse_existing([out / f"{args.split}.{ext}" for ext in ("skels", "gloss", "text", "files")], args.overwrite)
    if args.data is None and data is not None and not Path(data).is_dir():  # moved since training, say
        raise DataFormatError(data, None, "not found: the checkpoint's training data (data.path); --data gives others")
    skip = loaded.cfg.data.skip_frames
    corpus = open_corpus(args.data, args.split, skip) if args.data else build_corpus(loaded.cfg.data, args.split)
    where = f"the {args.split} split of {data or 'the embedded synthetic data'}"
    if len(corpus) == 0:
        raise ValueError(f"{where} has no sequences")
    # the whole split, not --limit's few: a small corpus's dev split may hold half its glosses unseen in training
    loaded.vocab.require_mostly_known(corpus.gloss_sequences(), where, limit=0.9)
    samples = [corpus[i] for i in range(len(corpus) if args.limit is None else min(args.limit, len(corpus)))]
    length = args.length or LengthMode.from_config(loaded.cfg)
    poses = generate_for(loaded, samples, length, steps=args.steps, seed=args.seed,
                         batch_size=args.batch_size or BATCH_SIZE, progress=not args.quiet)  # fmt: skip
    write_split(out, args.split, PTSplit(poses=poses, glosses=[list(s.glosses) for s in samples],
                                         texts=[s.text for s in samples], names=[s.name for s in samples]))  # fmt: skip
    write_frame_rate(out, args.split, loaded.fps)
    stale = out.glob(f"{args.split}_[0-9][0-9][0-9][0-9].*") if args.overwrite else []  # the replaced run's renders
    for old in (p for p in stale if p.suffix in (".gif", ".png")):
        old.unlink()
    rendered = []
    for i in range(min(args.render, len(samples))):
        from fgdm.render import save_comparison

        paths = save_comparison(out / f"{args.split}_{i:04d}.gif", poses[i], samples[i].pose,
                                " ".join(samples[i].glosses), loaded.fps, False if args.quiet else None)  # fmt: skip
        rendered += [str(p) for p in paths]
    # how they were sampled: the poses depend on every one of these
    how = {"checkpoint": str(args.checkpoint or "the shipped weights"), "step": loaded.step, "seed": args.seed,
           **loaded.sampling(args.steps), "length": str(length), "fps": loaded.fps}  # fmt: skip
    print_json({"out": str(out), "split": args.split, "sequences": len(samples), **how, "rendered": rendered})
    return 0
