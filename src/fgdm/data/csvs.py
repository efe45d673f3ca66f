"""PHOENIX-style gloss CSVs (``id|signer|annotation|translation``, PHOENIX14T's ``*.corpus.csv``): reading one,
and finding each split's in a folder. ``fgdm synth --glosses`` renders their rows, ``fgdm data import`` pairs them
with ``.pose`` files."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from fgdm.data.pt import SPLITS, DataFormatError, refuse_repeats, text_lines
from fgdm.data.vocab import odd_character, odd_character_problem, token_problem
from fgdm.encoding import decompress


@dataclass(frozen=True)
class CSVRow:
    """One PHOENIX-style annotation row."""

    name: str
    signer: str
    glosses: tuple[str, ...]
    text: str
    line: int = 0  # its 1-based line in the file (0: not from a file)


def read_phoenix_csv(path: Path | str) -> list[CSVRow]:
    """Reads ``id|signer|annotation|translation`` rows (PHOENIX14T's ``*.corpus.csv``).

    The header names the columns (extra columns are allowed); each row has as many fields as the header, and ids
    are unique. Errors name the file and line.
    """
    path = Path(path)
    rows: list[CSVRow] = []
    lines: list[tuple[int, str]] = []  # each row's line and id
    # one row a line (QUOTE_NONE: no field spans lines), so the reader's rows keep the file's line numbers
    reader = csv.reader(text_lines(path, "file not found", tokens=False), delimiter="|", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    need = ("name", "signer", "orth", "translation")
    aliases = {"id": "name", "annotation": "orth", "speaker": "signer"}
    if header is None:
        raise DataFormatError(path, 1, "empty file (expected a header id|signer|annotation|translation)")
    if not "".join(header).strip():
        raise DataFormatError(path, 1, "a blank line: the header id|signer|annotation|translation is the first line")
    cols = [aliases.get(h.strip().lower(), h.strip().lower()) for h in header]  # Name|Speaker|Orth|Translation too
    missing = [c for c in need if c not in cols]
    names = {v: k for k, v in aliases.items() if k != "speaker"}  # the names the header may use (PHOENIX14T's)
    if missing:
        other = next((sep for sep in ",;\t" if len(header) == 1 and sep in header[0]), None)  # another separator
        quoted = all(map(_quoted, header))
        problem = (f"its columns are separated by {other!r}, not '|'" if other else
                   "its fields are in double quotes (a spreadsheet's export?), which this format has none of: "
                   "remove them" if quoted else f"it lacks {', '.join(names.get(c, c) for c in missing)}")  # fmt: skip
        raise DataFormatError(path, 1, f"header {'|'.join(header)!r}: {problem} (expected id|signer|annotation|"
                              "translation, separated by '|')")  # fmt: skip
    if twice := next((c for c in need if cols.count(c) > 1), None):  # which one is meant cannot be told
        raise DataFormatError(path, 1, f"header {'|'.join(header)!r}: the column {names.get(twice, twice)} twice")
    idx = {c: cols.index(c) for c in need}
    for lineno, fields in enumerate(reader, start=2):
        if not "".join(fields).strip():  # a blank line, spaces only included
            continue
        if len(fields) != len(cols):  # more: a '|' inside a field, which this format cannot hold
            raise DataFormatError(path, lineno, f"{len(fields)} fields, the header has {len(cols)}")
        for column in ("name", "orth"):  # glosses and ids: a no-break space would split one unseen (free text may)
            if _quoted(fields[idx[column]]):  # the quotes would stay in the id, the first and the last gloss
                raise DataFormatError(path, lineno, f"{header[idx[column]].strip()} {fields[idx[column]].strip()}: "
                                      "in double quotes (a spreadsheet's export?), which this format has none of: "
                                      "remove them")  # fmt: skip
            at = odd_character(fields[idx[column]])
            if at is not None:
                raise DataFormatError(path, lineno, f"{header[idx[column]].strip()}: "
                                      f"{odd_character_problem(fields[idx[column]], at)}")  # fmt: skip
        glosses = tuple(fields[idx["orth"]].split())
        if not glosses:
            raise DataFormatError(path, lineno, "empty annotation (no glosses)")
        problem = next(filter(None, map(token_problem, glosses)), None)  # a vocabulary's own token (<pad>, ...)
        if problem:
            raise DataFormatError(path, lineno, problem)
        if not fields[idx["translation"]].strip():
            raise DataFormatError(path, lineno, "empty translation")
        name = fields[idx["name"]].strip()
        if not name:
            raise DataFormatError(path, lineno, "empty id")
        lines.append((lineno, name))
        rows.append(CSVRow(name, fields[idx["signer"]], glosses, fields[idx["translation"]].strip(), lineno))
    if not rows:
        raise DataFormatError(path, None, "no rows after the header")
    refuse_repeats(path, lines, "id")
    return rows


def _quoted(field: str) -> bool:
    """A CSV field in double quotes, as a spreadsheet's export writes them."""
    field = field.strip()
    return len(field) > 1 and field[0] == field[-1] == '"'


def csv_splits(path: Path | str) -> dict[str, Path]:
    """PHOENIX-style CSVs per split: one file, or a directory of them.

    A file's split is the one its name names as a component (below), else train. In a directory (hidden files,
    such as macOS's ``._*``, aside) a split's CSV is the one file whose name has the split as a dot-separated
    component (``PHOENIX-2014-T.train.corpus.csv``, ``test.csv``), else the one that has it delimited otherwise
    (``phoenix_dev.csv``): PHOENIX14T's ``annotations/manual`` gives train its ``.train.`` file, not
    ``.train-complex-annotation.``, and ``test.csv`` beats ``extra_test_set.csv``. Two candidates for a split,
    or a file named for two splits, are refused (a file passed itself is read as one split).
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".csv" and not f.name.startswith(".")
                       and f.is_file())  # fmt: skip
        found: dict[str, Path] = {}
        for split in SPLITS:
            named = _naming(files, split)
            if len(named) > 1:
                raise DataFormatError(p, None, f"{len(named)} CSVs could be the {split} split: "
                                      f"{', '.join(f.name for f in named)}; keep one of them here (move or rename "
                                      f"the others: the split as a dot-separated part of the name, as in "
                                      f"{split}.csv, beats phoenix_{split}.csv, which beats {split}set.csv), since "
                                      "one CSV passed itself is read as one split alone")  # fmt: skip
            found |= {split: named[0]} if named else {}
        for file in sorted(set(found.values())):
            _split_of(file)  # (refuses a name that names two splits)
        if not found:
            within = sorted({f.parent.name + "/" for f in p.glob("*/*.csv") if not f.name.startswith(".")})
            hint = f"; its subfolder(s) {', '.join(within)} hold CSVs" if within else ""
            packed = sorted(f.name for f in p.glob("*.csv.gz") if not f.name.startswith("."))
            have = f" (it has {', '.join(f.name for f in files[:5])})" if files else ""
            have += f"; {', '.join(packed)}: gzip-compressed, decompress ({decompress(packed[0])})" if packed else ""
            raise DataFormatError(p, None, f"no CSV here names a split train, dev or test, as in "
                                  f"PHOENIX-2014-T.train.corpus.csv{have}{hint}")  # fmt: skip
        return found
    if not p.is_file():
        raise DataFormatError(p, None, "gloss CSV not found")
    return {_split_of(p) or "train": p}


def _split_of(file: Path) -> str | None:
    """The split ``file``'s name names (as :func:`_naming` reads names, the closest reading first), None if none;
    refuses two read alike (``train_test.csv``)."""
    tiers = {s: t for s in SPLITS if (t := _tier(file.name, s)) is not None}
    named = [s for s, t in tiers.items() if t == min(tiers.values())]
    if len(named) > 1:
        raise DataFormatError(file, None, f"the file name names the splits {' and '.join(named)}: rename it "
                              "to name one (e.g. phoenix.dev.csv)")  # fmt: skip
    return named[0] if named else None


def _naming(files: list[Path], split: str) -> list[Path]:
    """The files whose name has ``split`` as a dot-separated component; if none, as one otherwise delimited
    (``phoenix_dev.csv``); if none, anywhere in it (``devset.csv``, ``trainval.csv``)."""
    tiers = {f: t for f in files if (t := _tier(f.name, split)) is not None}
    return [f for f, t in tiers.items() if t == min(tiers.values())]


def _tier(name: str, split: str) -> int | None:
    """How closely a file name names a split: 0 as a dot-separated component, 1 otherwise delimited, 2 inside a
    word, None not at all."""
    name = name.lower()
    if split in name.split("."):
        return 0
    if re.search(rf"(?<![a-z0-9]){split}(?![a-z0-9])", name):
        return 1
    return 2 if split in name else None
