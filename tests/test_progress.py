"""The training progress bar: one bar over the run's steps, on stderr."""

import re

from fgdm.config import load_config
from fgdm.training import train

TINY = "configs/tiny.yaml"


def _bar_states(err: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", err) if line.startswith("train:")]


def test_the_bar_counts_the_runs_steps_across_epochs_and_a_resumed_run_goes_on_from_its_step(tmp_path, capsys):
    """tiny.yaml's epochs are 4 batches: Lightning's bar started again at each ("Epoch 2: 4/4"); this one goes once
    to max_steps, from the step a resumed run starts at; stdout (the command's JSON) gets no bar."""
    cfg = load_config(TINY, [f"training.output_dir={tmp_path}", "training.max_steps=10", "training.val_every=5"])
    train(cfg, progress=True)
    captured = capsys.readouterr()
    states = _bar_states(captured.err)
    assert states and "0/10" in states[0] and "10/10" in states[-1], states[:3] + states[-3:]
    assert "Epoch" not in captured.err and "v_num" not in captured.err and "DataLoader 0" not in captured.err
    assert "train:" not in captured.out and "validate" not in captured.out
    counts = [int(m.group(1)) for s in states if (m := re.search(r"\| *(\d+)/10 ", s))]
    assert counts == sorted(counts) and set(range(11)) <= set(counts)  # never starts again at an epoch

    cfg = load_config(TINY, [f"training.output_dir={tmp_path}", "training.max_steps=14", "training.val_every=5"])
    train(cfg, resume=True, progress=True)
    states = _bar_states(capsys.readouterr().err)
    assert "10/14" in states[0] and "14/14" in states[-1], states[:3] + states[-3:]


def test_no_bar_when_asked_for_none(tmp_path, capsys):
    cfg = load_config(TINY, [f"training.output_dir={tmp_path}", "training.max_steps=3", "training.val_every=2"])
    train(cfg, progress=False)
    captured = capsys.readouterr()
    assert not _bar_states(captured.err) and "validate" not in captured.err


def test_the_training_bar_shows_four_significant_digits_not_three_padded(monkeypatch):
    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

    from fgdm.training.progress import StepBar

    monkeypatch.setattr(TQDMProgressBar, "get_metrics", lambda *_: {"dev/dtw": 23.958, "dev/wer": 96.15, "v_num": 0})
    shown = StepBar().get_metrics(None, None)
    assert {k: Tqdm.format_num(v) for k, v in shown.items()} == {"dev/dtw": "23.96", "dev/wer": "96.15"}
