"""Real DGS motion with coarser gloss forms: a PT directory whose glosses are DGS Corpus lemmas.

    python benchmarks/dgs_gloss_forms.py DGS_PT OUT --form lemma|backoff [--rate 0.5] [--seed 0]

Half of dgs-pt dev's gloss tokens never occur in training and reach the model as ``<unk>``. DGS Corpus
glosses carry marks after the sign's name: ``*`` (modified form), ``^`` (lexicalised), a number telling
apart signs with the same German word, a variant letter and a ``:…`` qualifier (``$NUM-EINER1A:2``).
The lemma is what is left without them (``DANKE2*`` → ``DANKE``), and only 50 of dev's 213 tokens have an
unseen lemma. Two ways to give the model that sharing, each written as a new PT directory (skeletons,
texts and names are links to DGS_PT's files, or copies where a split changes):

- ``lemma``: every gloss of both splits replaced by its lemma;
- ``backoff``: training keeps the glosses and adds a second copy of every sequence in which each gloss is
  its lemma token (``~DANKE``) with probability ``--rate``, so lemma tokens get trained embeddings; a dev
  gloss keeps its form if training has it, else becomes its lemma token if training has that, else stays
  (and is ``<unk>``).

The learning-curve runs on them are in benchmarks/README.md (*Gloss forms*).
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from common import InputError, count, probability, refuse_existing, run  # a sibling module

_MARKS = re.compile(r"[0-9]+[A-Z]?(:.*)?$")


def lemma(gloss: str) -> str:
    """A DGS Corpus gloss without its marks, number, variant letter and qualifier: ``AB1A^*`` → ``AB``."""
    return _MARKS.sub("", gloss.rstrip("*^")) or gloss


def _read(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.unlink(missing_ok=True)  # a link an earlier --form left: never write through it into the source
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _link(source: Path, out: Path, split: str, suffixes: tuple[str, ...]) -> None:
    for suffix in suffixes:
        target = out / f"{split}.{suffix}"
        target.unlink(missing_ok=True)
        target.symlink_to((source / f"{split}.{suffix}").resolve())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="the dgs-pt directory (train and dev splits)")
    ap.add_argument("out", type=Path, help="the new PT directory")
    ap.add_argument("--form", choices=("lemma", "backoff"), required=True)
    ap.add_argument("--rate", type=probability, default=0.5, help="backoff: a gloss's chance to be its lemma (0.5)")
    ap.add_argument("--seed", type=count, default=0, help="backoff: the random choice's seed (0)")
    ap.add_argument("--overwrite", action="store_true", help="replace the PT files of an earlier run in OUT")
    args = ap.parse_args()
    if args.out.resolve() == args.source.resolve():
        raise InputError(f"{args.out}: the source directory itself; choose a new directory for the new data")
    for name in ("train.gloss", "dev.gloss"):  # a missing source fails before anything is written
        if not (args.source / name).is_file():
            raise InputError(f"{args.source / name}: not found (the source is a PT directory with train and dev)")
    refuse_existing([args.out / f"{split}.{suffix}" for split in ("train", "dev") for suffix in ("skels", "gloss")],
                    args.overwrite, option="OUT")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    train = [line.split() for line in _read(args.source / "train.gloss")]
    dev = [line.split() for line in _read(args.source / "dev.gloss")]
    if args.form == "lemma":
        train, dev = [list(map(lemma, s)) for s in train], [list(map(lemma, s)) for s in dev]
        _link(args.source, args.out, "train", ("skels", "text", "files"))
    else:
        rng = random.Random(args.seed)
        train += [["~" + lemma(g) if rng.random() < args.rate else g for g in s] for s in train]
        for suffix in ("skels", "text", "files"):
            lines = _read(args.source / f"train.{suffix}")
            _write(args.out / f"train.{suffix}", lines + ([f"{n}-copy" for n in lines] if suffix == "files" else lines))
    known = {g for s in train for g in s}
    if args.form == "backoff":
        dev = [[g if g in known or "~" + lemma(g) not in known else "~" + lemma(g) for g in s] for s in dev]
    _write(args.out / "train.gloss", [" ".join(s) for s in train])
    _write(args.out / "dev.gloss", [" ".join(s) for s in dev])
    _link(args.source, args.out, "dev", ("skels", "text", "files"))
    tokens = [g for s in dev for g in s]
    seen = sum(g in known for g in tokens)
    print(f"{args.out}: {args.form}; {seen} of dev's {len(tokens)} gloss tokens occur in training, the rest are <unk>")


if __name__ == "__main__":
    run(main)
