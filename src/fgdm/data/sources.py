"""Opening a data directory: PT files, or a synthetic manifest rendered on the fly."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fgdm.data.corpus import Corpus, PTCorpus
from fgdm.data.pt import DataFormatError, available_splits
from fgdm.data.synth.corpus import DEFAULT_SIZES, SynthCorpus, read_phoenix_csv

MANIFEST = "synth.json"


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
    sizes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    csv: dict[str, str] = field(default_factory=dict)

    def save(self, directory: Path | str) -> Path:
        path = Path(directory) / MANIFEST
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path | str) -> SynthManifest:
        path = Path(directory) / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                seed=int(raw.get("seed", 0)),
                sizes={k: int(v) for k, v in raw.get("sizes", {}).items()},
                csv={k: str(v) for k, v in raw.get("csv", {}).items()},
            )
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as err:
            raise DataFormatError(path, None, f"invalid synthetic manifest: {err}") from None

    def splits(self) -> list[str]:
        return sorted(set(self.sizes) | set(self.csv), key=lambda s: ({"train": 0, "dev": 1, "test": 2}.get(s, 3), s))

    def corpus(self, split: str, base: Path) -> SynthCorpus:
        if split in self.csv:
            csv = Path(self.csv[split])
            rows = read_phoenix_csv(csv if csv.is_absolute() else base / csv)
            cap = self.sizes.get(split)
            rows = rows[:cap] if cap is not None else rows
            return SynthCorpus(0, split, seed=self.seed, rows=rows, frames_cache=base / f".frames-{split}.npz")
        if split not in self.sizes:
            raise KeyError(f"split {split!r} not in the manifest; splits are {self.splits()}")
        return SynthCorpus(self.sizes[split], split, seed=self.seed, frames_cache=base / f".frames-{split}.npz")


def data_splits(directory: Path | str) -> list[str]:
    directory = Path(directory)
    if (directory / MANIFEST).is_file():
        return SynthManifest.load(directory).splits()
    return available_splits(directory)


def open_corpus(directory: Path | str, split: str, skip_frames: int = 1) -> Corpus:
    """The corpus of ``split`` in ``directory``: a synthetic manifest if present, else PT files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, None, "data directory not found")
    if (directory / MANIFEST).is_file():
        return SynthManifest.load(directory).corpus(split, directory)
    return PTCorpus.read(directory, split, skip_frames=skip_frames)
