"""Shared fixtures: tiny, seeded synthetic data written to temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgdm.data.synth.corpus import SynthCorpus, write_pt


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic PT directory (train 24, dev 6, test 6) with a gloss vocabulary."""
    from fgdm.data.vocab import Vocabulary

    out = tmp_path_factory.mktemp("synth")
    for split, n in (("train", 24), ("dev", 6), ("test", 6)):
        write_pt(SynthCorpus(n, split, seed=3), out, progress=False)
    Vocabulary.from_corpus(SynthCorpus(24, "train", seed=3).gloss_sequences()).save(out / "src_vocab.txt")
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny FGDM trained for 20 steps through the command line (configs/tiny.yaml)."""
    from fgdm.cli import main

    out = tmp_path_factory.mktemp("run")
    assert main(["train", "configs/tiny.yaml", "--set", f"training.output_dir={out}", "--quiet"]) == 0
    return out
