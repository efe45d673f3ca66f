"""Reader and writer for the Progressive-Transformers (PT) data format (docs/model.md §2.1).

A PT data directory holds ``{split}.skels``, ``{split}.gloss``, ``{split}.text`` and ``{split}.files``;
line i of each describes sequence i. A ``.skels`` line holds T frames of 151 space-separated floats:
J = 50 joints × (x, y, z), joint after joint, then a frame counter i/T.

The reader validates everything and raises :class:`DataFormatError` naming the file, the 1-based
line and the problem. It never drops, pads or repairs data.
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fgdm.data.vocab import odd_character, odd_character_problem, token_problem
from fgdm.encoding import decompress, not_utf8, whole_file_problem
from fgdm.runtime import signals_held
from fgdm.skeleton import CONVENTION, PT50

SUFFIXES: tuple[str, ...] = ("skels", "gloss", "text", "files")
SPLITS = ("train", "dev", "test")  # the usual splits, in their order (a data set may have others)
DECIMALS = 5
# Coordinates beyond this are corrupt data, not poses (PT poses span about ±1; a body is 0.334 shoulders wide):
# such values would turn training into NaN silently.
MAX_ABS = 1e3


class DataFormatError(ValueError):
    """Invalid input data; the message names the file, the 1-based line and the problem."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = Path(path), line, problem
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")


@dataclass
class PTSplit:
    """One split of a PT directory, held in memory.

    Attributes:
        poses: one (S, J, 3) float32 array per sequence.
        glosses: gloss tokens per sequence.
        texts: spoken-language sentence per sequence.
        names: sequence names (the ``.files`` lines).
    """

    poses: list[np.ndarray]
    glosses: list[list[str]]
    texts: list[str]
    names: list[str]

    def __len__(self) -> int:
        return len(self.poses)

    def __post_init__(self) -> None:
        """Refuses a field of the wrong type (fields given out of order, say), naming it: numpy would fail later,
        far from the cause, or write nonsense."""
        for field, kind, ok in (
            ("poses", "(S, J, 3) arrays", lambda v: isinstance(v, np.ndarray) and v.ndim == 3 and v.shape[2] == 3),
            ("glosses", "lists of glosses (str)", lambda v: isinstance(v, list | tuple) and _all_str(v)),
            ("texts", "str", lambda v: isinstance(v, str)),
            ("names", "str", lambda v: isinstance(v, str)),
        ):
            values = getattr(self, field)
            if not isinstance(values, list | tuple):
                problem = f"it is {_describe(values)}"
            elif (bad := next((i for i, v in enumerate(values) if not ok(v)), None)) is not None:
                problem = f"entry {bad} is {_describe(values[bad])}"
            else:
                continue
            raise ValueError(f"PTSplit.{field} is a list of {kind}, but {problem} (the fields, in order: poses, "
                             "glosses, texts, names)")  # fmt: skip
        n = len(self.poses)
        for field, values in (("glosses", self.glosses), ("texts", self.texts), ("names", self.names)):
            if len(values) != n:
                raise ValueError(f"{field} has {len(values)} entries but there are {n} poses")


def _all_str(values: Sequence[object]) -> bool:
    return all(isinstance(v, str) for v in values)


def _describe(value: object) -> str:
    """What a :class:`PTSplit` field or entry holds: 'an array of shape (4, 150)', 'a list holding an int'."""
    if value is None or isinstance(value, np.ndarray):
        return "None" if value is None else f"an array of shape {value.shape}"
    kind = type(value).__name__
    held = next((v for v in value if not isinstance(v, str)), None) if isinstance(value, list | tuple) else None
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}" + (f" holding {_describe(held)}" if held is not None else "")


def refuse_repeats(path: Path | str, numbered: Sequence[tuple[int, str]], what: str) -> None:
    """Refuses a value of ``numbered`` ((line, value) pairs) seen on an earlier line, naming both lines."""
    first: dict[str, int] = {}
    for line, value in numbered:
        if first.setdefault(value, line) != line:
            raise DataFormatError(path, line, f"the {what} {value!r} again (first on line {first[value]})")


def not_a_folder(path: Path, expected: str) -> str | None:
    """What ``path`` is where a folder was expected (``expected``: what it should hold), or None."""
    if path.is_dir():
        return None
    return f"a file: give the folder of {expected}" if path.exists() else "not found"


def not_a_file(path: Path) -> str | None:
    """What ``path`` is where a file was expected (a folder, a broken symbolic link), or None."""
    if path.is_dir():
        return "a folder, not a file"
    if path.is_symlink() and not path.exists():
        return f"a broken symbolic link (to {os.readlink(path)}, which does not exist)"
    return None


def text_lines(
    path: Path | str,
    missing: str = "file not found (a PT split needs .skels, .gloss, .text, .files)",
    tokens: bool = True,
) -> list[str]:
    """The lines of a UTF-8 text file without their terminators, in Unicode's composed form (NFC, so a gloss saved
    decomposed, as some editors do, is the same gloss). A final newline adds no line; a leading byte-order mark
    and CR before LF are dropped. Errors name the file and the line: bytes that are not UTF-8, a byte-order mark
    inside the file (files joined by ``cat``), a CR inside a line (CR-only line ends), a control character but tab
    and, where the lines are ``tokens`` (glosses, names, a vocabulary: not free text, whose words are tokenised
    apart anyway), an invisible or unusual space character (:func:`fgdm.data.vocab.odd_character`). A file in
    another encoding (gzip, UTF-16, Windows-1252) is named as such, with the conversion (:mod:`fgdm.encoding`)."""
    path = Path(path)
    if not path.is_file():
        packed = path.with_name(path.name + ".gz")
        beside = f"; {packed.name} is beside it: gzip-compressed, decompress it ({decompress(packed.name)})"
        raise DataFormatError(path, None, not_a_file(path) or missing + (beside if packed.is_file() else ""))
    data = path.read_bytes()
    # gzip, UTF-16 (which UTF-8's decoder may read as text full of NULs)
    if problem := whole_file_problem(data, path.name):
        raise DataFormatError(path, None, problem)
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first token
    except UnicodeDecodeError as err:
        at = err.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)  # err.start counts after the mark
        raise DataFormatError(path, data[:at].count(b"\n") + 1, not_utf8(data, at, err.reason, path.name)) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    for i, line in enumerate(lines, start=1):
        if "\ufeff" in line:
            raise DataFormatError(path, i, "a byte-order mark (U+FEFF, invisible) inside the file: files joined "
                                  "with cat keep each one's mark; remove it")  # fmt: skip
        if "\r" in line:
            raise DataFormatError(path, i, "a carriage return (CR) inside the line: CR-only line ends (old Mac "
                                  "files)? convert them to LF")  # fmt: skip
    # Control, invisible and unusual space characters (vocab.odd_character) are refused: the plain-ASCII check is
    # one pass over the bytes (a 250 MB .skels: 0.1-0.2 s); text with other bytes is looked at character by character.
    controls = data.translate(None, _PLAIN_BYTES)  # ASCII's control characters (but tab and the line ends), if any
    if tokens and (controls or not text.isascii()):
        at = odd_character(text, allow="\n\r")
    elif controls:  # free text is tokenised apart anyway, but a control character (a NUL, an escape) is no writing
        at = _CONTROL.search(text).start()  # type: ignore[union-attr]
    else:
        at = None
    if at is not None:
        start = text.rfind("\n", 0, at) + 1
        soft = " (a word processor's soft line break or page break? replace it with a space)" * (text[at] in "\v\f")
        problem = (odd_character_problem(text[start : at + 1], at - start) if tokens else
                   f"a control character, U+{ord(text[at]):04X}, at character {at - start + 1}: no text holds one; "
                   f"remove it{soft}")  # fmt: skip
        raise DataFormatError(path, text.count("\n", 0, at) + 1, problem)
    return [unicodedata.normalize("NFC", line) for line in lines]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # what _PLAIN_BYTES leaves out, as characters
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r" + bytes(range(0x80, 0x100))  # all but ASCII's controls


def parse_skels_line(line: str, path: Path, lineno: int, num_joints: int = PT50.num_joints) -> np.ndarray:
    """Parses one ``.skels`` line into a (T, J, 3) float32 array, validating it fully."""
    width = num_joints * 3 + 1
    tokens = line.split()
    if not tokens:
        raise DataFormatError(path, lineno, "empty line: a sequence needs at least one frame")
    if len(tokens) % width:
        hint = ""
        if len(tokens) % (width - 1) == 0:  # whole frames of joints alone
            hint = (f"; {len(tokens) // (width - 1)} frames of {width - 1} values would fit: written without the "
                    "counter column (PT's last value of each frame, its progress 0…1)?")  # fmt: skip
        elif separator := next((s for s in ";," if s in line and _split_count(line, s) % width == 0), None):
            comma = separator == ";" and "," in line  # a spreadsheet's export, perhaps with decimal commas
            hint = (f"; the values are separated by {separator!r}{' with decimal commas' * comma}: a .skels separates "
                    f"them by spaces{' and writes decimal points' * comma}")  # fmt: skip
        n, left = len(tokens), len(tokens) % width
        raise DataFormatError(
            path,
            lineno,
            f"{n} value{'s are' if n != 1 else ' is'} not a multiple of {width} ({num_joints} joints × 3 + counter); "
            f"{n // width} whole frame{'s' * (n // width != 1)} and {left} value{'s' * (left != 1)} left over{hint}",
        )
    try:  # Python's float() reads 1_0 as 10 and other scripts' digits (١٠, １０) too: not numbers in a .skels
        if "_" in line or not line.isascii():
            raise ValueError
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(i for i, tok in enumerate(tokens) if not _is_number(tok))
        token = tokens[bad]
        hint = (": a decimal comma? write a point (0.5)" if _is_number(token.replace(",", ".", 1)) else
                f": values separated by {token[-1]!r}? a .skels separates them by spaces" if _is_number(token[:-1])
                and token[-1] in ",;" else "")  # fmt: skip
        raise DataFormatError(
            path, lineno, f"value {bad + 1} ({token!r}, frame {bad // width + 1}) is not a number{hint}"
        ) from None
    frames = values.reshape(-1, width)
    finite = np.isfinite(frames)
    if not finite.all():
        f, c = np.argwhere(~finite)[0]
        what = "counter" if c == width - 1 else coordinate_name(c, num_joints)
        raise DataFormatError(path, lineno, f"frame {f + 1}, {what} is {tokens[f * width + c]} (not finite)")
    big = np.abs(frames[:, :-1]) > MAX_ABS
    if big.any():
        f, c = np.argwhere(big)[0]
        what = coordinate_name(c, num_joints)
        raise DataFormatError(path, lineno, f"frame {f + 1}, {what} is {frames[f, c]:g}: beyond ±{MAX_ABS:g}, not in "
                              f"the PT convention ({CONVENTION}; pixel coordinates?)")  # fmt: skip
    counter = frames[:, -1]
    steps = np.diff(counter)
    if (steps <= 0).any():
        f = int(np.argmax(steps <= 0)) + 1
        raise DataFormatError(
            path,
            lineno,
            f"frame {f + 1}: counter {counter[f]:g} does not increase (previous {counter[f - 1]:g})",
        )
    return frames[:, :-1].reshape(-1, num_joints, 3).astype(np.float32)


def _split_count(line: str, separator: str) -> int:
    """How many values ``line`` holds when ``separator`` (and spaces) separate them."""
    return len([v for v in re.split(rf"[{separator}\s]+", line.strip()) if v])


def coordinate_name(value: int, num_joints: int) -> str:
    """'joint 15 (left_index_3, 0-based) coordinate z' for value 47 of a frame: frames count from 1 in messages,
    joints from 0 as in the skeleton, which the joint's name makes plain."""
    joint = value // 3
    name = f"{PT50.names[joint]}, " if num_joints == PT50.num_joints else ""
    return f"joint {joint} ({name}0-based) coordinate {'xyz'[value % 3]}"


def _is_number(token: str) -> bool:
    """Whether ``token`` is a decimal number as a .skels holds them (ASCII digits, no ``_`` separators)."""
    if "_" in token or not token.isascii():
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def format_skels_line(pose: np.ndarray) -> str:
    """Formats a (T, J, 3) array as one ``.skels`` line (5 decimals, counter i/T)."""
    T = pose.shape[0]
    frames = np.concatenate(
        [pose.reshape(T, -1).astype(np.float64), (np.arange(T, dtype=np.float64) / T)[:, None]], axis=1
    )
    values = frames.ravel().tolist()
    return " ".join([f"%.{DECIMALS}f"] * len(values)) % tuple(values)


def read_split(directory: Path | str, split: str, skip_frames: int = 1, num_joints: int = PT50.num_joints) -> PTSplit:
    """Reads ``directory/{split}.{skels,gloss,text,files}``.

    Args:
        skip_frames: keep every k-th frame (k = 1 keeps all), as the anchors' ``skip_frames``.

    Raises:
        DataFormatError: on any missing file or malformed line, naming the file and line.
    """
    if skip_frames < 1:
        raise ValueError(f"skip_frames must be ≥ 1, got {skip_frames}")
    directory = Path(directory)
    if skip_frames > 1 and (directory / f"{split}.fps").is_file():  # fgdm generate's: poses at the model's rate
        from fgdm.data.io import FPS, read_frame_rate

        if (rate := read_frame_rate(directory, split)) != FPS:
            raise DataFormatError(directory / f"{split}.fps", None, f"the {split} split was sampled at {rate:g} fps "
                                  f"(fgdm generate's poses), not recorded at PT's 25: skip_frames {skip_frames} would "
                                  "thin it again; evaluate --hyp scores such poses, render plays them")  # fmt: skip
    paths = {s: directory / f"{split}.{s}" for s in SUFFIXES}
    lines = {s: text_lines(p, tokens=s != "text") for s, p in paths.items()}
    counts = {s: len(v) for s, v in lines.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{paths[s].name} {n}" for s, n in counts.items())
        most = max(counts.values())
        blank = [s for s, n in counts.items() if n == most and not lines[s][-1].strip()]
        if most - min(counts.values()) == 1 and len(blank) == list(counts.values()).count(most):
            detail += f"; the last line of {' and '.join(paths[s].name for s in blank)} is blank: remove it"
        raise DataFormatError(directory, None, f"files of split {split!r} differ in line count: {detail}")
    if counts["skels"] and all(not lines[s][-1].strip() for s in SUFFIXES):  # else: the empty line's own error
        raise DataFormatError(directory, None, f"the last line of each file of split {split!r} is blank (an extra "
                              "newline at their ends?): remove it")  # fmt: skip
    glosses = []
    for i, line in enumerate(lines["gloss"], start=1):
        tokens = line.split()
        if not tokens:
            raise DataFormatError(paths["gloss"], i, "empty gloss line")
        problem = next(filter(None, map(token_problem, tokens)), None)  # a vocabulary's own token (<pad>, ...)
        if problem:
            raise DataFormatError(paths["gloss"], i, problem)
        glosses.append(tokens)
    for i, text in enumerate(lines["text"], start=1):
        if not text.strip():  # the back-translator would learn, and BLEU score against, an empty sentence
            raise DataFormatError(paths["text"], i, "empty translation line")
    names = sequence_names(paths["files"], lines["files"])
    poses = [
        parse_skels_line(line, paths["skels"], i, num_joints)[::skip_frames]
        for i, line in enumerate(lines["skels"], start=1)
    ]
    return PTSplit(poses=poses, glosses=glosses, texts=lines["text"], names=names)


def sequence_names(path: Path, lines: list[str]) -> list[str]:
    """The sequence names of a ``.files`` file's lines, stripped as the CSV reader takes ids ('a ' names a.npy);
    an empty or repeated name is refused, naming the line."""
    names = [name.strip() for name in lines]
    for i, name in enumerate(names, start=1):
        if not name:
            raise DataFormatError(path, i, "empty sequence name")
    refuse_repeats(path, list(enumerate(names, start=1)), "name")
    return names


def write_split(directory: Path | str, split: str, data: PTSplit) -> None:
    """Writes a split in the PT format (creating the directory). The four files are written beside their targets
    first and then renamed into place together, with SIGINT and SIGTERM held off for the renames: an interrupted
    write leaves the old split whole (or none), never glosses of one run beside poses of another."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contents = (
        ("gloss", (" ".join(g) for g in data.glosses)),
        ("text", data.texts),
        ("files", data.names),
        ("skels", (format_skels_line(p) for p in data.poses)),
    )
    written: list[tuple[Path, Path]] = []
    try:
        for name, values in contents:
            path = directory / f"{split}.{name}"
            written.append((path.with_suffix(path.suffix + ".tmp"), path))
            _write_lines(written[-1][0], values, path)
        with signals_held():
            for tmp, path in written:
                tmp.replace(path)
    finally:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)


def _write_lines(tmp: Path, lines: Sequence[str] | object, path: Path) -> None:
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:  # type: ignore[attr-defined]
            if "\n" in line:
                raise ValueError(f"{path}: a value contains a newline: {line[:40]!r}")
            f.write(line + "\n")


def hidden(path: Path, root: Path) -> bool:
    """Whether ``path`` is hidden below ``root``: its name or a folder's between them starts with a dot (a Mac's
    ``._clip.pose``, ``.Trashes/``); ``root``'s own place (``~/.cache/…``) does not count."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def available_splits(directory: Path | str) -> list[str]:
    """Splits present in a PT directory (those with a ``.skels`` file), train/dev/test first; hidden files (a Mac's
    ``._train.skels`` beside ``train.skels``) are none, and a ``.skels`` that is no file (a folder, a broken link)
    is refused, named."""
    found = sorted(p.stem for p in Path(directory).glob("*.skels") if not p.name.startswith("."))
    for split in found:
        if problem := not_a_file(Path(directory) / f"{split}.skels"):
            raise DataFormatError(Path(directory) / f"{split}.skels", None, problem)
    lone = sorted(p.name for p in Path(directory).glob("*") if p.suffix[1:] in SUFFIXES and p.stem not in found
                  and p.stem in SPLITS)  # fmt: skip
    if lone:  # a split's files but its poses: said, not taken for no split
        warnings.warn(f"{directory}: {', '.join(lone)} without a .skels beside them: no such split read", stacklevel=2)
    for packed in sorted(Path(directory).glob("*.skels.gz")):  # not read: said, so that no split goes missing unseen
        if not packed.name.startswith(".") and packed.name.removesuffix(".skels.gz") not in found:
            warnings.warn(f"{packed}: gzip-compressed, so not read as a split: decompress it "
                          f"({decompress(packed.name)})", stacklevel=2)  # fmt: skip
    return sorted(found, key=lambda s: (SPLITS.index(s) if s in SPLITS else 3, s))
