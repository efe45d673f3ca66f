"""Where data comes from: a PT directory, a synthetic manifest rendered on the fly, or the embedded language.

:func:`build_corpus` and :func:`build_vocab` turn a config's ``data`` section into a corpus and its
gloss vocabulary; :func:`open_corpus` opens one split of a directory; :func:`make_synth` and
:func:`import_holistic` write one (``fgdm synth``, ``fgdm data import``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from fgdm.config import SYNTH_SPLIT_SIZES, DataConfig
from fgdm.data.corpus import Corpus, PTCorpus, Subsampled
from fgdm.data.csvs import csv_splits, read_phoenix_csv
from fgdm.data.pt import SPLITS, DataFormatError, available_splits, hidden, not_a_folder, text_lines
from fgdm.data.synth.corpus import SynthCorpus
from fgdm.data.vocab import Vocabulary

MANIFEST = "synth.json"
VOCAB = "src_vocab.txt"  # a data set's gloss vocabulary, beside its splits
INCOMPLETE = ".fgdm-incomplete"  # in a data directory while fgdm synth or data import writes it
_DATA_FILES = (".skels", ".gloss", ".text", ".files", ".fps")


@contextlib.contextmanager
def _writing_data(out: Path) -> Iterator[Path]:
    """Writes a whole data set into ``out``, through the folder it yields: the new files are made there first,
    and replace the old data set's split files, vocabulary and manifest only once all are written (an
    --overwrite replaces the data set: no split of the old one stays). Bad input or an interruption before that
    leaves the old data set as it was; while the files move in, a marker says the directory is incomplete, so
    an interruption there is never read as data."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".fgdm-new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        marker = out / INCOMPLETE
        marker.write_text("fgdm synth or fgdm data import was writing here and was interrupted: run it again\n")
        for path in _data_set_files(out, staging):
            path.unlink()
        for path in staging.iterdir():
            path.replace(out / path.name)
        marker.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _data_set_files(out: Path, staging: Path) -> list[Path]:
    """The files of ``out``'s data set that a new one (in ``staging``) replaces: vocabulary, manifest and splits' files
    (of a name with a ``.skels`` there or in the new set; ``train.skels.tmp`` too), not the user's ``notes.text``."""

    def split_file(name: str) -> tuple[str, str]:  # train.skels(.tmp) → (train, .skels)
        stem, dot, suffix = name.removesuffix(".tmp").rpartition(".")
        return (stem, dot + suffix) if dot + suffix in _DATA_FILES else ("", "")

    ours = {split_file(p.name)[0] for p in [*out.glob("*.skels"), *staging.iterdir()]} - {""}
    return [p for p in out.iterdir() if p.is_file() and (p.name in (VOCAB, MANIFEST) or split_file(p.name)[0] in ours)]


@dataclass
class SynthManifest:
    """A synthetic data set described, not stored: samples are rendered by index on demand.

    Attributes:
        seed: the sign-language and corpus seed.
        sizes: sentences per split (grammar sentences); for a CSV split, the number of its first rows
            to keep (absent: all rows).
        csv: per split, a PHOENIX-style CSV whose rows are rendered instead (paths relative to the
            manifest or absolute).
    """

    seed: int = 0
    sizes: dict[str, int] = field(default_factory=lambda: dict(SYNTH_SPLIT_SIZES))
    csv: dict[str, str] = field(default_factory=dict)

    def save(self, directory: Path | str) -> Path:
        path = Path(directory) / MANIFEST
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path | str) -> SynthManifest:
        """Reads ``synth.json`` strictly: a key it does not know (``sedd``) or a value that is not a whole number
        (``2.7``, ``"3"``, ``true``) is refused, naming the file, never read as a default or rounded."""
        path = Path(directory) / MANIFEST
        try:  # (read as every text file: a byte-order mark and CRLF taken, other encodings named, by line)
            raw = json.loads("\n".join(text_lines(path, "file not found", tokens=False)))
        except json.JSONDecodeError as err:
            raise DataFormatError(
                path, err.lineno, f"invalid synthetic manifest: {err.msg} (column {err.colno})"
            ) from None
        if not isinstance(raw, dict):
            raise DataFormatError(path, None, f"invalid synthetic manifest: a JSON object, not {raw!r:.40}")
        known = [f.name for f in fields(cls)]
        if unknown := sorted(set(raw) - set(known)):
            raise DataFormatError(path, None, f"invalid synthetic manifest: unknown key(s) {', '.join(unknown)} "
                                  f"(the keys are {', '.join(known)})")  # fmt: skip
        seed, sizes, csv = raw.get("seed", 0), raw.get("sizes", {}), raw.get("csv", {})
        problem = None
        if not _whole(seed) or not 0 <= seed < 2**63:
            problem = f"seed is {seed!r}, not a whole number from 0 to 2**63 - 1"
        elif not isinstance(sizes, dict) or not isinstance(csv, dict):
            problem = f"sizes and csv map splits to values, got {sizes!r:.40} and {csv!r:.40}"
        elif bad := next((k for k in [*sizes, *csv] if split_name_problem(k)), None):
            problem = f"split {bad!r}: {split_name_problem(bad)}"
        elif any(not _whole(n) for n in sizes.values()):
            problem = f"sizes are whole numbers, got {sizes}"
        elif any(n < 0 for n in sizes.values()):
            problem = f"sizes must be ≥ 0, got {dict((k, n) for k, n in sizes.items() if n < 0)}"
        elif any(not isinstance(v, str) or not v for v in csv.values()):
            problem = f"csv gives each split a file's path, got {csv}"
        if problem:
            raise DataFormatError(path, None, f"invalid synthetic manifest: {problem}")
        return cls(seed=seed, sizes=dict(sizes), csv=dict(csv))

    def splits(self) -> list[str]:
        return sorted(set(self.sizes) | set(self.csv), key=lambda s: ({"train": 0, "dev": 1, "test": 2}.get(s, 3), s))

    def corpus(self, split: str, base: Path) -> SynthCorpus:
        if split in self.csv:
            csv = Path(self.csv[split])
            csv = csv if csv.is_absolute() else base / csv
            if not csv.exists():
                raise DataFormatError(base / MANIFEST, None, f"its {split} split's CSV {csv} is not found: moved? "
                                      "(make the manifest again with fgdm synth --lazy --glosses ...)")  # fmt: skip
            rows = read_phoenix_csv(csv)[: self.sizes.get(split)]  # the first rows a size keeps, else all
            return SynthCorpus(0, split, seed=self.seed, rows=rows, frames_cache=base / f".frames-{split}.npz")
        if split not in self.sizes:
            raise ValueError(f"split {split!r} not in the manifest; splits are {self.splits()}")
        return SynthCorpus(self.sizes[split], split, seed=self.seed, frames_cache=base / f".frames-{split}.npz")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # (JSON true is a bool, not a count or seed)


def split_name_problem(split: str) -> str | None:
    """Why ``split`` cannot name a split (its files are ``{split}.skels`` and so on beside the others), or None."""
    if not split or split.strip() != split or split.startswith(".") or any(c in split for c in "/\\:"):
        return "a split's name is a plain word, as train, dev or test (its files are {split}.skels, ...)"
    return None


def is_manifest(directory: Path) -> bool:
    """Whether ``directory`` holds a synthetic manifest; refused beside PT split files, whose data it would hide."""
    if not (directory / MANIFEST).is_file():
        return False
    if skels := sorted(p.name for p in directory.glob("*.skels") if not p.name.startswith(".")):
        why = f"a synthetic manifest beside PT split files ({', '.join(skels)}): a data directory holds one data set"
        raise DataFormatError(directory / MANIFEST, None, f"{why}; move one of them out")
    return True


def data_splits(directory: Path | str) -> list[str]:
    directory = Path(directory)
    if is_manifest(directory):
        return SynthManifest.load(directory).splits()
    return available_splits(directory)


def require_data_directory(directory: Path | str) -> Path:
    """``directory`` as a Path, refused if it is a file (the directory holding it named) or missing."""
    directory = Path(directory)
    if directory.is_file():
        raise DataFormatError(directory, None, f"a file, not a data directory: give the directory that holds it "
                              f"({directory.parent})")  # fmt: skip
    if not directory.is_dir():
        raise DataFormatError(directory, None, "data directory not found")
    return directory


def open_corpus(directory: Path | str, split: str, skip_frames: int = 1, advice: str = "--split chooses one") -> Corpus:
    """The corpus of ``split`` in ``directory``: a synthetic manifest if present, else PT files. ``advice``: what
    the error of a PT directory without the split says to do."""
    directory = require_data_directory(directory)
    if problem := split_name_problem(split):
        raise ValueError(f"split {split!r}: {problem}")
    if (directory / INCOMPLETE).exists():
        raise DataFormatError(directory, None, "incomplete: an fgdm synth or data import writing it was interrupted "
                              "(or is still running); run it again with --overwrite")  # fmt: skip
    if is_manifest(directory):
        corpus: Corpus = SynthManifest.load(directory).corpus(split, directory)
        return Subsampled(corpus, skip_frames) if skip_frames > 1 else corpus
    # a PT directory without this split (dgs-pt has no test split): name the ones it has
    if not (directory / f"{split}.skels").is_file() and (present := available_splits(directory)):
        raise DataFormatError(directory, None, f"no {split} split here (it has {', '.join(present)}): {advice}")
    return PTCorpus.read(directory, split, skip_frames=skip_frames)


def build_corpus(data: DataConfig, split: str, advice: str = "--split chooses one") -> Corpus:
    """The corpus of one split: ``data.path`` (PT files or a synth manifest), else the embedded synthetic data.
    ``advice``: what the error of a PT directory without the split says to do."""
    if data.path is not None:
        return open_corpus(data.path, split, skip_frames=data.skip_frames, advice=advice)
    sizes = {"train": data.synth_train, "dev": data.synth_dev, "test": data.synth_test}
    if split not in sizes:
        raise ValueError(f"split {split!r}: the embedded synthetic data has {', '.join(SPLITS)}")
    corpus: Corpus = SynthCorpus(sizes[split], split, seed=data.synth_seed)
    return Subsampled(corpus, data.skip_frames) if data.skip_frames > 1 else corpus


def known_glosses(data: DataConfig) -> list[Sequence[str]]:
    """The gloss sequences, without poses, of the data's train split, else of all its splits: what its model knows."""
    splits = ["train"] if data.path is None else data_splits(data.path)
    if not splits:
        raise DataFormatError(data.path, None, "no splits found (expected {split}.skels files or synth.json)")
    return [g for split in (["train"] if "train" in splits else splits) for g in gloss_sequences(data, split)]


def gloss_sequences(data: DataConfig, split: str) -> list[Sequence[str]]:
    """One split's gloss sequences, read without poses (a PT directory's ``.gloss`` file alone)."""
    if data.path is None or is_manifest(Path(data.path)):
        return build_corpus(data, split).gloss_sequences()
    return [line.split() for line in text_lines(Path(data.path) / f"{split}.gloss")]


def build_vocab(data: DataConfig, train: Corpus) -> Vocabulary:
    """The gloss vocabulary: ``data.vocab`` when given, else every gloss of the training split."""
    if data.vocab is not None:
        return Vocabulary.from_file(data.vocab)
    return Vocabulary.from_corpus(train.gloss_sequences())


def make_synth(
    out: Path | str,
    seed: int = 0,
    sizes: dict[str, int | None] | None = None,
    glosses: Path | str | None = None,
    lazy: bool = False,
    workers: int = 1,
    progress: bool = False,
) -> dict:
    """Writes the synthetic sign language to ``out``: PT files per split, or with ``lazy`` only a manifest
    (samples rendered on demand), plus the training glosses' vocabulary (``src_vocab.txt``).

    ``sizes``: sentences per split (None entries: :data:`~fgdm.config.SYNTH_SPLIT_SIZES`). With ``glosses``
    (a PHOENIX-style CSV or a directory of them) the CSV rows are rendered instead, all of them unless
    ``sizes`` caps a split. Returns a summary.
    """
    from fgdm.data.synth.corpus import write_pt

    out = Path(out)
    given = {k: (sizes or {}).get(k) for k in SPLITS}
    csv_files = csv_splits(glosses) if glosses else {}
    if csv_files and (ignored := [k for k, v in given.items() if v is not None and k not in csv_files]):
        raise ValueError(f"{ignored[0]}: {given[ignored[0]]} sentences asked for, but {glosses} has no "
                         f"{ignored[0]} split (it has {', '.join(csv_files)})")  # fmt: skip
    if csv_files:  # every row of each CSV, unless a size caps that split
        chosen = {k: v for k, v in given.items() if k in csv_files and v is not None}
    else:
        chosen = {k: v if v is not None else SYNTH_SPLIT_SIZES[k] for k, v in given.items()}
    manifest = SynthManifest(seed=seed, sizes=chosen, csv={k: str(Path(v).resolve()) for k, v in csv_files.items()})
    t0 = time.perf_counter()
    rendered = 0
    with _writing_data(out) as new:  # (a manifest left by an earlier lazy run, which would shadow the files, goes)
        for split in manifest.splits():
            corpus = manifest.corpus(split, new)
            if len(corpus) < chosen.get(split, 0):  # a CSV of fewer rows than asked for: all of them, and said
                warnings.warn(f"{split}: {chosen[split]} sentences asked for, but {csv_files[split]} has "
                              f"{len(corpus)} rows: all taken", stacklevel=2)  # fmt: skip
            if not lazy:
                write_pt(corpus, new, progress=progress, workers=workers)
                rendered += len(corpus)
        if lazy:
            manifest.save(new)
        if "train" in manifest.splits():  # (its glosses alone: no poses read back)
            Vocabulary.from_corpus(gloss_sequences(DataConfig(path=str(new)), "train")).save(new / VOCAB)
    elapsed = time.perf_counter() - t0
    summary: dict = {"out": str(out), "splits": manifest.splits(), "lazy": lazy, "seed": seed}
    if csv_files:  # which CSV each split's glosses came from (a directory can hold several)
        summary["csv"] = {k: str(v) for k, v in csv_files.items()}
    if rendered:
        summary |= {"rendered_sequences": rendered, "seconds": round(elapsed, 2),
                    "sequences_per_second": round(rendered / elapsed, 1)}  # fmt: skip
    return summary


def import_holistic(poses: Path | str, glosses: Path | str, out: Path | str, progress: bool = False) -> dict:
    """Turns a directory of MediaPipe Holistic ``.pose`` files (``video_to_pose``'s output) and PHOENIX-style
    gloss CSVs (one per split, or one file) into a PT directory ``out``, with ``src_vocab.txt``.

    Each CSV row names its ``.pose`` file (``{id}.pose`` anywhere below ``poses``); every row needs one, and an id
    is in one split only. Poses are normalised as PT data (:mod:`fgdm.data.holistic`) and brought to PT's 25 fps
    by linear interpolation over time where recorded at another rate. The returned report counts, per split, the
    sequences, frames, source frame rates, sequences resampled, the joint values interpolated or absent and the
    files never showing a hand or a body point (each warned of, named), and lists the .pose files no row uses. A
    synthetic manifest left in ``out`` by ``fgdm synth --lazy`` is removed: it would shadow the files written.
    """
    from tqdm.auto import tqdm

    from fgdm.data.holistic import resample
    from fgdm.data.io import FPS, read_pose_details
    from fgdm.data.pt import PTSplit, write_split

    poses, out = Path(poses), Path(out)
    if problem := not_a_folder(poses, "the .pose files"):
        raise DataFormatError(poses, None, f"directory of .pose files {problem}")
    files: dict[str, Path] = {}  # by name in Unicode's composed form, as the CSV's ids are read (a Mac's are not)
    for path in sorted(poses.rglob("*")):  # .pose in any case; not hidden files (a Mac's ._clip.pose)
        if path.suffix.lower() != ".pose" or hidden(path, poses) or not path.is_file():
            continue
        if (name := unicodedata.normalize("NFC", path.stem)) in files:
            raise DataFormatError(path, None, f"a second .pose file for {name!r} (also {files[name]})")
        files[name] = path
    csv_files = csv_splits(glosses)
    splits = {split: read_phoenix_csv(csv) for split, csv in csv_files.items()}
    first: dict[str, tuple[str, int]] = {}
    for split, rows in splits.items():
        for row in rows:
            other, line = first.setdefault(row.name, (split, row.line))
            if other != split:
                raise DataFormatError(csv_files[split], row.line, f"the id {row.name!r} is in the {other} split too "
                                      f"({csv_files[other]}:{line}): one recording in two splits")  # fmt: skip
    missing = [row.name for rows in splits.values() for row in rows if row.name not in files]
    if missing:
        raise DataFormatError(poses, None, f"no .pose file for {len(missing)} CSV rows, e.g. {missing[:5]}")
    report: dict = {"out": str(out), "csv": {k: str(v) for k, v in csv_files.items()}, "splits": {}}
    with _writing_data(out) as new:  # (a lazy synth's manifest, which would shadow the files written here, goes)
        for split, rows in splits.items():
            seqs, rates, filled, absent, resampled, source_frames = [], set(), 0, 0, 0, 0
            unseen: dict[str, list[str]] = {}  # part never seen → the files
            for row in tqdm(rows, desc=f"import {split}", disable=not progress):
                got = read_pose_details(files[row.name])
                seqs.append(resample(got.pose, got.fps, FPS))
                resampled += seqs[-1] is not got.pose
                source_frames += len(got.pose)
                rates.add(round(got.fps, 3))  # (a float32's 29.969999 is 29.97)
                filled, absent = filled + got.interpolated, absent + got.absent
                for part in got.unseen:
                    unseen.setdefault(part, []).append(files[row.name].name)
            for part, names in unseen.items():  # a hand never seen teaches a hand without fingers: said, by file
                warnings.warn(f"{split}: {len(names)} of {len(rows)} .pose files never show the {part} (placed at "
                              f"{'its wrist' if part.endswith('hand') else 'above the neck'}): "
                              f"{', '.join(names[:5])}{', ...' * (len(names) > 5)}", stacklevel=2)  # fmt: skip
            write_split(new, split, PTSplit(poses=seqs, glosses=[list(r.glosses) for r in rows],
                                            texts=[r.text for r in rows], names=[r.name for r in rows]))  # fmt: skip
            values = source_frames * 49  # joint values read (the neck is derived, never missing)
            report["splits"][split] = {
                "sequences": len(rows), "frames": sum(len(p) for p in seqs), "fps": sorted(rates),
                f"resampled_to_{FPS:g}_fps": resampled,
                "interpolated_joint_values": filled, "absent_joint_values": absent,
                "never_seen": {part: len(names) for part, names in unseen.items()},
                "filled_percent": round(100 * (filled + absent) / max(values, 1), 2),
            }  # fmt: skip
        used = {row.name for rows in splits.values() for row in rows}
        report["unused_pose_files"] = sorted(str(p) for name, p in files.items() if name not in used)
        if "train" in splits:
            Vocabulary.from_corpus(list(r.glosses) for r in splits["train"]).save(new / VOCAB)
    return report
