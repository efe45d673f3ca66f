"""Shared fixtures: tiny, seeded synthetic data written to temporary directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fgdm.data.synth.corpus import SynthCorpus, write_pt

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    """The tests name the repository's files from its root (configs/tiny.yaml, …), so they run there, wherever
    pytest was started (``cd tests && python -m pytest test_config.py`` included). At the session's start, after
    pytest has made its own paths absolute (``--basetemp``, ``--junitxml``, ``--log-file`` stay where it started)."""
    os.chdir(ROOT)


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
