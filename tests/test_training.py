"""Training, checkpoints and generation through the command line, on the tiny config."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from fgdm.cli import main
from fgdm.evaluation.html import run_logs
from fgdm.training import AtomicCheckpointIO

TINY = "configs/tiny.yaml"


def _resume(run: Path, steps: int, *more: str) -> list[str]:
    """``fgdm train`` of the tiny config continuing the run in ``run`` to ``steps``."""
    return ["train", TINY, "--set", f"training.output_dir={run}", "--set", f"training.max_steps={steps}", "--resume",
            *more]  # fmt: skip


def test_a_tiny_run_writes_checkpoints_and_a_metrics_csv(trained, capsys):
    assert (trained / "checkpoints" / "last.ckpt").is_file() and (trained / "checkpoints" / "best.ckpt").is_file()
    rows = list(csv.DictReader((trained / "logs" / "version_0" / "metrics.csv").open()))
    assert any(r.get("train/loss") for r in rows) and any(r.get("dev/dtw") for r in rows)
    assert all(float(r["lr"]) > 0 for r in rows if r.get("train/loss"))  # each training row: the schedule's rate
    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 20 and ckpt["hyper_parameters"]["config"]["model"]["width"] == 32
    assert ckpt["hyper_parameters"]["vocab"][:4] == ["<unk>", "<pad>", "<s>", "</s>"]
    from fgdm.config import load_config
    from fgdm.data.sources import build_corpus

    longest = build_corpus(load_config([TINY], []).data, "train").frame_counts().max()  # sampling warns beyond it
    assert int(ckpt["state_dict"]["model.normalizer.longest"]) == longest > 0
    # no giant buffers: the file is about parameters + Adam's two moments (+ the EMA copy if any)
    params = sum(v.numel() for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    size = (trained / "checkpoints" / "last.ckpt").stat().st_size
    assert size < 4 * params * 4 + 200_000


def test_resume_continues_the_step_count(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    capsys.readouterr()
    args = _resume(run, 25, "--set", "model.focal.kernel=torch", "--set", "testing.length=predicted")  # how it runs
    start = time.perf_counter()
    assert main([*args, "--quiet"]) == 0
    wall = time.perf_counter() - start
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 25
    assert result["steps_per_second"] >= 5 / wall  # the 5 steps of this run, over part of its wall-clock time
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 25 and "plateau" in ckpt and ckpt["optimizer_states"]
    # no validation between steps 20 and 25: the dev score is the last one before the resume (step 20's, not null,
    # and not the best, step 10's, where that was better)
    rows = list(csv.DictReader((run / "logs" / "version_0" / "metrics.csv").open()))
    scores = [float(r["dev/dtw"]) for r in rows if r.get("dev/dtw")]
    assert result["dev_dtw"] == pytest.approx(scores[-1]) and result["best_dev_dtw"] == pytest.approx(min(scores))
    assert [p.parent.name for p in run_logs(run / "checkpoints" / "last.ckpt")] == ["version_0", "version_1"]


def test_the_fit_loop_rate_counts_this_runs_steps_over_its_wall_clock():
    """steps_per_second: the steps this process ran (not those of the run it resumed) over the fit loop's time."""
    from types import SimpleNamespace

    from fgdm.training.throughput import Throughput

    meter, trainer, module = (
        Throughput(),
        SimpleNamespace(global_step=20, world_size=1),
        SimpleNamespace(device=torch.device("cpu")),
    )
    meter.on_train_start(trainer, module)
    time.sleep(0.05)
    trainer.global_step = 25
    meter.on_train_end(trainer, module)
    assert meter.fit_steps == 5 and 0.05 <= meter.fit_seconds < 5


def test_the_median_rate_leaves_out_slow_steps_wherever_they_fall():
    """median_steps_per_second: the typical step, here 4 quick ones beside a slow first and a slow fourth step (a
    compilation each), which the late rate over the last half of the steps still counts."""
    from types import SimpleNamespace

    from fgdm.training.throughput import Throughput

    meter, trainer, module = (
        Throughput(),
        SimpleNamespace(global_step=0, world_size=1),
        SimpleNamespace(device=torch.device("cpu")),
    )
    meter.on_train_start(trainer, module)
    for pause in (0.3, 0.01, 0.01, 0.3, 0.01, 0.01):
        meter.on_train_batch_start(trainer, module, [0], 0)
        time.sleep(pause)
        meter.on_train_batch_end(trainer, module, None, [0], 0)
        trainer.global_step += 1
    meter.on_train_end(trainer, module)
    assert 0.01 <= meter.median_step_seconds < 0.1
    assert meter.late_seconds >= 0.32  # the last three steps, the slow fourth among them


def test_the_late_rate_counts_the_last_half_of_the_steps_from_the_end_of_the_first_half():
    """late_steps_per_second leaves out a slow start (warm-up, compilation): 4 steps, the first one slow."""
    from types import SimpleNamespace

    from fgdm.training.throughput import Throughput

    meter, trainer, module = (
        Throughput(),
        SimpleNamespace(global_step=0, world_size=1),
        SimpleNamespace(device=torch.device("cpu")),
    )
    batch = [0, 0]
    meter.on_train_start(trainer, module)
    for pause in (0.3, 0.01, 0.01, 0.01):
        meter.on_train_batch_start(trainer, module, batch, 0)
        time.sleep(pause)
        meter.on_train_batch_end(trainer, module, None, batch, 0)
        trainer.global_step += 1
    meter.on_train_end(trainer, module)
    assert meter.fit_steps == 4 and meter.fit_seconds >= 0.33
    assert meter.late_steps == 2 and 0.02 <= meter.late_seconds < 0.2  # steps 3 and 4, not the slow first one
    assert meter.sequences == 8


def test_the_result_names_both_checkpoints_as_the_output_directory_was_given(tmp_path, monkeypatch, capsys):
    config = str(Path(TINY).resolve())
    monkeypatch.chdir(tmp_path)
    assert main(["train", config, "--quiet", "--set", "training.output_dir=run", "--set", "training.max_steps=2",
                 "--set", "training.val_every=1"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["last_checkpoint"] == str(Path("run/checkpoints/last.ckpt"))
    assert result["best_checkpoint"] == str(Path("run/checkpoints/best.ckpt"))
    assert Path(result["best_checkpoint"]).is_file()


def test_a_time_budget_stops_training_with_its_checkpoint_and_result(tmp_path, capsys):
    """training.max_minutes: the run stops by the clock, saves its last state and still prints its result; a
    resumed run's budget counts the minutes before it."""
    from fgdm.config import ConfigError, load_config

    base = ["train", TINY, "--quiet", "--set", f"training.output_dir={tmp_path}", "--set", "training.max_steps=100000",
            "--set", "training.val_every=100000"]  # fmt: skip
    assert main([*base, "--set", "training.max_minutes=0.02"]) == 0
    out, err = capsys.readouterr()
    first = json.loads(out)["steps"]
    assert 0 < first < 100000 and f"training.max_minutes = 0.02 reached at step {first} of 100000" in err
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == first
    spent = ckpt["callbacks"]["Timer"]["time_elapsed"]["train"]  # 1.2 s and the last step's overshoot (load)
    budget = (spent + 1.2) / 60  # 1.2 s more
    assert main([*base, "--set", f"training.max_minutes={budget}", "--resume"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert first < result["steps"] < 100000
    seconds = (result["steps"] - first) / result["steps_per_second"]  # this run's fit loop
    step = 1 / result["steps_per_second"]  # the last step's overshoot: seconds on a loaded machine
    assert seconds < spent + 0.6 + step  # about 1.2 s, not the whole budget again (1.2 s + spent)
    with pytest.raises(ConfigError, match="max_minutes"):
        load_config([TINY], ["training.max_minutes=0"])


@pytest.mark.parametrize("progress", [False, True])
def test_the_training_loss_goes_to_the_progress_bar_only_when_there_is_one(progress, tmp_path, capsys):
    """Lightning reads progress-bar values back to the host after every step, bar or no bar (on a GPU, a wait)."""
    from lightning.pytorch.callbacks import Callback

    from fgdm.config import load_config
    from fgdm.training import train

    class Seen(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.metrics = dict(trainer.progress_bar_metrics)

    seen = Seen()
    cfg = load_config(TINY, [f"training.output_dir={tmp_path}", "training.max_steps=2", "training.val_every=1000"])
    train(cfg, progress=progress, callbacks=[seen])
    assert ("loss" in seen.metrics) is progress


@pytest.mark.parametrize("every", [True, False])
def test_the_bar_shows_each_steps_loss_on_a_cpu_and_the_last_written_one_on_a_gpu(every, tmp_path, monkeypatch):
    """A GPU's bar is fed the total of the last step the loggers wrote (every log_every, here 5), copied to the host
    then, not each step's (a read back, and so a wait, every step); a CPU's reads cost nothing: each step's."""
    from lightning.pytorch.callbacks import Callback

    from fgdm.config import load_config
    from fgdm.training import LitFGDM, train

    losses, shown = [], []
    log_terms = LitFGDM.log_training_terms

    def spy(self, batch_size, **terms):
        losses.append(float(terms["loss"]))
        log_terms(self, batch_size, **terms)

    class Shown(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            shown.append(trainer.progress_bar_metrics["loss"])

    monkeypatch.setattr(LitFGDM, "log_training_terms", spy)
    monkeypatch.setattr(LitFGDM, "bar_every_step", every)
    cfg = load_config(TINY, [f"training.output_dir={tmp_path}", "training.max_steps=12", "training.val_every=1000",
                             "training.log_every=5"])  # fmt: skip
    train(cfg, progress=True, callbacks=[Shown()])
    written = [losses[0]] * 5 + [losses[4]] * 5 + [losses[9]] * 2  # steps 5 and 10 written (from 1)
    assert shown == pytest.approx(losses if every else written) and losses[0] != losses[4] != losses[9]


def test_training_terms_are_logged_only_on_the_steps_the_loggers_write(tmp_path, monkeypatch):
    """The loss terms go through self.log only on the steps Lightning writes (every log_every, and at a stop):
    metrics.csv is the same as when they are logged after every step (here 2 calls per term instead of 5)."""
    from lightning.pytorch.callbacks import Callback

    from fgdm.config import load_config
    from fgdm.training import loop, train
    from fgdm.training.generator import LitFGDM

    class StopAt(Callback):  # as training.max_minutes' timer does: a stop between two logging steps
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            trainer.should_stop = trainer.global_step == 5

    calls = []
    log = LitFGDM.log
    monkeypatch.setattr(LitFGDM, "log", lambda self, name, *a, **k: (calls.append(name), log(self, name, *a, **k)))

    def rows(name: str) -> list[dict]:
        calls.clear()
        cfg = load_config(TINY, [f"training.output_dir={tmp_path / name}", "training.max_steps=20",
                                 "training.log_every=3", "training.val_every=1000"])  # fmt: skip
        train(cfg, progress=False, callbacks=[StopAt()])
        lines = csv.DictReader((tmp_path / name / "logs" / "version_0" / "metrics.csv").open())
        return [{k: v for k, v in r.items() if k.startswith("train/") or k == "step"} for r in lines]

    gated, gated_calls = rows("gated"), sum(c.startswith("train/") for c in calls)
    monkeypatch.setattr(loop, "_loggers_write_this_step", lambda trainer: True)  # every step, as before
    every_step, every_step_calls = rows("every_step"), sum(c.startswith("train/") for c in calls)
    written = [r["step"] for r in gated if r.get("train/joint")]
    assert written == ["2", "4"]  # steps 3 and 5 (from 1), the second at the stop
    assert gated == every_step
    assert (gated_calls, every_step_calls) == (2 * 5, 5 * 5)


def test_a_logging_interval_longer_than_an_epoch_loses_no_logs(tmp_path):
    """Lightning counts the logging steps over the whole run: tiny.yaml's epochs of 4 batches, logged every 6 steps,
    write at steps 6 and 12 (its warning that the interval is longer than an epoch is left out as misleading)."""
    from fgdm.config import load_config
    from fgdm.training import train

    cfg = load_config(TINY, [f"training.output_dir={tmp_path}", "training.max_steps=13", "training.log_every=6",
                             "training.val_every=1000"])  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg, progress=False)
    lines = [r for r in csv.DictReader((tmp_path / "logs" / "version_0" / "metrics.csv").open()) if r["train/joint"]]
    assert [(r["step"], r["epoch"]) for r in lines] == [("5", "1"), ("11", "2")]  # steps 6 and 12 (from 1), epochs 2, 3
    assert not any("logging interval" in str(w.message) for w in caught)
    short = load_config(TINY, [f"training.output_dir={tmp_path / 'short'}", "training.max_steps=5",
                               "training.log_every=6", "training.val_every=1000"])  # fmt: skip
    with pytest.warns(UserWarning, match=r"training.log_every 6 > training.max_steps 5: the CSV log gets no training"):
        train(short, progress=False)
    assert not (tmp_path / "short" / "logs" / "version_0" / "metrics.csv").exists()  # not a row


def test_a_run_that_fails_on_its_data_leaves_no_empty_directories(tmp_path, capsys):
    """The directories training.output_dir needed are made for the run and removed again when it fails before
    writing anything (here: no data); a directory that was there already stays."""
    args = ["train", TINY, "--set", f"data.path={tmp_path / 'nowhere'}", "--quiet", "--set"]
    assert main([*args, f"training.output_dir={tmp_path / 'runs' / 'a'}"]) == 1
    assert "nowhere: data directory not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()
    assert main([*args, f"training.output_dir={tmp_path / 'mine'}"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    from fgdm.training.rundir import lock

    gone = lock(tmp_path / "gone")  # removed between claim's mkdir and the lock, by a run that failed
    with pytest.raises(ValueError, match="another training removed this new directory just now; run again"), gone:
        pass
    if torch.cuda.is_available():  # what follows fails for want of a GPU
        return
    # a failure after the run's files were begun (no GPU for accelerator gpu): those go too, the rest stays
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    gpu = ["train", TINY, "--quiet", "--set", "training.accelerator=gpu", "--set"]
    assert main([*gpu, f"training.output_dir={tmp_path / 'mine'}"]) == 1
    assert "training.accelerator" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert main([*gpu, f"training.output_dir={tmp_path / 'runs' / 'b'}"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_training_seed_alone_sets_the_initial_weights(tmp_path, capsys):
    def weights(name: str, seed: int) -> dict:
        out = tmp_path / name
        args = ["train", TINY, "--set", f"training.output_dir={out}", "--set", f"training.seed={seed}",
                "--set", "training.max_steps=1", "--set", "training.val_every=1000", "--quiet"]  # fmt: skip
        assert main(args) == 0
        ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        return {k: v for k, v in ckpt["state_dict"].items() if v.is_floating_point()}

    a = weights("a", 5)
    torch.rand(1000)  # whatever ran before in the process must not matter
    b, c = weights("b", 5), weights("c", 6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.denoiser.output.proj.weight"], c["model.denoiser.output.proj.weight"])


def test_resume_without_a_checkpoint_fails_clearly(tmp_path, capsys):
    assert main(["train", TINY, "--set", f"training.output_dir={tmp_path}", "--resume", "--quiet"]) == 1
    assert "nothing to resume" in capsys.readouterr().err


def test_generate_renders_animations_and_generated_vs_true_sheets(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    out = tmp_path / "gen"
    assert main(["generate", "--checkpoint", ckpt, "--split", "test", "--limit", "2", "--render", "1",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert [Path(p).name for p in said["rendered"]] == ["test_0000.gif", "test_0000.png"]
    assert {k: said[k] for k in ("checkpoint", "step", "seed", "steps", "length", "precision")} == {
        "checkpoint": ckpt, "step": 20, "seed": 0, "steps": 5, "length": "gt", "precision": "32"}  # fmt: skip
    from PIL import Image

    sheet = Image.open(out / "test_0000.png")
    assert sheet.size == (6 * 200, 4 * 200 + 18)  # generated, true, and their hand close-ups; a title
    (out / "notes.txt").write_text("mine")
    assert main(["generate", "--checkpoint", ckpt, "--split", "test", "--limit", "2", "--out", str(out),
                 "--overwrite", "--quiet"]) == 0  # fmt: skip
    assert not (out / "test_0000.gif").exists() and not (out / "test_0000.png").exists()  # the replaced run's
    assert (out / "notes.txt").read_text() == "mine" and (out / "test.skels").is_file()


def test_generation_is_finite_seeded_and_exports_pose(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    common = ["generate", "--checkpoint", ckpt, "--split", "test", "--limit", "3", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "a"), "--seed", "1"]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--seed", "1"]) == 0
    assert main([*common, "--out", str(tmp_path / "c"), "--seed", "2"]) == 0
    a, b, c = ((tmp_path / d / "test.skels").read_bytes() for d in "abc")
    assert a == b and a != c
    from fgdm.data.pt import read_split

    gen = read_split(tmp_path / "a", "test")
    assert len(gen) == 3 and all(p.shape[1:] == (50, 3) and np.isfinite(p).all() for p in gen.poses)

    from pose_format import Pose

    out = tmp_path / "one.pose"
    assert main(["generate", "--checkpoint", ckpt, "--gloss", "REGEN NORD", "--length", "17", "--out", str(out)]) == 0
    pose = Pose.read(out.read_bytes())
    # sampled at the model's frame rate: 25 fps with every third frame kept (configs/tiny.yaml)
    assert pose.body.data.shape == (17, 1, 576, 3) and pose.body.fps == pytest.approx(25 / 3)  # Holistic points
    assert main(["generate", "--checkpoint", ckpt, "--gloss", "REGEN", "--length", "predicted",
                 "--out", str(tmp_path / "p.npy")]) == 0  # fmt: skip
    assert np.load(tmp_path / "p.npy").shape[1:] == (50, 3)
    said = capsys.readouterr().out  # a .npy holds no frame rate: the rate to render it at is said
    assert "frames at 8.33333 fps; a .npy holds no rate: fgdm render --fps 8.33333)" in said


def test_unknown_glosses_are_named_in_a_warning(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    with pytest.warns(UserWarning, match="NICHTDA"):
        main(["generate", "--checkpoint", ckpt, "--gloss", "REGEN NICHTDA", "--length", "5",
              "--out", str(tmp_path / "x.npy")])  # fmt: skip


def test_checkpoints_are_written_atomically(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("crash while saving")

    with pytest.raises(RuntimeError, match="crash while saving"):
        io.save_checkpoint({"step": 2, "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=False) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_two_process_ddp_on_cpu_completes(tmp_path):
    cmd = [
        sys.executable, "-m", "fgdm.cli", "train", TINY, "--quiet",
        "--set", f"training.output_dir={tmp_path}", "--set", "training.devices=2",
        "--set", "training.strategy=ddp", "--set", "training.accelerator=cpu",
        "--set", "training.max_steps=4", "--set", "training.val_every=2",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["steps"] == 4 and done.stdout.count('"steps"') == 1  # one summary, from rank 0
    assert 4 * 8 < summary["train_sequences"] <= 2 * 4 * 8  # both processes' batches (of at most 8), not rank 0's
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def _rates(monkeypatch, overrides: list[str], steps: int):
    """The learning rate LitFGDM's optimizer steps 0 … steps−1 run at (a stand-in trainer gives the step);
    and the module, for its scheduler."""
    import types

    from fgdm.config import load_config, to_dict
    from fgdm.training import LitFGDM

    module = LitFGDM(to_dict(load_config([TINY], overrides)), ["<unk>", "<pad>", "<s>", "</s>", "A"])
    opt = module.configure_optimizers()
    fake = types.SimpleNamespace(global_step=0)
    monkeypatch.setattr(type(module), "trainer", property(lambda self: fake))
    seen = []
    for step in range(steps):
        fake.global_step = step
        module.optimizer_step(0, step, opt, lambda: None)
        seen.append(opt.param_groups[0]["lr"])
    return seen, module


def test_the_learning_rate_warms_up_linearly_then_stays(monkeypatch):
    seen, _ = _rates(monkeypatch, ["training.warmup_steps=4", "training.lr=0.01"], 6)
    assert seen == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_the_cosine_schedule_warms_up_then_decays_to_min_lr_at_max_steps(monkeypatch):
    import itertools
    import math

    from fgdm.config import ConfigError, load_config

    over = ["training.schedule=cosine", "training.warmup_steps=2", "training.lr=0.01", "training.min_lr=0.001",
            "training.max_steps=12"]  # fmt: skip
    seen, module = _rates(monkeypatch, over, 14)
    assert module.plateau is None  # nothing but the step sets the rate, so a resumed run continues the curve
    cosine = [0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * k / 10)) for k in range(10)]
    assert seen == pytest.approx([0.005, 0.01, *cosine, 0.001, 0.001])
    assert all(a > b for a, b in itertools.pairwise(seen[2:12]))  # strictly falling after the warm-up
    with pytest.raises(ConfigError, match="min_lr"):
        load_config([TINY], ["training.schedule=cosine", "training.lr=0.001", "training.min_lr=0.01"])


def test_gradients_are_freed_right_after_the_optimizer_step():
    """They would otherwise sit through the next forward pass and add their size to its peak memory."""
    from fgdm.config import load_config, to_dict
    from fgdm.training import LitFGDM

    cfg = load_config([TINY], [])
    module = LitFGDM(to_dict(cfg), ["<unk>", "<pad>", "<s>", "</s>", "A", "B", "C"])
    opt = module.configure_optimizers()
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(2, 6, 50, 3, generator=g) * 0.2
    fm, gm = torch.ones(2, 6, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool)
    gloss = torch.randint(4, 7, (2, 3), generator=g)
    before = [p.detach().clone() for p in module.parameters()]

    def closure():
        loss = module.model.loss(pose, fm, gloss, gm).total
        loss.backward()
        return loss

    module.optimizer_step(0, 0, opt, closure)
    assert all(p.grad is None for p in module.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, module.parameters(), strict=True))


def test_weight_decay_shrinks_weight_matrices_and_embeddings_but_not_biases_or_norms():
    """training.weight_decay: AdamW's decoupled decay, w ← w·(1 − lr·λ) where the gradient is zero, on
    parameters of two or more dimensions only; 0 keeps plain Adam."""
    from fgdm.config import load_config
    from fgdm.training.optim import optimizer

    net = torch.nn.ModuleDict(
        {"emb": torch.nn.Embedding(5, 4), "lin": torch.nn.Linear(4, 3), "norm": torch.nn.LayerNorm(3)}
    )
    with torch.no_grad():
        net["norm"].weight.fill_(1.5)
        net["lin"].bias.fill_(0.7)
    assert type(optimizer(net, load_config([TINY], []).training)) is torch.optim.Adam
    cfg = load_config([TINY], ["training.weight_decay=0.5", "training.lr=0.1"]).training
    opt = optimizer(net, cfg)
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    after = dict(net.named_parameters())
    for name in ("emb.weight", "lin.weight"):
        torch.testing.assert_close(after[name].detach(), before[name] * (1 - 0.1 * 0.5))
    for name in ("lin.bias", "norm.weight", "norm.bias"):
        assert torch.equal(after[name].detach(), before[name])


def test_the_optimizer_runs_pytorchs_fused_kernel_with_the_plain_update():
    """Adam (and AdamW) run fused on the CPU: the same updates as the per-parameter loop, up to rounding."""
    import copy

    from fgdm.config import load_config
    from fgdm.training.optim import optimizer

    for decay in (0.0, 0.5):
        cfg = load_config([TINY], [f"training.weight_decay={decay}", "training.lr=0.01"]).training
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5))
        start, twin = copy.deepcopy(net), copy.deepcopy(net)
        fused, plain = optimizer(net, cfg), optimizer(twin, cfg)
        assert all(group["fused"] for group in fused.param_groups)
        for group in plain.param_groups:  # the same optimizer and groups, stepped parameter by parameter
            group["fused"], group["foreach"] = False, False
        x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
        for _ in range(5):
            for module, opt in ((net, fused), (twin, plain)):
                opt.zero_grad()
                module(x).pow(3).mean().backward()
                opt.step()
        for a, b, c in zip(net.parameters(), twin.parameters(), start.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
            assert not torch.equal(a, c)


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_lower_precision_training_runs_with_gradient_clipping(precision, tmp_path, capsys, monkeypatch):
    """The fused Adam clips its gradients under both: under bf16-mixed fgdm clips them itself (Lightning refuses
    any mixed precision with a fused optimizer, for float16's gradient scaler). bf16-true: every part takes the
    weights' dtype (the timestep features were float32)."""
    from fgdm.config import load_config
    from fgdm.training.optim import optimizer

    cfg = load_config([TINY], [f"training.precision={precision}"]).training
    assert cfg.clip_grad_norm > 0 and optimizer(torch.nn.Linear(2, 2), cfg).param_groups[0]["fused"] is True
    clipped, clip = [], torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: clipped.append(a[1]) or clip(*a, **k))
    args = ["train", TINY, "--set", f"training.output_dir={tmp_path / 'run'}", "--set",
            f"training.precision={precision}", "--set", "training.max_steps=2", "--set", "training.val_every=2",
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 2 and result["dev_dtw"] is not None and np.isfinite(result["dev_dtw"])
    assert clipped == [cfg.clip_grad_norm] * 2  # once a step


def test_a_sampling_copy_leaves_the_training_random_stream_alone():
    """Evaluating mid-run (learning curves) must not change the noise the rest of the run draws."""
    from fgdm.config import load_config, to_dict
    from fgdm.training import LitFGDM

    module = LitFGDM(to_dict(load_config([TINY], [])), ["<unk>", "<pad>", "<s>", "</s>", "A"])
    torch.manual_seed(3)
    module.sampling_model()
    after = torch.rand(4)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(4))
    copy = module.sampling_model()
    for a, b in zip(
        copy.model.denoiser.state_dict().values(), module.sampling_denoiser().state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_an_export_as_the_embedded_language_checks_that_the_written_data_was_it(trained, synth_dir, tmp_path):
    """Data written by fgdm synth is recorded as the embedded language only where it is the language the config
    names (its seed and sizes, which the card states and generate --split takes): not seed 3's 24 sentences."""
    import dataclasses

    from fgdm.data.sources import make_synth
    from fgdm.sampling import export, load_for_sampling

    loaded = load_for_sampling(trained / "checkpoints" / "last.ckpt")  # tiny.yaml: seed 0, 32/8/8 sentences

    def trained_on(path):
        return dataclasses.replace(loaded, cfg=dataclasses.replace(loaded.cfg, data=dataclasses.replace(
            loaded.cfg.data, path=str(path))))  # fmt: skip

    with pytest.raises(ValueError, match=r"data: embedded, but .*'s train split \(24 sentences\) is not the embedded "
                       r"language's of the run's config \(seed 0, 32 train sentences"):  # fmt: skip
        export(trained_on(synth_dir), tmp_path / "a", data=None)
    make_synth(tmp_path / "lazy", 1, {"train": 32, "dev": 8, "test": 8}, lazy=True)  # another seed's language
    with pytest.raises(ValueError, match=r"lazy's train split \(32 sentences\) is not"):
        export(trained_on(tmp_path / "lazy"), tmp_path / "a", data=None)
    assert not (tmp_path / "a").exists()
    make_synth(tmp_path / "same", 0, {"train": 32, "dev": 8, "test": 8})
    export(trained_on(tmp_path / "same"), tmp_path / "b", data=None)
    assert load_for_sampling(tmp_path / "b").cfg.data.path is None
    with pytest.warns(UserWarning, match=r"gone, the run's data, is gone: that it was the embedded language of seed 0"):
        export(trained_on(tmp_path / "gone"), tmp_path / "c", data=None)


def test_loading_a_checkpoint_for_sampling_leaves_the_random_stream_alone(trained):
    """A run that loads a checkpoint mid-way (a learning curve, a notebook) draws the same noise after it."""
    from fgdm.sampling import load_for_sampling

    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    load_for_sampling(trained / "checkpoints" / "last.ckpt")
    assert torch.equal(torch.rand(4), expected)


def test_export_writes_inference_weights_that_sample_exactly_as_the_checkpoint(trained, tmp_path, capsys):
    from fgdm.sampling import generate_poses, load_for_sampling

    ckpt = trained / "checkpoints" / "last.ckpt"
    out = tmp_path / "exported"
    assert main(["export", str(ckpt), "--out", str(out), "--data", "embedded", "--name", "tiny"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "vocab.txt"]
    assert summary["megabytes"] < ckpt.stat().st_size / 2**20 / 2  # no optimiser state, no SCG branch
    assert (
        "# tiny" in (out / "README.md").read_text()
        and "embedded synthetic sign language" in (out / "README.md").read_text()
    )
    a, b = load_for_sampling(ckpt), load_for_sampling(out)
    assert b.cfg.data.path is None and b.step == a.step and b.vocab == a.vocab
    ids = a.vocab.encode_all([["REGEN", "NORD"], ["MORGEN"]])
    for x, y in zip(generate_poses(a, ids, [9, 7], seed=4), generate_poses(b, ids, [9, 7], seed=4), strict=True):
        np.testing.assert_array_equal(x, y)
    assert main(["generate", "--checkpoint", str(out / "model.safetensors"), "--gloss", "REGEN", "--length", "5",
                 "--out", str(tmp_path / "r.npy")]) == 0  # fmt: skip
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert len(set(modes.values())) == 1, modes  # the weights as readable as the rest
    with pytest.raises(ValueError, match=r"raw weights \(use_ema=False, --no-ema\) come from the training checkpoint"):
        load_for_sampling(out, use_ema=False)  # not silently the EMA weights
    with pytest.raises(ValueError, match="2 frame counts for 1 gloss sequences"):
        generate_poses(b, ids[:1], [9, 7])
    with pytest.raises(ValueError, match="gloss sequence 1 is empty"):
        generate_poses(b, [ids[0], []], [9, 7])


def test_export_checks_its_report_before_writing_anything(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    for text, says in (("[1]", "TypeError"), ('{"rows": 3}', "TypeError"), ("{", "JSONDecodeError")):
        (tmp_path / "r.json").write_text(text)
        assert main(["export", ckpt, "--out", str(tmp_path / "e"), "--report", str(tmp_path / "r.json")]) == 1
        err = capsys.readouterr().err
        assert f"r.json: not an fgdm evaluate report.json ({says}" in err, err
        assert not (tmp_path / "e").exists()
    row = {"system": "FGDM", "bleu1": 1.0, "bleu4": 1.0, "rouge_l": 1.0, "wer": 90.0, "fid": 1.0, "diversity": 1.0,
           "dtw_mje": {"all": 1.0, "body": 1.0, "hands": 1.0}}  # fmt: skip
    report = {"sequences": 8, "rows": [row], "meta": {"checkpoint": str(tmp_path / "other.ckpt")}}
    (tmp_path / "r.json").write_text(json.dumps(report))
    with pytest.warns(UserWarning, match="other.ckpt, not .*last.ckpt: its table describes that one"):
        assert main(["export", ckpt, "--out", str(tmp_path / "e"), "--report", str(tmp_path / "r.json")]) == 0
    from fgdm.sampling import load_for_sampling

    step = load_for_sampling(ckpt).step
    for meta, row_name in (({"step": step + 100}, "FGDM"), ({}, f"FGDM (last.ckpt, step {step + 100})")):
        # the same file, scored before its training went on: by the report's meta, or (older reports) its row
        report = {"sequences": 8, "rows": [row | {"system": row_name}], "meta": {"checkpoint": ckpt, **meta}}
        (tmp_path / "r.json").write_text(json.dumps(report))
        assert main(["export", ckpt, "--out", str(tmp_path / "g"), "--report", str(tmp_path / "r.json"),
                     "--overwrite"]) == 1  # fmt: skip
        said = capsys.readouterr().err
        assert f"scored last.ckpt at step {step + 100}, and {ckpt} is at step {step}: its table describes other" in said
        assert not (tmp_path / "g").exists()
    (tmp_path / "r.json").write_text(json.dumps(report | {"meta": {"checkpoint": str(tmp_path / "other.ckpt")}}))
    assert main(["export", ckpt, "--out", str(tmp_path / "g"), "--report", str(tmp_path / "r.json")]) == 1
    assert "scored other.ckpt at step" in capsys.readouterr().err  # another file at another step: refused too
    report["rows"][0]["system"] = f"FGDM (last.ckpt, step {step})"
    (tmp_path / "r.json").write_text(json.dumps(report))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["export", ckpt, "--out", str(tmp_path / "g"), "--report", str(tmp_path / "r.json"),
                     "--overwrite"]) == 0  # fmt: skip
    assert main(["export", ckpt, "--out", str(tmp_path / "f"), "--data", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: data directory not found" in capsys.readouterr().err


def test_export_replaces_an_export_whole_and_never_a_run(trained, synth_dir, tmp_path, capsys, monkeypatch):
    """--overwrite replaces the files together (an interruption left one export's weights beside another's
    config); a run's directory is refused; the data path is recorded absolute."""
    import fgdm.sampling as sampling
    from fgdm.sampling import load_for_sampling

    ckpt = str(trained / "checkpoints" / "last.ckpt")
    out = tmp_path / "e"
    monkeypatch.chdir(tmp_path)
    shutil.copytree(synth_dir, tmp_path / "data")  # the embedded language's glosses (another seed's signs)
    assert main(["export", ckpt, "--out", str(out), "--data", "data"]) == 0
    assert load_for_sampling(out).cfg.data.path == str(tmp_path / "data")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(cfg):  # the model card fails: the export there stays as it was, no temporary left
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        sampling.export(load_for_sampling(ckpt), out, card=broken)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "e"]
    capsys.readouterr()
    assert main(["export", ckpt, "--out", str(trained), "--overwrite"]) == 1  # a run directory
    assert "a training run's directory (its config.json is the run's)" in capsys.readouterr().err
    (out / ".git").mkdir()  # a model repository's own files stay
    assert main(["export", ckpt, "--out", str(out), "--overwrite"]) == 0 and (out / ".git").is_dir()
    meta = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(meta | {"step": meta["step"] + 5}))  # another export's config
    with pytest.raises(ValueError, match=r"model.safetensors holds step 20, config.json step 25: two exports mixed"):
        load_for_sampling(out)


def test_weights_that_do_not_fit_their_config_say_where(tmp_path):
    import shutil

    from fgdm.sampling import load_for_sampling, pretrained_path

    shutil.copytree(pretrained_path(), tmp_path / "w")
    vocab = tmp_path / "w" / "vocab.txt"
    vocab.write_text("".join(line + "\n" for line in vocab.read_text().splitlines()[:60]))
    with pytest.raises(ValueError, match=r"do not fit its stored config and vocabulary \(60 tokens\): size mismatch "
                       r"for gloss_encoder.embed"):  # fmt: skip
        load_for_sampling(tmp_path / "w")
    (tmp_path / "w" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ValueError, match=r"w/model.safetensors: not readable weights"):  # the file, not the folder
        load_for_sampling(tmp_path / "w")
    (tmp_path / "w" / "config.json").write_text("{")
    with pytest.raises(ValueError, match=r"w/config.json: not an fgdm export's config"):
        load_for_sampling(tmp_path / "w")


def test_generate_without_a_checkpoint_uses_the_shipped_weights(tmp_path, capsys):
    from fgdm.sampling import load_for_sampling, pretrained_path

    card = (pretrained_path() / "README.md").read_text()
    assert "What it scores" in card and "WER" in card
    assert (pretrained_path() / "model.safetensors").stat().st_size < 10 * 2**20
    loaded = load_for_sampling()
    assert loaded.cfg.data.path is None and loaded.step > 0
    assert main(["generate", "--gloss", "MORGEN NORD REGEN", "--out", str(tmp_path / "a.gif")]) == 0
    assert iio.imread(tmp_path / "a.gif").shape[0] > 5


def test_a_reference_too_long_to_sample_is_named():
    from fgdm.choices import LengthMode
    from fgdm.data.corpus import Sample
    from fgdm.sampling import generate_for, load_for_sampling

    samples = [Sample(("REGEN",), np.zeros((n, 50, 3), np.float32), "", f"test/s{n}") for n in (30, 2001)]
    with pytest.raises(ValueError, match=r"1 sequence\(s\) longer than the 2000 frames .* test/s2001 \(2001 frames\)"):
        generate_for(load_for_sampling(), samples, LengthMode("gt"))


def test_the_configs_testing_length_is_what_generate_samples_unless_told(trained, tmp_path, capsys):
    from fgdm.choices import LengthMode
    from fgdm.config import load_config

    out = tmp_path / "exported"
    assert main(["export", str(trained / "checkpoints" / "last.ckpt"), "--out", str(out)]) == 0
    meta = json.loads((out / "config.json").read_text())
    assert LengthMode.from_config(load_config(TINY)) == LengthMode("gt")
    meta["config"]["testing"] |= {"length": "fixed", "fixed_length": 7}
    (out / "config.json").write_text(json.dumps(meta))
    for extra, frames in (([], 7), (["--length", "9"], 9)):
        assert main(["generate", "--checkpoint", str(out), "--gloss", "REGEN NORD", "--out", str(tmp_path / "a.npy"),
                     "--overwrite", *extra]) == 0  # fmt: skip
        assert np.load(tmp_path / "a.npy").shape[0] == frames


def test_epochs_are_reshuffled_and_a_resumed_run_goes_on_as_a_straight_one(tmp_path):
    from lightning.pytorch.callbacks import Callback

    from fgdm.config import load_config
    from fgdm.training import train

    class Batches(Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, ...]] = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            self.seen.append(tuple(int(i) for i in batch.index))

    def run(name: str, steps: int, resume: bool = False) -> list[tuple[int, ...]]:
        cfg = load_config(TINY, [f"training.output_dir={tmp_path / name}", f"training.max_steps={steps}",
                                 "training.val_every=100", "data.synth_train=12", "training.batch_size=4"])  # fmt: skip
        seen = Batches()
        train(cfg, resume=resume, progress=False, callbacks=[seen])
        return seen.seen

    straight = run("straight", 9)  # three epochs of three batches
    epochs = [straight[i : i + 3] for i in (0, 3, 6)]
    assert all(sorted(i for b in e for i in b) == list(range(12)) for e in epochs)  # each epoch: every sequence
    assert len({tuple(e) for e in epochs}) == 3  # in a new order each epoch
    cut = run("cut", 5) + run("cut", 9, resume=True)  # cut mid-epoch
    assert cut == straight

    def weights(name: str) -> dict[str, torch.Tensor]:
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]

    a, b = weights("straight"), weights("cut")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same draws too: the random stream was restored


def test_a_resumed_runs_metrics_csv_rows_are_at_a_straight_runs_steps(tmp_path):
    """Lightning's logging step went one up on every resume (its dev rows a step after the training rows of the
    same step, two after a second resume), and so did its epoch: the rows of a run cut twice are a straight run's,
    step for step, epoch for epoch."""
    from fgdm.config import load_config
    from fgdm.training import train

    def run(name: str, steps: int, resume: bool = False) -> None:
        cfg = load_config(TINY, [f"training.output_dir={tmp_path / name}", f"training.max_steps={steps}",
                                 "training.val_every=2", "training.log_every=2"])  # fmt: skip
        train(cfg, resume=resume, progress=False)

    def rows(name: str) -> list[tuple[str, str, str, str]]:
        logs = sorted((tmp_path / name / "logs").glob("version_*/metrics.csv"))
        return [(r["step"], r["epoch"], r["dev/dtw"], r["train/loss"]) for f in logs for r in csv.DictReader(f.open())]

    run("straight", 8)
    run("cut", 3), run("cut", 6, resume=True), run("cut", 8, resume=True)
    straight = rows("straight")
    assert [r[0] for r in straight] == ["1", "1", "3", "3", "5", "5", "7", "7"]  # a training and a dev row each
    assert [float(r[1]) for r in straight] == [0, 0, 0, 0, 1, 1, 1, 1]  # epochs of 4 batches
    assert rows("cut") == straight  # the epoch too (Lightning's went one up at every resume)


def test_a_run_stopped_between_validations_and_resumed_validates_as_a_straight_one(tmp_path, monkeypatch):
    """Lightning validates once more when asked to stop (fgdm's Ctrl-C and SIGTERM, training.max_minutes): a dev
    row and a plateau-scheduler count that a straight run has not, which could lower the learning rate earlier (with
    no patience, at the first score that is not the best). fgdm stops without it, and still validates a stop at a
    validation's step: a run cut at step 3, at 4, or at 5 (by a Ctrl-C that landed after fgdm decided that step 4
    needed no validation) and resumed has the straight run's dev rows, rates and weights."""
    import signal

    from lightning.pytorch.callbacks import Callback

    from fgdm.config import load_config
    from fgdm.training import train
    from fgdm.training.generator import LitFGDM

    class CtrlC(Callback):
        def __init__(self, step: int) -> None:
            self.step = step  # from 1

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step + 1 == self.step:
                os.kill(os.getpid(), signal.SIGINT)  # fgdm's handler: stop after this step

    def run(name: str, steps: int, resume: bool = False, callbacks=()) -> None:
        cfg = load_config(TINY, [f"training.output_dir={tmp_path / name}", f"training.max_steps={steps}",
                                 "training.val_every=3", "training.log_every=1", "training.scheduler_patience=0",
                                 "training.scheduler_factor=0.5", "training.min_lr=1e-9"])  # fmt: skip
        train(cfg, resume=resume, progress=False, callbacks=list(callbacks))

    def rows(name: str) -> list[tuple[str, str, str]]:
        logs = sorted((tmp_path / name / "logs").glob("version_*/metrics.csv"))
        return [(r["step"], r["dev/dtw"], r["lr"]) for f in logs for r in csv.DictReader(f.open()) if r["dev/dtw"]]

    def weights(name: str) -> dict[str, torch.Tensor]:
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]

    run("straight", 8)
    assert [r[0] for r in rows("straight")] == ["2", "5"]  # validations at steps 3 and 6 (from 1)
    hook = LitFGDM.on_train_batch_end

    def late(self, outputs, batch, batch_idx):  # the signal after fgdm's decision, before Lightning's
        hook(self, outputs, batch, batch_idx)
        if self.trainer.global_step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    # stops at step 3, a validation's, and at 4 and 5 between validations: the last Ctrl-C lands in step 4 after fgdm
    # decided that the step needs no validation, and is taken at the end of the next
    for name, callbacks, stopped in (("at3", [CtrlC(3)], 3), ("at4", [CtrlC(4)], 4), ("late", [], 5)):
        with monkeypatch.context() as m:
            if name == "late":
                m.setattr(LitFGDM, "on_train_batch_end", late)
            with pytest.raises(KeyboardInterrupt):
                run(name, 100, callbacks=callbacks)
        ckpt = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)
        assert (ckpt["global_step"], ckpt["plateau"]["last_epoch"]) == (stopped, 1), name  # one validation: step 3's
        run(name, 8, resume=True)
        assert rows(name) == rows("straight"), name
        a, b = weights("straight"), weights(name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_a_run_killed_between_its_first_two_checkpoints_resumes_from_best(tmp_path, capsys):
    """Killed after its first validation wrote best.ckpt and before last.ckpt, a run had no way on: --resume said
    there was nothing to resume, a fresh start was refused for the checkpoint it held. best.ckpt is the run's whole
    state at that step: it becomes last.ckpt (with a warning), and the run goes on as a straight one."""
    base = ["train", TINY, "--quiet", "--set", "training.val_every=2"]
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main([*base, "--set", f"training.output_dir={straight}", "--set", "training.max_steps=4"]) == 0
    assert main([*base, "--set", f"training.output_dir={cut}", "--set", "training.max_steps=2"]) == 0
    (cut / "checkpoints" / "last.ckpt").unlink()  # as a kill between the two writes leaves it
    with pytest.warns(UserWarning, match="last.ckpt was missing .*best.ckpt, the run's latest state, is copied to it"):
        assert main([*base, "--set", f"training.output_dir={cut}", "--set", "training.max_steps=4", "--resume"]) == 0
    capsys.readouterr()
    a, b = (torch.load(run / "checkpoints" / "last.ckpt", weights_only=False) for run in (straight, cut))
    assert b["global_step"] == 4 and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # a later validation's best.ckpt (it names the last.ckpt before it) is older than the lost last state: not taken
    best = torch.load(straight / "checkpoints" / "best.ckpt", weights_only=False)
    key = next(k for k in best["callbacks"] if k.startswith("ModelCheckpoint"))
    best["callbacks"][key]["last_model_path"] = str(straight / "checkpoints" / "last.ckpt")
    torch.save(best, straight / "checkpoints" / "best.ckpt")
    (straight / "checkpoints" / "last.ckpt").unlink()
    assert main([*base, "--set", f"training.output_dir={straight}", "--set", "training.max_steps=6", "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err


def test_every_process_but_a_trainings_first_is_a_worker(monkeypatch):
    """Lightning's processes for other devices or nodes, and the other tasks of torchrun or srun (each sets its own
    variables): only the first owns the run directory (under srun both took it: one refused, one hung)."""
    from fgdm.training.ranks import is_worker

    names = ("LOCAL_RANK", "NODE_RANK", "RANK", "GROUP_RANK", "SLURM_PROCID")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    assert not is_worker()
    for name in names:
        with monkeypatch.context() as m:
            m.setenv(name, "0")
            assert not is_worker()
            m.setenv(name, "1")
            assert is_worker(), name


def test_a_time_budget_that_ends_between_validations_adds_none(tmp_path, capsys):
    """training.max_minutes stops without the validation Lightning runs at a stop: the dev rows are the scheduled
    ones only (none here: the budget ends before step 3)."""
    base = ["train", TINY, "--quiet", "--set", f"training.output_dir={tmp_path}", "--set", "training.max_steps=1000",
            "--set", "training.val_every=1000", "--set", "training.max_minutes=0.0001"]  # fmt: skip
    assert main(base) == 0
    out, err = capsys.readouterr()
    assert "training.max_minutes = 0.0001 reached at step" in err
    rows = list(csv.DictReader((tmp_path / "logs" / "version_0" / "metrics.csv").open()))
    assert rows and not any(r.get("dev/dtw") for r in rows)
    result = json.loads(out)
    assert result["dev_dtw"] is None and result["best_checkpoint"] is None


def test_a_warm_up_longer_than_the_first_validations_does_not_stop_training(tmp_path, capsys):
    base = ["train", TINY, "--set", f"training.output_dir={tmp_path / 'run'}", "--set", "training.val_every=2",
            "--set", "training.max_steps=6", "--quiet"]  # fmt: skip
    assert main([*base, "--set", "training.warmup_steps=100"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 6  # it stopped at step 2 (the warm-up's rate < min_lr)


def test_overwrite_keeps_the_old_checkpoints_until_the_new_run_writes_its_own(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    base = ["train", TINY, "--set", f"training.output_dir={run}", "--overwrite", "--quiet"]
    assert main([*base, "--set", f"data.path={tmp_path / 'nothing'}"]) == 1  # fails before training
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
    config, log = (run / "config.json").read_text(), (run / "logs" / "version_0" / "metrics.csv").read_text()
    # fails after writing its config (no GPU here): the old run's config and logs come back with its checkpoints
    assert main([*base, "--set", "model.width=48", "--set", "training.accelerator=gpu"]) == 1
    assert (run / "config.json").read_text() == config and sorted(
        p.name for p in (run / "checkpoints").iterdir()
    ) == before
    assert [p.name for p in (run / "logs").iterdir()] == ["version_0"]
    assert (run / "logs" / "version_0" / "metrics.csv").read_text() == log
    with pytest.warns(UserWarning, match=r"val_every 50 > training.max_steps 2: no validation"):
        assert main([*base, "--set", "training.max_steps=2", "--set", "training.val_every=50"]) == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]  # the new run's alone
    assert [p.name for p in (run / "logs").iterdir()] == ["version_0"]  # its log alone: the old one went
    metrics = run / "logs" / "version_0" / "metrics.csv"
    assert not metrics.exists() or metrics.read_text() != log  # 2 steps, log_every 5: nothing logged yet
    assert not list(run.glob("*.replaced")) and not list((run / "checkpoints").glob("*.replaced"))


def test_a_vocabulary_of_other_data_is_refused_also_on_resume(trained, tmp_path, capsys):
    """A data.vocab of another corpus (or a resumed run pointed at another data set) would train on <unk> only."""
    import shutil

    vocab = tmp_path / "other.txt"
    vocab.write_text("<unk>\n<pad>\n<s>\n</s>\nFOO\nBAR\n")
    args = ["train", TINY, "--set", f"training.output_dir={tmp_path / 'a'}", "--set", f"data.vocab={vocab}", "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "the training split: " in err and "glosses (100 %)" in err and "data.vocab belongs to other data" in err
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "gloss_vocab.txt").write_text((trained / "gloss_vocab.txt").read_text() + "EXTRA\n")
    assert main(_resume(run, 22, "--quiet", "--set", f"data.vocab={run / 'gloss_vocab.txt'}")) == 1
    assert "not the vocabulary the run was trained with" in capsys.readouterr().err


def test_a_moved_run_keeps_its_best_score_on_resume(trained, tmp_path):
    """Lightning forgets the best score when the run directory moved; best.ckpt must still only get better."""
    import shutil

    run = tmp_path / "moved"
    shutil.copytree(trained, run)
    last = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    (key,) = [k for k in ckpt["callbacks"] if k.startswith("ModelCheckpoint")]
    state = ckpt["callbacks"][key]
    assert Path(state["dirpath"]) != run / "checkpoints"  # it names where the run was trained
    state["best_model_score"] = torch.tensor(1e-6)  # a score no further step can beat
    state["best_k_models"] = {state["best_model_path"]: torch.tensor(1e-6)}
    torch.save(ckpt, last)
    best_step = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)["global_step"]
    args = _resume(run, 30, "--quiet")
    assert main(args) == 0
    after = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert after["global_step"] == best_step  # not replaced by step 30's worse model


def test_a_relative_data_path_is_recorded_absolute(tmp_path, monkeypatch, capsys):
    """generate, evaluate and export read the checkpoint's data.path later, from other directories."""
    tiny = str(Path(TINY).resolve())
    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--out", "data", "--num-train", "8", "--num-dev", "2", "--num-test", "2", "--quiet"]) == 0
    args = ["train", tiny, "--set", "data.path=data", "--set", "training.output_dir=run", "--set",
            "training.max_steps=1", "--set", "training.val_every=1000", "--quiet"]  # fmt: skip
    assert main(args) == 0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["config"]["data"]["path"] == str(tmp_path / "data")


def test_an_overwrite_killed_before_its_first_checkpoint_leaves_the_old_run_to_come_back(trained, tmp_path):
    """SIGKILL runs no finally: the old run stays set aside (*.replaced); the next run in the directory puts it
    back first, so a second --overwrite neither fails on it nor loses it."""
    import shutil

    from fgdm.config import Config, load_config, to_dict
    from fgdm.training.rundir import claim

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    old = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    config = to_dict(load_config(TINY, [f"training.output_dir={run}"]))
    killed = claim(run, config, Config, resume=False, overwrite=True)
    killed.__enter__()  # the old run set aside; the new one begins its config and log, then is killed
    (run / "config.json").write_text("{}")
    (run / "logs" / "version_0").mkdir(parents=True)
    (run / ".lock").unlink()  # a killed process's lock: stale
    assert (run / "logs.replaced").is_dir() and not (run / "checkpoints" / "last.ckpt").exists()
    back = pytest.warns(UserWarning, match="was killed before its first checkpoint; the run before it is back")
    refused = pytest.raises(ValueError, match="holds checkpoints")  # neither --resume nor --overwrite
    with back, refused, claim(run, config, Config, resume=False, overwrite=False):
        pass
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == old


def test_an_overwrite_killed_after_its_first_checkpoint_is_the_run_that_stays(trained, tmp_path):
    """The old run goes when the new one writes its first checkpoint (not at its end, which a SIGKILL skips), so
    a later --resume continues the new run; killed before it, --resume continues the old run, put back first. A
    checkpoint's half-written temporary is removed."""
    import shutil

    from fgdm.config import Config, load_config, to_dict
    from fgdm.training.checkpoints import AtomicCheckpointIO
    from fgdm.training.rundir import claim

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    config = to_dict(load_config(TINY, [f"training.output_dir={run}", "training.max_steps=40"]))
    killed = claim(run, config, Config, resume=False, overwrite=True)
    killed.__enter__()  # the old run set aside; the new one writes its first checkpoint, then is killed
    new = torch.load(trained / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    new["global_step"] = 3
    AtomicCheckpointIO(run).save_checkpoint(new, run / "checkpoints" / "last.ckpt")
    assert not list(run.glob("*.replaced")) and not list((run / "checkpoints").glob("*.replaced"))
    (run / ".lock").unlink()
    (run / "checkpoints" / ".last.ckpt.99999.tmp").write_bytes(b"")  # a kill while writing one
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing was put back
        with claim(run, config, Config, resume=True, overwrite=False) as stored:
            assert stored is not None
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 3
    assert not list((run / "checkpoints").glob(".*.tmp"))
    # killed before its first checkpoint: --resume puts the old run back first and continues it
    shutil.rmtree(run)
    shutil.copytree(trained, run)
    old = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    killed = claim(run, config, Config, resume=False, overwrite=True)
    killed.__enter__()
    (run / "config.json").write_text("{}")
    (run / ".lock").unlink()
    back = pytest.warns(UserWarning, match="the run before it is back in place")
    with back, claim(run, config, Config, resume=True, overwrite=False) as stored:
        assert stored is not None
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == old
    # killed while it set the old run aside (best.ckpt moved, last.ckpt not yet): the .ckpt there is the old run's
    (run / "checkpoints" / "best.ckpt").replace(run / "checkpoints" / "best.ckpt.replaced")
    (run / ".setting-aside").touch()
    (run / "notes.replaced").write_text("a user's")  # not one of the files an --overwrite sets aside: left alone
    with back, claim(run, config, Config, resume=True, overwrite=False):
        pass
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.stem != "notes"} == old
    config["data"]["path"] = str(tmp_path / "other")  # allowed, but said: config.json will name the new data only
    moved = pytest.warns(UserWarning, match=r"last.ckpt was trained on the embedded synthetic language and goes on "
                         r"with .*other \(data.path\)")  # fmt: skip
    with moved, claim(run, config, Config, resume=True, overwrite=False):
        pass


def test_a_resume_whose_time_budget_is_spent_is_refused_as_one_whose_steps_are(trained, tmp_path):
    """It started, trained nothing and reported 0 steps/s as a success."""
    import shutil

    from fgdm.config import Config, load_config, to_dict
    from fgdm.training.rundir import claim

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    ckpt["callbacks"]["Timer"] = {"time_elapsed": {"train": 90.0, "validate": 5.0}}
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    config = to_dict(load_config(TINY, [f"training.output_dir={run}", "training.max_steps=40"]))
    for budget, refused in ((1.0, True), (2.0, False), (None, False)):
        config["training"]["max_minutes"] = budget
        if refused:
            with pytest.raises(ValueError, match=r"has trained 1.50 minutes already: training.max_minutes 1 leaves"):
                claim(run, config, Config, resume=True, overwrite=False).__enter__()
        else:
            with claim(run, config, Config, resume=True, overwrite=False):
                pass


def test_data_of_other_glosses_is_refused_as_the_models_by_export_and_generate(trained, tmp_path, capsys):
    """export --data took any directory for the training data (its card then named it, and generate --split
    sampled all <unk> with a warning); a model asked to sign a split it has no glosses for is refused too."""
    from fgdm.data.pt import PTSplit, write_split

    poses = [np.zeros((4, 50, 3), dtype=np.float32)] * 2
    for split in ("train", "dev"):
        write_split(tmp_path / "other", split, PTSplit(poses, [["ICH1", "$INDEX1"], ["GEFÜHL3"]], ["a", "b"],
                                                       [f"{split}0", f"{split}1"]))  # fmt: skip
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    assert main(["export", ckpt, "--out", str(tmp_path / "e"), "--data", str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err
    assert "other: 3 of its 3 glosses (100 %) are not in the model's vocabulary: not the data it was trained" in err
    assert not (tmp_path / "e").exists()
    args = ["generate", "--checkpoint", ckpt, "--data", str(tmp_path / "other"), "--split", "dev", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "g")]) == 1
    assert "the dev split of " in (err := capsys.readouterr().err) and "other: 3 of its 3 glosses (100 %) are" in err
    # a directory without a train split: the glosses of the splits it has; read from the .gloss files alone
    for ext in ("skels", "gloss", "text", "files"):
        (tmp_path / "other" / f"train.{ext}").unlink()
    (tmp_path / "other" / "dev.skels").write_text("not poses\n")  # not read: the glosses are enough
    assert main(["export", ckpt, "--out", str(tmp_path / "e"), "--data", str(tmp_path / "other")]) == 1
    assert "other: 3 of its 3 glosses (100 %)" in capsys.readouterr().err
    # the whole split is judged, not --limit's part of it: one sentence of unseen glosses among known ones
    from fgdm.data.sources import build_corpus
    from fgdm.sampling import load_for_sampling

    loaded = load_for_sampling(ckpt)
    dev = build_corpus(loaded.cfg.data, "dev")
    glosses = [["ICH1", "$INDEX1"], *[list(dev[i].glosses) for i in range(1, 4)]]
    poses = [dev[i].pose for i in range(4)]
    write_split(tmp_path / "mixed", "dev", PTSplit(poses, glosses, ["t"] * 4, [f"s{i}" for i in range(4)]))
    args = ["generate", "--checkpoint", ckpt, "--data", str(tmp_path / "mixed"), "--split", "dev", "--limit", "1"]
    assert main([*args, "--out", str(tmp_path / "m"), "--quiet"]) == 0


def test_a_batch_larger_than_the_training_split_is_said(tmp_path):
    """Accepted (a tiny data set), but every step is then one batch of the whole split: not what the config says."""
    assert main(["synth", "--out", str(tmp_path / "d"), "--num-train", "6", "--num-dev", "2", "--num-test", "2",
                 "--quiet"]) == 0  # fmt: skip
    args = ["train", TINY, "--set", f"data.path={tmp_path / 'd'}", "--set", f"training.output_dir={tmp_path / 'r'}",
            "--set", "training.max_steps=1", "--set", "training.batch_size=50", "--quiet"]  # fmt: skip
    with pytest.warns(UserWarning, match=r"training.batch_size 50 > the 6 training sequences: every step is one batch"):
        assert main(args) == 0


def test_each_training_process_ignores_lightnings_warnings_of_what_fgdm_does_on_purpose(tmp_path, monkeypatch):
    """fit's warning filters are its process's; every training process also sets them itself, in on_fit_start."""
    import warnings

    from fgdm.config import load_config
    from fgdm.runtime import drop_noise_warnings
    from fgdm.training import loop, train

    calls = []
    monkeypatch.setattr(loop, "drop_noise_warnings", lambda: calls.append(1) or drop_noise_warnings())
    cfg = load_config(TINY, [f"training.output_dir={tmp_path}", "training.max_steps=1", "training.val_every=1"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        train(cfg, progress=False)  # tiny's epochs of 4 batches, under log_every 5: Lightning warns of it
        assert warnings.filters == before  # fit's filters are its own: the caller's are as they were
    assert calls == [1]
    noise = [str(w.message) for w in seen if "logging interval" in str(w.message) or "LeafSpec" in str(w.message)]
    assert not noise, noise  # training from Python leaves Lightning's noise out, as fgdm train does
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        drop_noise_warnings()
        warnings.warn("It is recommended to use `self.log('dev/dtw', ..., sync_dist=True)` when logging on epoch "
                      "level in distributed setting", stacklevel=1)  # fmt: skip
        warnings.warn("a warning of something else", stacklevel=1)
    assert [str(w.message) for w in seen] == ["a warning of something else"]
