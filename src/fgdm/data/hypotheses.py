"""Another system's poses, for ``fgdm evaluate --hyp``: matched to a split's references by name, brought to their
frame rate, with what reading them changed (points filled in, files normalised) counted for the report.

A hypothesis directory is either PT files (``{split}.skels`` and ``{split}.files``; ``.gloss`` and ``.text`` are
not scored and may be left out) or ``.npy``/``.pose`` files, one per reference. Hidden files and folders
(``.ipynb_checkpoints/`` …) are no part of it.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fgdm.data.holistic import resample
from fgdm.data.io import FPS, load_npy, read_frame_rate, read_pose_details
from fgdm.data.pt import (
    DataFormatError,
    hidden,
    not_a_folder,
    parse_skels_line,
    read_split,
    sequence_names,
    text_lines,
)
from fgdm.skeleton import CONVENTION, PT50, Skeleton, convention_problem


@dataclass
class Hypotheses:
    """One system's sequences in the references' order, and how many of its ``.pose`` files reading changed."""

    poses: list[np.ndarray]
    pose_files: int = 0  # .pose files among those scored
    filled_files: int = 0  # … with points missing in some frames,
    interpolated: int = 0  # the joint values interpolated there
    absent_files: int = 0  # … with points missing in every frame,
    absent: int = 0  # the joint values put at their anchors
    normalised: int = 0  # … not on fgdm's canvas: normalised as PT data, not read back as written
    resampled: dict[float, int] = field(default_factory=dict)  # sequences brought to the references' rate, by rate
    unconventional: list[tuple[str, str]] = field(default_factory=list)  # (name, problem): not in the PT convention
    short: list[tuple[str, int, int]] = field(default_factory=list)  # (name, frames, the reference's): < 10 % of it
    other_glosses: list[tuple[str, Sequence[str], Sequence[str]]] = field(default_factory=list)  # (name, its, ours)

    def notes(self, fps: float) -> list[str]:
        """What reading the files changed (:meth:`changes`), what was resampled, and which sequences are out of the
        PT convention: sentences for the report's notes (none where all was read as written)."""
        said = [changed] if (changed := self.changes()) else []
        if self.resampled:
            rates = ", ".join(f"{n} at {rate:g} fps" for rate, n in sorted(self.resampled.items()))
            n = sum(self.resampled.values())
            said.append(f"{_sequences(n, 'was', 'were')} brought to the references' {fps:g} fps by linear "
                        f"interpolation over time ({rates}: no whole multiple of it)")  # fmt: skip
        if self.short:
            name, n, n_ref = self.short[0]
            said.append(f"{_sequences(len(self.short))} under a tenth of their reference's length (or 1 frame), "
                        f"e.g. {name}: {n} frame{'s' if n != 1 else ''} against {n_ref}")  # fmt: skip
        if self.other_glosses:
            name, theirs, ours = self.other_glosses[0]
            said.append(f"{_sequences(len(self.other_glosses), 'has', 'have')} other glosses in its .gloss than the "
                        f"reference of its name, e.g. {name}: {' '.join(theirs)!r} against {' '.join(ours)!r} (outputs "
                        "of other sentences? each is scored against its name's reference)")  # fmt: skip
        if self.unconventional:
            name, problem = self.unconventional[0]
            said.append(f"{_sequences(len(self.unconventional))} not in the PT convention ({CONVENTION}), e.g. "
                        f"{name}: {problem}; their scores say little")  # fmt: skip
        return said

    def changes(self) -> str:
        """A sentence on what reading the files changed, or "" where nothing."""

        def had(n: int, what: str) -> str:
            return f"{n} {'has' if n == 1 else 'have'} {what}"

        said = []
        if self.filled_files:
            said.append(had(self.filled_files, f"points missing in some frames ({self.interpolated} joint values "
                            "interpolated between the frames that show them)"))  # fmt: skip
        if self.absent_files:
            said.append(had(self.absent_files, f"points missing in every frame ({self.absent} joint values put at "
                            "their anchors: a hand at its body wrist, the head above the neck)"))  # fmt: skip
        if self.normalised:
            said.append(f"{self.normalised} {'is' if self.normalised == 1 else 'are'} not on fgdm's canvas and "
                        "normalised as PT data (the neck at the origin, the median shoulder width scaled to 0.334) "
                        "rather than read back as written")  # fmt: skip
        if not said:
            return ""
        return f"of its {self.pose_files} .pose files scored, {'; '.join(said)}: they are scored with those changes"


def _sequences(n: int, one: str = "is", more: str = "are") -> str:
    """'1 sequence is', '3 sequences are' (or the verbs given)."""
    return f"{n} sequence {one}" if n == 1 else f"{n} sequences {more}"


def load_hypotheses(*args: Any, **kwargs: Any) -> list[np.ndarray]:
    """The poses of :func:`read_hypotheses` (same arguments)."""
    return read_hypotheses(*args, **kwargs).poses


def read_hypotheses(
    path: Path | str,
    split: str,
    names: Sequence[str],
    fps: float,
    source_fps: float = FPS,
    allow_extra: bool = False,
    skeleton: Skeleton = PT50,
    lengths: Sequence[int] | None = None,
    elsewhere: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    glosses: Sequence[Sequence[str]] | None = None,
) -> Hypotheses:
    """Another system's poses for the references ``names``, in their order, at the references' ``fps``.

    ``path`` is a PT directory holding ``{split}.skels`` (matched by ``{split}.files``) or a directory of
    ``.npy``/``.pose`` files, in folders or not (matched by path: ``test/seq-7.npy`` is ``test/seq-7``; where
    every reference lies in one folder, as PT's ``test/…``, files directly in ``path`` match too). Frame rates:
    a ``.pose`` file's own; else ``{split}.fps`` beside the files (``fgdm generate`` writes it), in their folder
    or in ``path``; else
    ``source_fps``, the rate of the data's own files (25 for PT). A sequence at k times ``fps`` keeps every k-th
    frame, as the references did. Missing names are an error, and extra ones unless ``allow_extra`` (a
    ``--limit``-ed evaluation). ``lengths``, the references' frame counts, catch files whose rate was taken as
    ``source_fps`` but which are as long as the references: at their rate already (``save_sequence``'s ``.npy``
    of a model's output), which keeping every k-th frame would cut to 1/k. That is refused, asking for
    ``{split}.fps``. ``elsewhere``: the names of the data's other splits, each with its split
    (:func:`names_elsewhere`), or a function giving them (called only where they are needed); files directly in
    ``path`` whose names another split has too (the synthetic data's ``synth-00000`` …) could be that split's
    outputs, and are refused unless ``path`` is named ``split``. ``glosses``, the references', are compared with a PT
    split's ``.gloss`` where it has one: the sequences that differ are in the notes (:meth:`Hypotheses.notes`).
    """
    path = Path(path)
    if problem := not_a_folder(path, "the system's poses"):
        raise DataFormatError(path, None, f"hypothesis directory {problem}")
    recorded = functools.cache(lambda folder: (folder / f"{split}.fps").is_file())  # {split}.fps in this folder
    given = read_frame_rate(path, split, source_fps)
    found: dict[str, tuple[np.ndarray, float]] = {}
    read = {}  # the .pose files' details
    flat, said = False, {}  # said: the glosses a PT split of hypotheses gives for each name
    if (path / f"{split}.skels").is_file():
        keys, poses, their_glosses = _read_pt(path, split, skeleton.num_joints)
        keys = _in_reference_folder(keys, names)  # test.files may name them without PT's test/ as files may
        found = {name: (pose, given) for name, pose in zip(keys, poses, strict=True)}  # names: unique
        said = dict(zip(keys, their_glosses or (), strict=False))
        unrated = set() if recorded(path) else set(found)
    else:
        unrated = set()  # files that carry no rate (.npy) and have no {split}.fps beside them or in path
        pairs, flat = _hypothesis_files(path, split, names)
        for key, f in pairs:
            if key in found:  # (two files whose names differ in Unicode's form only, a Mac's and another's, too)
                first = next(g for k, g in pairs if k == key)
                raise DataFormatError(f, None, f"a second file for the name {key!r} (also {first})")
            if f.suffix.lower() == ".pose":
                read[key] = read_pose_details(f, skeleton)
                found[key] = read[key].pose, read[key].fps
            else:  # the rate beside the file (in its folder, test/ say), else the one in path, else the data's
                found[key] = load_npy(f, skeleton), read_frame_rate(f.parent, split, given)
                if not (recorded(f.parent) or recorded(path)):
                    unrated.add(key)
    ours = dict(zip(names, glosses or (), strict=False))  # the references' glosses, where given
    other = [(n, said[n], ours[n]) for n in names if n in said and n in ours and list(said[n]) != list(ours[n])]
    missing = [n for n in names if n not in found]
    extra = [] if allow_extra else sorted(set(found) - set(names), key=str)
    if missing or extra:
        folders = sorted({str(e).rpartition("/")[0] for e in extra} - {n.rpartition("/")[0] for n in names} - {""})
        hint = ""
        if folders and len(extra) == len(found):  # every file elsewhere: another split's folder, say
            hint = f"; its files lie in {', '.join(folders[:3])}/, the {split} split's names in other folders"
        raise DataFormatError(path, None, f"its names do not match the {split} split's: missing {missing[:5]} "
                              f"({len(missing)} in all), extra {extra[:5]} ({len(extra)} in all){hint}")  # fmt: skip
    if flat and path.resolve().name != split:
        _refuse_shared(path, split, names, (elsewhere() if callable(elsewhere) else elsewhere) or {})
    step = round(source_fps / fps) if source_fps >= fps else 1
    kept = [(len(found[n][0]), n_ref) for n, n_ref in zip(names, lengths or (), strict=False) if n in unrated]
    if step > 1 and kept:
        ratio = float(np.median([n / max(n_ref, 1) for n, n_ref in kept]))
        if 0.8 <= ratio <= 1.25:  # as long as the references before every k-th frame is kept: at their rate
            raise DataFormatError(path, None, f"its {split} files carry no frame rate, so they count as the data's "
                                  f"{source_fps:g} fps and would keep one frame in {step}; but they are as long as "
                                  f"the references at {fps:g} fps (median length ratio {ratio:.2f}): write their rate "
                                  f"into {path / f'{split}.fps'} ({fps:g} if they are at the references' rate, "
                                  f"{source_fps:g} if at the data's)")  # fmt: skip
    out = Hypotheses([], other_glosses=other)
    reference_length = dict(zip(names, lengths or (), strict=False))
    for name in names:
        pose, rate = found[name]
        step = rate / fps
        if round(step) < 1 or abs(step - round(step)) > 1e-3:  # no every k-th frame: interpolated, and noted
            out.resampled[rate] = out.resampled.get(rate, 0) + 1
            out.poses.append(resample(pose, rate, fps))
        else:
            out.poses.append(pose[:: round(step)])
        if name not in read and (problem := convention_problem(out.poses[-1], skeleton)):  # .pose files are normalised
            out.unconventional.append((name, problem))
        n_ref = reference_length.get(name)
        if n_ref is not None and (len(out.poses[-1]) < 2 <= n_ref or len(out.poses[-1]) < 0.1 * n_ref):
            out.short.append((name, len(out.poses[-1]), n_ref))
        if name in read:
            got = read[name]
            out.pose_files += 1
            out.filled_files += got.interpolated > 0
            out.interpolated += got.interpolated
            out.absent_files += got.absent > 0
            out.absent += got.absent
            out.normalised += got.normalised
    return out


def _read_pt(path: Path, split: str, num_joints: int) -> tuple[list[str], list[np.ndarray], list[list[str]] | None]:
    """The names, poses and glosses (None where there is no ``.gloss``) of a PT split of hypotheses: the four files
    checked together where ``.gloss`` and ``.text`` are there, else ``.skels`` and ``.files`` alone (scoring uses
    the references' glosses and texts; a ``.gloss`` that differs from them is noted)."""
    if all((path / f"{split}.{suffix}").is_file() for suffix in ("gloss", "text")):
        data = read_split(path, split, num_joints=num_joints)
        return data.names, data.poses, data.glosses
    files, skels = path / f"{split}.files", path / f"{split}.skels"
    names = sequence_names(files, text_lines(files, "file not found (hypotheses as PT files need .skels and .files; "
                                             ".gloss and .text may be left out)"))  # fmt: skip
    lines = text_lines(skels)
    if len(lines) != len(names):
        raise DataFormatError(path, None, f"{skels.name} has {len(lines)} line{'s' * (len(lines) != 1)} but "
                                          f"{files.name} has {len(names)}")  # fmt: skip
    return names, [parse_skels_line(line, skels, i, num_joints) for i, line in enumerate(lines, start=1)], None


def _hypothesis_files(path: Path, split: str, names: Sequence[str]) -> tuple[list[tuple[str, Path]], bool]:
    """The .npy/.pose files below a hypothesis directory, each with the name it stands for: its path below
    ``path`` without the suffix (``test/seq-7.npy`` is ``test/seq-7``). Where every reference name lies in one
    folder (PT's ``test/…``) and every file directly in ``path``, a file stands for the name in that folder.
    Hidden files and folders are left out. Also whether every file lies directly in ``path``."""
    files = sorted(
        f for f in path.rglob("*")
        if f.suffix.lower() in (".npy", ".pose") and f.is_file()
        and not hidden(f, path)
    )  # fmt: skip
    if not files:
        raise DataFormatError(path, None, f"no {split}.skels and no .npy/.pose files to score")
    # in Unicode's composed form, as the references' names are read (a Mac's file names are decomposed)
    keys = [unicodedata.normalize("NFC", f.relative_to(path).with_suffix("").as_posix()) for f in files]
    return list(zip(_in_reference_folder(keys, names), files, strict=True)), all("/" not in k for k in keys)


def _in_reference_folder(keys: list[str], names: Sequence[str]) -> list[str]:
    """Hypothesis names without a folder (``seq-7``), each put in the references' one folder (``test/seq-7``)
    where every reference lies in the same folder, as PT's names do; else the names as they are."""
    folders = {n.rpartition("/")[0] for n in names}
    if len(folders) != 1 or "" in folders or any("/" in k for k in keys):
        return keys
    (folder,) = folders
    return [f"{folder}/{k}" for k in keys]


def _refuse_shared(path: Path, split: str, names: Sequence[str], elsewhere: Mapping[str, str]) -> None:
    """Refuses files directly in ``path`` named as ``split``'s references where another split has those names."""
    others: dict[str, tuple[str, str]] = {}
    for name, s in elsewhere.items():
        others.setdefault(name.rpartition("/")[2], (name, s))
    shared = next((n for n in names if n.rpartition("/")[2] in others), None)
    if shared is not None:
        other, where = others[shared.rpartition("/")[2]]
        raise DataFormatError(path, None, f"its files lie directly in it and the data's {where} split has their names "
                              f"too ({shared!r} and {other!r}): they could be that split's outputs; put the {split} "
                              f"split's files in a folder named {split} and give that folder")  # fmt: skip


def names_elsewhere(data, split: str) -> dict[str, str]:
    """Each sequence name of the data's splits other than ``split``, with its split. ``data``: a data directory
    (PT files, whose ``.files`` are read, or a synthetic manifest) or a :class:`fgdm.config.DataConfig` (its
    path, else the embedded synthetic language)."""
    from fgdm.config import DataConfig
    from fgdm.data.corpus import Subsampled
    from fgdm.data.sources import MANIFEST, SPLITS, SynthManifest, build_corpus, data_splits

    if isinstance(data, DataConfig):
        if data.path is not None:
            return names_elsewhere(data.path, split)
        corpora = {s: build_corpus(data, s) for s in SPLITS if s != split}
    else:
        directory = Path(data)
        if not (directory / MANIFEST).is_file():
            listed = {s: directory / f"{s}.files" for s in data_splits(directory) if s != split}
            return {name.strip(): s for s, f in listed.items() if f.is_file() for name in text_lines(f)}
        manifest = SynthManifest.load(directory)
        corpora = {s: manifest.corpus(s, directory) for s in manifest.splits() if s != split}
    out: dict[str, str] = {}
    for s, corpus in corpora.items():
        corpus = corpus.corpus if isinstance(corpus, Subsampled) else corpus
        for i in range(len(corpus)):
            out.setdefault(corpus.sentence(i)[2], s)
    return out
