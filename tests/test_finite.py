"""Training stops at the first non-finite loss; on a GPU the check is deferred (fgdm/training/finite.py), which a
CPU run forces here: the deferred check trains exactly as the immediate one, never applies a non-finite step, and
stops at the next check naming the step."""

from typing import ClassVar

import pytest
import torch

import fgdm.training.loop as loop
from fgdm.cli import main
from fgdm.model.fgdm import FGDM
from fgdm.training.finite import FiniteCheck

TINY = "configs/tiny.yaml"


class Recording(FiniteCheck):
    """The check, deferred or not, recording after every step its step count, whether it defers, one weight and
    Adam's step count."""

    seen: ClassVar[list] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        state = trainer.optimizers[0].state[next(module.model.denoiser.parameters())]
        weight = next(module.model.denoiser.parameters()).detach().clone()
        Recording.seen.append((trainer.global_step, self.active, weight, int(state["step"])))
        super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)


def _train(out, monkeypatch, defer: bool, nan_at: int | None = None, steps: int = 7, inf=False, val=1000) -> int:
    """``fgdm train`` of the tiny config for ``steps`` steps, the check deferred or not, the loss of step ``nan_at``
    (counted from 0) made NaN (``inf``: +inf, its gradients finite), validating every ``val`` steps; its exit
    status."""
    Recording.seen = []
    monkeypatch.setattr(loop, "FiniteCheck", lambda: Recording(defer=defer))
    calls, loss_of_draws = [], FGDM.loss_of_draws

    def poisoned(self, *args):
        terms = loss_of_draws(self, *args)
        calls.append(None)
        if len(calls) - 1 == nan_at and inf:
            terms.total = terms.total + float("inf")  # the gradients stay finite
        elif len(calls) - 1 == nan_at:
            terms.total = terms.total * float("nan")  # NaN gradients everywhere, as a real blow-up gives
        return terms

    monkeypatch.setattr(FGDM, "loss_of_draws", poisoned)
    args = ["train", TINY, "--set", f"training.output_dir={out}", "--set", f"training.max_steps={steps}",
            "--set", f"training.val_every={val}", "--set", "training.log_every=4", "--quiet"]  # fmt: skip
    return main(args)


def test_the_deferred_check_trains_exactly_as_the_immediate_one(tmp_path, monkeypatch):
    assert _train(tmp_path / "now", monkeypatch, defer=False) == 0
    now = Recording.seen
    assert _train(tmp_path / "later", monkeypatch, defer=True) == 0
    later = Recording.seen
    assert [s[1] for s in now] == [False] * 7 and [s[1] for s in later] == [True] * 7
    for a, b in zip(now, later, strict=True):
        assert a[0] == b[0] and a[3] == b[3] and torch.equal(a[2], b[2])
    a, b = (torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=False) for r in ("now", "later"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_the_deferred_check_skips_the_step_and_stops_at_the_next_check(tmp_path, monkeypatch, capsys):
    assert _train(tmp_path / "run", monkeypatch, defer=True, nan_at=1) == 1
    err = capsys.readouterr().err
    assert "fgdm: error: step 1: the training loss is nan; that step was not applied" in err
    assert "training stopped at step 4" in err
    steps = [s[0] for s in Recording.seen]
    assert steps == [1, 2, 3, 4]  # stopped at the check after step 4, not before
    weights = {s[0]: s[2] for s in Recording.seen}
    assert torch.equal(weights[2], weights[1])  # the NaN step changed nothing
    assert not torch.equal(weights[3], weights[2]) and all(torch.isfinite(w).all() for w in weights.values())
    assert [s[3] for s in Recording.seen] == [1, 1, 2, 3]  # Adam's step count skipped it too


def test_a_step_whose_loss_alone_is_not_finite_is_skipped_too(tmp_path, monkeypatch, capsys):
    assert _train(tmp_path / "run", monkeypatch, defer=True, nan_at=1, inf=True) == 1
    assert "step 1: the training loss is inf; that step was not applied" in capsys.readouterr().err
    weights = {s[0]: s[2] for s in Recording.seen}
    assert torch.equal(weights[2], weights[1]) and not torch.equal(weights[3], weights[2])


def test_the_deferred_check_runs_before_a_validation_and_its_checkpoints(tmp_path, monkeypatch, capsys):
    """A validation (and the checkpoints written after it) never follows an unchecked non-finite step."""
    assert _train(tmp_path / "run", monkeypatch, defer=True, nan_at=1, val=3) == 1
    assert "step 1: the training loss is nan; that step was not applied, and training stopped at step 3" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()


def test_the_immediate_check_stops_before_the_step(tmp_path, monkeypatch, capsys):
    assert _train(tmp_path / "run", monkeypatch, defer=False, nan_at=1) == 1
    err = capsys.readouterr().err
    assert "fgdm: error: step 1: the training loss is nan; training stopped there" in err
    assert [s[0] for s in Recording.seen] == [1]


@pytest.mark.parametrize("defer, active", [(None, False), (True, True), (False, False)])
def test_a_cpu_run_defers_only_when_asked(tmp_path, monkeypatch, defer, active):
    monkeypatch.setattr(loop, "FiniteCheck", lambda: Recording(defer=defer))
    Recording.seen = []
    args = ["train", TINY, "--set", f"training.output_dir={tmp_path}", "--set", "training.max_steps=1", "--quiet"]
    assert main(args) == 0 and [s[1] for s in Recording.seen] == [active]


def test_a_non_finite_step_after_the_last_check_stops_the_run_at_its_end(tmp_path, monkeypatch, capsys):
    assert _train(tmp_path / "run", monkeypatch, defer=True, nan_at=5) == 1
    assert "step 5: the training loss is nan; that step was not applied, and training stopped at step 7" in (
        capsys.readouterr().err
    )


RANKS_SCRIPT = """
import os, sys
import fgdm.training.loop as loop
from fgdm.cli import main
from fgdm.model.fgdm import FGDM
from fgdm.training.finite import FiniteCheck

loop.FiniteCheck = lambda: FiniteCheck(defer=True)
calls, loss_of_draws = [], FGDM.loss_of_draws

def poisoned(self, *args):
    terms = loss_of_draws(self, *args)
    calls.append(None)
    if len(calls) == 2 and os.environ.get("LOCAL_RANK") == "1":
        terms.total = terms.total * float("nan")
    return terms

FGDM.loss_of_draws = poisoned
sys.exit(main(sys.argv[1:]))
"""


def test_two_processes_skip_the_same_step_and_stop_together(tmp_path):
    """A NaN loss in the second process only: the averaged gradients are NaN in both, so both skip that step, and
    both stop at the same check (none waits for the other forever)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "poisoned.py"
    script.write_text(RANKS_SCRIPT)
    out = tmp_path / "run"
    cmd = [sys.executable, str(script), "train", TINY, "--quiet", "--set", f"training.output_dir={out}",
           "--set", "training.max_steps=12", "--set", "training.val_every=1000", "--set", "training.log_every=4",
           "--set", "training.devices=2", "--set", "training.strategy=ddp",
           "--set", "training.accelerator=cpu"]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "fgdm: error: step 1: the training loss or the gradients were not finite, in this process" in done.stderr
    assert "that step was not applied, and training stopped at step 4" in done.stderr
