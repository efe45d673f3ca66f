"""What every command does with bad input and faults: the table below is the behaviour, readable as documentation.

Each case runs ``fgdm`` in process and checks the exit status and what stderr says. The rules (README,
"Safety"): never overwrite what a user made without being asked; refuse non-finite input and stop on
non-finite training; refuse what cannot work, saying what is valid; one line ``fgdm: error: ...`` for
every expected failure (``--debug`` shows the traceback); Ctrl-C exits 130.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fgdm.cli import main
from fgdm.cli.parser import parse

TINY = "configs/tiny.yaml"
FAST = ["--set", "training.max_steps=2", "--set", "training.val_every=2", "--quiet"]


@dataclass
class Case:
    """``argv(ctx)`` builds the command line (and any files it needs) in ``ctx.tmp``; ``code`` is the exit status
    and ``says`` the fragments stderr must contain (``-`` = nothing on stderr but warnings)."""

    name: str
    argv: Callable[[Ctx], list[str]]
    code: int
    says: tuple[str, ...]


@dataclass
class Ctx:
    tmp: Path
    data: Path  # a small synthetic PT directory (copied: cases may damage it)
    run: Path  # a trained tiny run (copied)

    @property
    def ckpt(self) -> str:
        return str(self.run / "checkpoints" / "last.ckpt")


def _edit(path: Path, line: int, fn: Callable[[str], str]) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line] = fn(lines[line])
    path.write_text("\n".join(lines), encoding="utf-8")


def _first_value(ctx: Ctx, split: str, line: int, value: str) -> list[str]:
    """Replaces the first coordinate on a line of a split's .skels; the command checks the data."""
    _edit(ctx.data / f"{split}.skels", line, lambda s: f"{value} " + s.split(" ", 1)[1])
    return ["data", "check", str(ctx.data), "--quiet"]


def _train_on(ctx: Ctx, out: str = "run2") -> list[str]:
    return ["train", TINY, "--set", f"data.path={ctx.data}", "--set", f"training.output_dir={ctx.tmp / out}", *FAST]


def _empty_split(ctx: Ctx, split: str, then: str = "train") -> list[str]:
    for ext in ("skels", "gloss", "text", "files"):
        (ctx.data / f"{split}.{ext}").write_text("", encoding="utf-8")
    if then == "generate":
        return ["generate", "--checkpoint", ctx.ckpt, "--data", str(ctx.data), "--split", split, "--out",
                str(ctx.tmp / "g"), "--quiet"]  # fmt: skip
    return ["data", "check", str(ctx.data), "--quiet"] if then == "check" else _train_on(ctx)


def _vocab(ctx: Ctx, content: bytes) -> list[str]:
    (ctx.tmp / "v.txt").write_bytes(content)
    return [*_train_on(ctx), "--set", f"data.vocab={ctx.tmp / 'v.txt'}"]


def _stale_lock(ctx: Ctx) -> list[str]:
    out = ctx.tmp / "run2"
    out.mkdir()
    (out / ".lock").write_text("999999999\n")  # no such process
    return _train_on(ctx)


def _live_lock(ctx: Ctx) -> list[str]:
    out = ctx.tmp / "run2"
    out.mkdir()
    (out / ".lock").write_text(f"{os.getppid()}\n")  # a process that is alive
    return _train_on(ctx)


def _lock_of(ctx: Ctx, pid: int, host: str | None = None, start: str | None = None) -> list[str]:
    """A lock in the run directory as fgdm writes it, of process ``pid`` as this machine sees it, the host or the
    process's start changed where given."""
    from fgdm.training.rundir import _identity

    who = _identity(pid)
    who = [host or who[0], who[1], start or who[2]]
    out = ctx.tmp / "run2"
    out.mkdir()
    (out / ".lock").write_text("\n".join([str(pid), *who]) + "\n")
    return _train_on(ctx)


def _own_lock(ctx: Ctx) -> list[str]:
    return _lock_of(ctx, os.getppid())  # a process that is alive, as it is


def _reused_lock(ctx: Ctx) -> list[str]:
    return _lock_of(ctx, os.getppid(), start="1")  # its id, but a process started at another time


def _remote_lock(ctx: Ctx) -> list[str]:
    return _lock_of(ctx, os.getppid(), host="node-17")


def _texts(ctx: Ctx, hyp: str, ref: str) -> list[str]:
    (ctx.tmp / "h.txt").write_text(hyp, encoding="utf-8")
    (ctx.tmp / "r.txt").write_text(ref, encoding="utf-8")
    return ["score", "--hyp", str(ctx.tmp / "h.txt"), "--ref", str(ctx.tmp / "r.txt")]


def _moved_training_data(ctx: Ctx) -> list[str]:
    """An export recording ``ctx.data`` as its training data, which then moves."""
    assert main(["export", ctx.ckpt, "--out", str(ctx.tmp / "exp"), "--data", str(ctx.data)]) == 0
    ctx.data.rename(ctx.tmp / "moved")
    return ["generate", "--checkpoint", str(ctx.tmp / "exp"), "--split", "test", "--out", str(ctx.tmp / "g")]


def _gen(ctx: Ctx, *extra: str) -> list[str]:
    return ["generate", "--checkpoint", ctx.ckpt, "--gloss", "REGEN NORD", *extra]


CASES = [
    # --- never overwrite what a user made without being asked ---------------------------------
    Case(
        "train into a run that holds checkpoints",
        lambda c: ["train", TINY, "--set", f"training.output_dir={c.run}", *FAST],
        1,
        ("holds checkpoints", "--resume", "--overwrite"),
    ),
    Case(
        "generate onto the data's own split",
        lambda c: [
            "generate",
            "--checkpoint",
            c.ckpt,
            "--data",
            str(c.data),
            "--split",
            "test",
            "--out",
            str(c.data),
            "--quiet",
        ],
        1,
        ("would overwrite", "test.skels"),
    ),
    Case(
        "generate over an existing file",
        lambda c: (c.tmp / "a.npy").write_bytes(b"mine") and _gen(c, "--out", str(c.tmp / "a.npy")),
        1,
        ("exists", "--overwrite"),
    ),
    Case(
        "synth into a non-empty directory",
        lambda c: ["synth", "--out", str(c.data), "--num-train", "2", "--quiet"],
        1,
        ("not empty", "--overwrite"),
    ),
    Case("a second training in the same directory", _live_lock, 1, ("another training", "is running")),
    Case("a stale lock from a dead process", _stale_lock, 0, ("stale lock",)),
    Case("a lock of a running process, its own", _own_lock, 1, ("another training", "is running")),
    Case("a lock of a process id now another's (started later)", _reused_lock, 0, ("stale lock",)),
    Case("a lock written on another machine", _remote_lock, 0, ("on node-17, which cannot be checked", "ended there")),
    # --- refuse non-finite input ---------------------------------------------------------------
    Case("an absurd value in .skels", lambda c: _first_value(c, "train", 0, "1e30"), 1, ("train.skels:1:", "1e+30")),
    Case("NaN in .skels", lambda c: _first_value(c, "dev", 1, "nan"), 1, ("dev.skels:2:", "not finite")),
    Case(
        "training that diverges",
        lambda c: [*_train_on(c), "--set", "training.lr=1e30", "--set", "training.warmup_steps=0"],
        1,
        ("the training loss is", "training stopped"),
    ),
    Case(
        "a BOM before the first gloss",
        lambda c: (
            (c.data / "train.gloss").write_bytes(b"\xef\xbb\xbf" + (c.data / "train.gloss").read_bytes())
            and ["data", "check", str(c.data), "--quiet"]
        ),
        0,
        (),
    ),
    # --- refuse what cannot work ---------------------------------------------------------------
    Case("an empty train split", lambda c: _empty_split(c, "train"), 1, ("train split", "no sequences")),
    Case("an empty dev split", lambda c: _empty_split(c, "dev"), 1, ("dev split", "no sequences")),
    Case(
        "generate on an empty split",
        lambda c: _empty_split(c, "test", "generate"),
        1,
        ("test split of", "has no sequences"),
    ),
    Case("data check of an empty split", lambda c: _empty_split(c, "test", "check"), 1, ("test.skels", "no sequences")),
    Case(
        "a vocabulary with a token twice",
        lambda c: _vocab(c, b"<unk>\n<pad>\n<s>\n</s>\nREGEN\nNORD\nREGEN\n"),
        1,
        ("v.txt:7: the token 'REGEN' again (first on line 5)",),
    ),
    Case(
        "a vocabulary not in UTF-8",
        lambda c: _vocab(c, b"<unk>\n<pad>\n<s>\n</s>\nF\xfcR\n"),
        1,
        ("v.txt:5:", "not UTF-8"),
    ),
    Case(
        "a missing vocabulary", lambda c: [*_train_on(c), "--set", "data.vocab=nope.txt"], 1, ("nope.txt", "not found")
    ),
    Case(
        "--limit -2",
        lambda c: ["generate", "--checkpoint", c.ckpt, "--split", "test", "--limit", "-2", "--out", str(c.tmp / "g")],
        2,
        ("--limit", "whole number ≥ 1"),
    ),
    Case("--steps 0", lambda c: _gen(c, "--steps", "0", "--out", str(c.tmp / "a.npy")), 2, ("--steps", "≥ 1")),
    Case(
        "--steps beyond the schedule",
        lambda c: _gen(c, "--steps", "5000", "--out", str(c.tmp / "a.npy")),
        1,
        ("5000 sampling steps", "at most 100"),
    ),
    Case(
        "--length 100000",
        lambda c: _gen(c, "--length", "100000", "--out", str(c.tmp / "a.npy")),
        2,
        ("--length", "at most"),
    ),
    Case(
        "training.val_every=0",
        lambda c: [*_train_on(c), "--set", "training.val_every=0"],
        1,
        ("training.val_every: must be ≥ 1",),
    ),
    Case(
        "training.devices=0",
        lambda c: [*_train_on(c), "--set", "training.devices=0"],
        1,
        ("training.devices: must be ≥ 1",),
    ),
    Case(
        "resume with another learning rate",
        lambda c: [
            "train",
            TINY,
            "--set",
            f"training.output_dir={c.run}",
            "--set",
            "training.lr=0.5",
            "--resume",
            "--quiet",
        ],
        1,
        ("training.lr", "0.5", "start a new run"),
    ),
    Case("score against empty references", lambda c: _texts(c, "a b\n", "\n"), 1, ("r.txt:1: an empty reference",)),
    Case("score an empty file", lambda c: _texts(c, "", ""), 1, ("no sentences",)),
    Case("score a directory", lambda c: ["score", "--hyp", str(c.data), "--ref", str(c.data)], 1, ("is a directory",)),
    # --- one clear line instead of a traceback -------------------------------------------------
    Case(
        "a corrupt checkpoint",
        lambda c: (
            (c.tmp / "bad.ckpt").write_bytes(b"\x80\x02garbage")
            and ["generate", "--checkpoint", str(c.tmp / "bad.ckpt"), "--gloss", "A", "--out", str(c.tmp / "a.npy")]
        ),
        1,
        ("bad.ckpt", "not a readable checkpoint"),
    ),
    Case(
        "--device cuda without CUDA",
        lambda c: _gen(c, "--device", "cuda", "--out", str(c.tmp / "a.npy")),
        1,
        ("CUDA is not available",),
    ),
    Case(
        "an output_dir that is a file",
        lambda c: (
            (c.tmp / "f").write_text("x") and ["train", TINY, "--set", f"training.output_dir={c.tmp / 'f'}", *FAST]
        ),
        1,
        ("is a file",),
    ),
    Case("a missing config", lambda c: ["train", "nope.yaml"], 1, ("nope.yaml", "not found")),
    Case("a missing data directory", lambda c: ["data", "check", str(c.tmp / "nothing")], 1, ("not found",)),
    # --- say what is wrong before the work, not after it -----------------------------------------
    Case(
        "a sentence the length head makes too long",
        lambda c: [
            "generate",
            "--checkpoint",
            c.ckpt,
            "--gloss",
            " ".join(["REGEN NORD"] * 200),
            "--out",
            str(c.tmp / "a.npy"),
        ],
        1,
        ("the length head predicts", "beyond the 2000", "--length N"),
    ),
    Case(
        "a device fgdm does not run on",
        lambda c: _gen(c, "--device", "xpu", "--out", str(c.tmp / "a.npy")),
        1,
        ("device 'xpu'", "cpu, cuda"),
    ),
    Case(
        "generate --split into a file",
        lambda c: (
            (c.tmp / "afile").write_text("mine")
            and ["generate", "--checkpoint", c.ckpt, "--split", "test", "--out", str(c.tmp / "afile"), "--quiet"]
        ),
        1,
        ("afile: with --split the output is a directory",),
    ),
    Case(
        "evaluate into a path below a file",
        lambda c: (
            (c.tmp / "afile").write_text("mine")
            and ["evaluate", "--backtranslator", "unread.ckpt", "--out", str(c.tmp / "afile" / "rep")]
        ),
        1,
        ("afile is a file, not a directory",),
    ),
    Case(
        "evaluate a missing --hyp",
        lambda c: [
            "evaluate",
            "--backtranslator",
            "unread.ckpt",
            "--hyp",
            str(c.tmp / "nope"),
            "--out",
            str(c.tmp / "rep"),
        ],
        1,
        ("nope: hypothesis directory not found",),
    ),
    Case(
        "--gloss with --render",
        lambda c: _gen(c, "--render", "2", "--out", str(c.tmp / "a.npy")),
        1,
        ("--render: only with --split",),
    ),
    Case(
        "--gloss with --batch-size",
        lambda c: _gen(c, "--batch-size", "4", "--out", str(c.tmp / "a.npy")),
        1,
        ("--batch-size: only with --split",),
    ),
    Case(
        "glosses in lower case",
        lambda c: ["generate", "--checkpoint", c.ckpt, "--gloss", "regen nord", "--out", str(c.tmp / "a.npy")],
        1,
        ("none of 'regen nord' is in the vocabulary", "did you mean REGEN NORD?"),
    ),
    Case(
        "a vocabulary token as a gloss",
        lambda c: ["generate", "--checkpoint", c.ckpt, "--gloss", "REGEN </s>", "--out", str(c.tmp / "a.npy")],
        1,
        ("</s> is a vocabulary's own token",),
    ),
    Case("--length 0", lambda c: _gen(c, "--length", "0", "--out", str(c.tmp / "a.npy")), 2, ("--length",)),
    Case(
        "a seed beyond 64 bits",
        lambda c: _gen(c, "--seed", str(2**64), "--out", str(c.tmp / "a.npy")),
        2,
        ("--seed", "2**63 - 1"),
    ),
    Case(
        "a bad --set value",
        lambda c: ["model", "summary", TINY, "--set", "model.width=abc"],
        1,
        ("--set model.width=abc: model.width: expected an integer",),
    ),
    Case(
        "a config that is not YAML",
        lambda c: (c.tmp / "bad.yaml").write_text("training:\n  lr: [1\n") and ["train", str(c.tmp / "bad.yaml")],
        1,
        ("bad.yaml:3: column 1: invalid YAML (while parsing a flow sequence; expected ',' or ']'",),
    ),
    Case(
        "a GPU asked for on a machine without one",
        lambda c: [*_train_on(c), "--set", "training.accelerator=gpu"],
        1,
        ("training.accelerator, devices, strategy or precision:",),
    ),
    Case(
        "every device (-1) where the accelerator found is a CPU",
        lambda c: [*_train_on(c), "--set", "training.devices=-1"],
        1,
        ("training.accelerator, devices, strategy or precision:", "should be an int > 0"),
    ),
    Case(
        "resuming a run that has reached max_steps",
        lambda c: ["train", TINY, "--set", f"training.output_dir={c.run}", "--set", "training.max_steps=5", "--resume"],
        1,
        ("is at step 20 already", "training.max_steps 5 leaves nothing to train"),
    ),
    Case(
        "a rate below min_lr under the plateau schedule",
        lambda c: [*_train_on(c), "--set", "training.lr=5e-5"],
        1,
        ("training.min_lr: the plateau schedule stops training once the rate falls below it",),
    ),
    Case(
        "zero gloss-encoder heads",
        lambda c: [*_train_on(c), "--set", "model.gloss_encoder.heads=0"],
        1,
        ("--set model.gloss_encoder.heads=0: model.gloss_encoder.heads: must be ≥ 1",),
    ),
    Case(
        "score a file that is not UTF-8",
        lambda c: (
            (c.tmp / "h.txt").write_bytes(b"a b\nc \xff\n")
            and (c.tmp / "r.txt").write_text("a b\nc d\n")
            and ["score", "--hyp", str(c.tmp / "h.txt"), "--ref", str(c.tmp / "r.txt")]
        ),
        1,
        ("h.txt:2: not UTF-8 text",),
    ),
    # --- a run's directory, a data file, moved data: named for what they are ------------------------
    Case(
        "generate from a run's directory",
        lambda c: ["generate", "--checkpoint", str(c.run), "--gloss", "REGEN", "--out", str(c.tmp / "a.npy")],
        1,
        ("run: a directory, not a checkpoint or an exported model (a training run's: give ", "last.ckpt)"),
    ),
    Case(
        "export into a run's directory, before --overwrite is offered",
        lambda c: ["export", c.ckpt, "--out", str(c.run)],
        1,
        ("run: a training run's directory (its config.json is the run's): choose another one",),
    ),
    Case(
        "data check on a data file",
        lambda c: ["data", "check", str(c.data / "train.skels")],
        1,
        ("train.skels: a file, not a data directory: give the directory that holds it",),
    ),
    Case(
        "generate --split from data moved since training",
        _moved_training_data,
        1,
        ("not found: the checkpoint's training data (data.path); --data gives others",),
    ),
]


@pytest.fixture(scope="module")
def _data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    assert main(["synth", "--out", str(out / "d"), "--num-train", "12", "--num-dev", "3", "--num-test", "3",
                 "--quiet"]) == 0  # fmt: skip
    return out / "d"


@pytest.fixture
def ctx(tmp_path, _data, trained) -> Ctx:
    shutil.copytree(_data, tmp_path / "data")
    shutil.copytree(trained, tmp_path / "run")
    return Ctx(tmp_path, tmp_path / "data", tmp_path / "run")


@pytest.mark.skipif(not hasattr(os, "getppid"), reason="needs process ids")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli_case(case: Case, ctx: Ctx, capsys) -> None:
    argv = case.argv(ctx)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:  # on a terminal they print as "fgdm: warning: ..."
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    err = capsys.readouterr().err + "".join(f"fgdm: warning: {w.message}\n" for w in caught)
    assert code == case.code, err
    for fragment in case.says:
        assert fragment in err, (fragment, err)
    if case.code == 1:
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and errors[0].startswith("fgdm: error: "), err
        assert "Traceback" not in err


def test_debug_shows_the_traceback(ctx, capsys) -> None:
    assert main(["--debug", "data", "check", str(ctx.tmp / "nothing")]) == 1
    assert "Traceback" in capsys.readouterr().err
    assert main(["data", "check", str(ctx.tmp / "nothing"), "--debug"]) == 1  # after the command's name too
    assert "Traceback" in capsys.readouterr().err


def test_a_full_disk_is_one_line(ctx, capsys, monkeypatch) -> None:
    import fgdm.data.sources

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(ctx.tmp / "x"))

    monkeypatch.setattr(fgdm.data.sources, "make_synth", full)
    assert main(["synth", "--out", str(ctx.tmp / "new"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fgdm: error: ") and "No space left on device" in err and "Traceback" not in err


def test_overwrite_and_resume_are_the_ways_in(ctx, capsys) -> None:
    base = ["train", TINY, "--set", f"training.output_dir={ctx.run}", "--quiet"]
    assert main([*base, "--set", "training.max_steps=22", "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 22
    assert main([*base, "--set", "training.max_steps=2", "--set", "training.val_every=2", "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert not (ctx.run / ".lock").exists()  # released
    assert main(["synth", "--out", str(ctx.data), "--num-train", "2", "--num-dev", "1", "--num-test", "1",
                 "--overwrite", "--quiet"]) == 0  # fmt: skip


def test_an_uppercase_suffix_is_kept(ctx, capsys) -> None:
    assert main(_gen(ctx, "--out", str(ctx.tmp / "a.NPY"))) == 0
    assert (ctx.tmp / "a.NPY").is_file() and not (ctx.tmp / "a.NPY.npy").exists()
    assert np.load(ctx.tmp / "a.NPY").shape[1:] == (50, 3)


def _stop_training(out: Path, sig: int, after: float = 0.0) -> tuple[int, str]:
    """``fgdm train`` of the tiny config, sent ``sig`` once its first checkpoint is written (and ``after``
    seconds more): its exit status and stderr."""
    cmd = [sys.executable, "-m", "fgdm.cli", "train", TINY, "--set", f"training.output_dir={out}",
           "--set", "training.max_steps=100000", "--set", "training.val_every=5", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(after)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_ctrl_c_stops_training_with_130_and_keeps_the_last_checkpoint(tmp_path) -> None:
    out = tmp_path / "run"
    status, err = _stop_training(out, 2)  # SIGINT, as Ctrl-C
    assert status == 130, err
    assert "interrupted" in err and (out / "checkpoints" / "last.ckpt").is_file()
    assert not (out / ".lock").exists()


def test_a_reader_that_stops_early_gets_no_error_line() -> None:
    """``fgdm … | head``: a closed pipe ends the command quietly, without a 'Broken pipe' error."""
    cmd = [sys.executable, "-m", "fgdm.cli", "model", "summary", TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the command writes anything
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Broken pipe" not in err and "Traceback" not in err, err


def test_lightnings_warnings_read_as_fgdms_and_its_noise_is_left_out(tmp_path) -> None:
    """Lightning replaces warnings.formatwarning on import (printing its source file's path) and logs an advert.
    Its warning of an epoch shorter than the logging interval is left out too: fgdm's logs count steps across
    epochs, so none is lost (tests/test_training.py checks the CSV's steps)."""
    cmd = [sys.executable, "-m", "fgdm.cli", "train", TINY, "--set", f"training.output_dir={tmp_path}",
           "--set", "training.max_steps=3", "--set", "training.log_every=50", "--set", "training.accelerator=cpu",
           "--set", "training.precision=16-mixed"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert any("fp16 is not supported on CPU" in line for line in lines)  # Lightning's own warning, kept
    assert not any("logging interval" in line for line in lines)
    assert all(line.startswith("fgdm: warning: ") for line in lines if "warn" in line.lower())
    assert not any(".py:" in line or "Tip:" in line or "weights_only" in line for line in lines), lines


def test_sigterm_stops_training_with_143_and_keeps_the_last_checkpoint(tmp_path) -> None:
    """A cluster scheduler's SIGTERM: Lightning stops after the step (and used to exit 0 with nothing saved)."""
    import torch

    out = tmp_path / "run"
    status, err = _stop_training(out, 15, after=1.0)  # a few steps past the validation's checkpoint
    assert status == 143, err
    assert "terminated (SIGTERM) at step" in err
    assert "fgdm: terminated\n" not in err  # one line: where the last checkpoint is
    step = int(err.split("terminated (SIGTERM) at step ")[1].split(";")[0])
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == step > 5


def _train_signalled(
    out: Path, where: str, *more: str, sig: str = "SIGTERM", env: dict | None = None, background: bool = False
):
    """``fgdm train`` of the tiny config, in a process that sends itself ``sig`` (or several: SIGINT,SIGINT) as
    ``where`` is called (a method as module:Class.name, the Nth call with module:Class.name:N): its exit status and
    stderr. The process starts with Ctrl-C's SIGINT as from a terminal, or ignored as a shell's ``background`` job
    (whatever the tests were started as: a background job's children inherit the ignored SIGINT)."""
    script = (
        "import importlib, signal, sys\n"
        f"signal.signal(signal.SIGINT, signal.{'SIG_IGN' if background else 'default_int_handler'})\n"
        f"module, name, *nth = {where!r}.split(':')\n"
        "calls = []\n"
        "owner, method = name.split('.')\n"
        "cls = getattr(importlib.import_module(module), owner)\n"
        "real = getattr(cls, method)\n"
        "def signalled(*a, **k):\n"
        "    calls.append(1)\n"
        "    if len(calls) == int((nth or [1])[0]):\n"
        f"        for sig in {sig.split(',')!r}:\n"  # to this thread: the process's may go to another thread, and two
        "            signal.raise_signal(getattr(signal, sig))\n"  # noted there before Python ran a handler are one
        "    return real(*a, **k)\n"
        "setattr(cls, method, signalled)\n"
        "from fgdm.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    cmd = [sys.executable, "-c", script, "train", TINY, "--set", f"training.output_dir={out}", "--quiet", *more]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    return done.returncode, done.stderr


def test_a_background_job_keeps_training_through_a_ctrl_c(tmp_path) -> None:
    """A shell starts a background job with SIGINT ignored, so that a terminal's Ctrl-C does not reach it; training
    keeps it so (fgdm's handler had replaced it: such a job stopped at a Ctrl-C). SIGTERM still stops it."""
    import torch

    out = tmp_path / "run"
    status, err = _train_signalled(out, "fgdm.training.generator:LitFGDM.training_step:2", "--set",
                                   "training.max_steps=4", sig="SIGINT", background=True)  # fmt: skip
    assert status == 0 and "interrupted" not in err, err
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4  # not stopped at 2
    status, err = _train_signalled(out, "fgdm.training.generator:LitFGDM.training_step:2", "--set",
                                   "training.max_steps=8", "--resume", background=True)  # fmt: skip
    assert status == 143 and "terminated (SIGTERM) at step" in err, err


def test_sigterm_while_training_starts_says_what_is_kept_and_leaves_no_lock(tmp_path) -> None:
    """A SIGTERM while a training loaded its data killed it at once, without a word (status -15, not 143), leaving its
    lock and the files it began. Now: one line, 143, and what was there before is as it was."""
    import torch

    out = tmp_path / "run"
    status, err = _train_signalled(out, "fgdm.training.data:PoseDataModule.__init__")
    assert status == 143, err
    assert err.strip().splitlines()[-1] == "fgdm: terminated (SIGTERM) before training's end; nothing was kept: run " \
                                           "the command again"  # fmt: skip
    assert not out.exists()  # a fresh run's directory, lock and files removed
    assert main(["train", TINY, "--set", f"training.output_dir={out}", "--set", "training.max_steps=2", "--quiet"]) == 0
    status, err = _train_signalled(out, "fgdm.training.data:PoseDataModule.__init__", "--set",
                                   "training.max_steps=4", "--resume")  # fmt: skip
    assert status == 143, err
    last = out / "checkpoints" / "last.ckpt"
    assert f"fgdm: terminated (SIGTERM) before training's end; {last} holds the run's last saved state " \
           "(--resume continues)" in err  # fmt: skip
    assert not (out / ".lock").exists() and torch.load(last, weights_only=False)["global_step"] == 2


def test_a_stop_before_a_fits_first_step_keeps_what_was_there(tmp_path) -> None:
    """A SIGTERM while Lightning set the fit up (after fgdm's start, before a step) wrote a step-0 last.ckpt, which,
    under an --overwrite, dropped the run set aside for it. Now nothing is written: the old run is back, as after a
    stop while starting. A second Ctrl-C during the fit (Lightning then exits 1, saying nothing) is said and 130."""
    import torch

    out = tmp_path / "run"
    assert main(["train", TINY, "--set", f"training.output_dir={out}", "--set", "training.max_steps=2", "--quiet"]) == 0
    status, err = _train_signalled(out, "fgdm.training.loop:ScheduledModule.configure_optimizers", "--overwrite")
    assert status == 143, err
    last = out / "checkpoints" / "last.ckpt"
    assert f"fgdm: terminated (SIGTERM) before training's end; {last} holds the run's last saved state" in err
    assert torch.load(last, weights_only=False)["global_step"] == 2 and (out / "config.json").is_file()
    assert not list(out.glob("*.replaced")) and not list((out / "checkpoints").glob("*.replaced"))
    status, err = _train_signalled(out, "fgdm.training.generator:LitFGDM.training_step:2", "--set",
                                   "training.max_steps=40", "--resume", sig="SIGINT,SIGINT")  # fmt: skip
    assert status == 130, err
    assert f"fgdm: interrupted before training's end; {last} holds the run's last saved state" in err
    assert torch.load(last, weights_only=False)["global_step"] == 2  # stopped mid-step: nothing saved


def test_sigterm_while_the_final_checkpoint_is_written_waits_for_it(tmp_path) -> None:
    """The last checkpoint is written after Lightning's fit, whose SIGTERM handler it has put back by then: a SIGTERM
    there killed the process with the file half written (the lock left, the steps since the last validation lost).
    Now it is noted: the checkpoint is written whole, then the stop is said and the status is 143."""
    import torch

    out = tmp_path / "run"
    status, err = _train_signalled(out, "lightning:Trainer.save_checkpoint", "--set", "training.max_steps=3",
                                   "--set", "training.val_every=1000")  # fmt: skip
    assert status == 143, err
    last = out / "checkpoints" / "last.ckpt"
    assert f"terminated (SIGTERM) at step 3; {last} holds it (training.max_steps was reached)" in err
    assert torch.load(last, weights_only=False)["global_step"] == 3
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"] and not (out / ".lock").exists()


def test_under_slurm_sigusr1_stops_training_as_sigterm_does_and_lightning_saves_nothing_of_its_own(tmp_path) -> None:
    """Lightning's SLURM auto-requeue answered SIGUSR1 (sbatch --signal=USR1@90) with a checkpoint of its own in the
    run directory, hpc_ckpt_1.ckpt, which a later fit without --resume (an --overwrite's) silently continued. fgdm
    turns it off and stops on SIGUSR1 as on SIGTERM, writing last.ckpt; the trainer's root directory, where
    Lightning looks for such files, is the checkpoints folder, where no earlier run put one."""
    import torch

    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}  # fmt: skip
    out = tmp_path / "run"
    status, err = _train_signalled(out, "fgdm.training.generator:LitFGDM.training_step:3", "--set",
                                   "training.max_steps=40", sig="SIGUSR1", env=slurm)  # fmt: skip
    assert status == 143, err
    last = out / "checkpoints" / "last.ckpt"
    assert f"fgdm: terminated (SIGUSR1) at step 3; {last} holds it (--resume continues)" in err
    assert torch.load(last, weights_only=False)["global_step"] == 3
    assert not list(tmp_path.rglob("hpc_ckpt_*"))
    status, err = _train_signalled(tmp_path / "early", "fgdm.training.data:PoseDataModule.__init__", sig="SIGUSR1",
                                   env=slurm)  # fmt: skip
    assert status == 143 and "fgdm: terminated (SIGUSR1) before training's end; nothing was kept" in err, err
    assert not (tmp_path / "early").exists()
    shutil.copyfile(last, out / "hpc_ckpt_1.ckpt")  # as Lightning's requeue left one in an earlier fgdm's run
    status, err = _train_signalled(out, "fgdm.training.generator:LitFGDM.training_step:2", "--set",
                                   "training.max_steps=40", "--overwrite", sig="SIGUSR1", env=slurm)  # fmt: skip
    assert status == 143 and f"at step 2; {last} holds it" in err, err  # afresh: not step 3 + 2


def test_the_command_line_puts_back_the_sigterm_handler_it_found(capsys) -> None:
    """Its raising handler is for its commands' run only: a program (a test) that calls main goes on with its own.
    (Training uses it while starting; its fit and final checkpoint note the signal instead.)"""
    import signal

    def mine(signum, frame) -> None:
        pass

    before = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["model", "summary", TINY]) == 0
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sigterm_stops_any_command_with_143_and_leaves_no_temporary_file(tmp_path) -> None:
    """SIGTERM killed other commands at once (status 143 but no word, and a half-written GIF's hidden temporary
    left beside the output): now it stops them as Ctrl-C does, their temporary files removed."""
    np.save(tmp_path / "long.npy", np.random.default_rng(0).normal(0, 0.2, (3000, 50, 3)).astype(np.float32))
    cmd = [sys.executable, "-m", "fgdm.cli", "render", str(tmp_path / "long.npy"), "--out", str(tmp_path / "a.gif")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".a.*.tmp.gif")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "rendering ended before it could be stopped"
    proc.send_signal(15)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "fgdm: terminated", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.npy"]


def test_existing_outputs_are_named_three_at_most_with_how_many_more(tmp_path) -> None:
    from fgdm.cli.refusals import refuse_existing

    paths = [tmp_path / f"test.{ext}" for ext in ("skels", "gloss", "text", "files")]
    for path in paths:
        path.write_text("")
    for n, says in (
        (1, "test.skels exists already: .* to replace it"),
        (2, "test.gloss exist already: .* them"),
        (4, "test.text and 1 more exist already: choose another --out, or --overwrite to replace them"),
    ):
        with pytest.raises(ValueError, match=f"{says}$"):
            refuse_existing(paths[:n], overwrite=False)
    refuse_existing(paths, overwrite=True)
    refuse_existing([tmp_path / "new.skels"], overwrite=False)


def test_help_and_usage_errors_answer_without_loading_pytorch() -> None:
    """The parser reads its choices from :mod:`fgdm.choices`, not from the sampling API (which imports torch, and
    torch.compile's machinery through the kernel): ``fgdm --help``, a command's help and a mistyped option answer
    in a fraction of a second instead of seconds. The commands import what they need when they run."""
    script = (
        "import sys\n"
        "from fgdm.cli import main\n"
        "for argv in (['--help'], ['generate', '--help'], ['evaluate', '--help'], ['generate', '--length', '0']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as done:\n"
        "        assert done.code == (0 if '--help' in argv else 2), (argv, done.code)\n"
        "    else:\n"
        "        raise AssertionError(argv)\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.splitlines()[-1]
    assert "torch" not in loaded and "lightning" not in loaded, loaded
    assert "from 1 to at most 2000, got '0'" in done.stderr


def test_config_files_after_options_are_read_in_their_order(tmp_path, capsys) -> None:
    """``fgdm train A.yaml --set K=V B.yaml`` reads B after A (argparse alone refused B as unrecognised); other
    unrecognised arguments stay a usage error."""
    wider = tmp_path / "wider.yaml"
    wider.write_text("model:\n  width: 48\n")

    def summary(*argv: str) -> dict:
        assert main(["model", "summary", *argv]) == 0
        return json.loads(capsys.readouterr().out)

    before = summary(TINY, str(wider), "--frames", "8")
    after = summary(TINY, "--frames", "8", str(wider))
    assert after["config"] == [TINY, str(wider)] and after["parameters"] == before["parameters"]
    assert after["parameters"] != summary(TINY, "--frames", "8")["parameters"]  # the later file was read
    assert summary(TINY, "--frames", "8", "--", str(wider))["config"] == [TINY, str(wider)]
    for argv, wrong in (
        (["model", "summary", TINY, "--frames", "8", str(wider), "--nonsense"], "--nonsense"),  # only it named
        (["model", "summary", TINY, "--batch", "2", "3"], "3"),  # a stray value is no config file
        (["score", "--hyp", "a", "--ref", "b", "c.yaml"], "c.yaml"),  # a command without configs
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: unrecognized arguments: {wrong}")


def test_render_inputs_after_options_are_rendered_in_their_order(tmp_path, capsys) -> None:
    """``fgdm render a.npy --out x.gif b.pose DIR``: inputs after an option join the others in their order (argparse
    alone refused them); an argument that is no input (no .npy or .pose, no directory) stays a usage error."""
    args = parse(["render", "a.npy", "--out", "x.gif", "B.POSE", "--fps", "10", str(tmp_path)])
    assert args.inputs == ["a.npy", "B.POSE", str(tmp_path)] and args.out == "x.gif" and args.fps == 10
    assert parse(["render", "--out", "x.gif", "a.npy"]).inputs == ["a.npy"]
    for argv, wrong in (
        (["render", "a.npy", "--out", "x.gif", "--index", "2", "3"], "3"),  # a stray value
        (["render", "a.npy", "--out", "x.gif", "b.yaml"], "b.yaml"),  # a config file is no input
        (["render", "a.npy", "--out", "x.gif", str(tmp_path / "missing")], str(tmp_path / "missing")),
    ):
        with pytest.raises(SystemExit) as stop:
            parse(argv)
        assert stop.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: unrecognized arguments: {wrong}")


def test_synth_help_says_glosses_keep_every_row_of_each_split(capsys) -> None:
    """``--num-dev`` and ``--num-test`` said "default 100", but with ``--glosses`` every row of the CSV is kept."""
    import re

    with pytest.raises(SystemExit):
        parse(["synth", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for split, default in (("train", 1000), ("dev", 100), ("test", 100)):
        assert re.search(rf"--num-{split} NUM_{split.upper()} {split} sentences \(default {default}; with --glosses: "
                         r"rows to keep, default all\)", text), text  # fmt: skip


def test_a_lost_training_process_is_said_as_such():
    from fgdm.cli import describe

    said = describe(RuntimeError("[third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:49335: "
                                 "Connection reset by peer. GLHF!"))  # fmt: skip
    assert said.startswith("another process of this training ended (killed?), so this one stops too; --resume")
    assert describe(RuntimeError("something else")) == "something else"
