"""Multi-process (DDP) training: the ranks validate every dev sequence once, draw their own noise, resume their
own random streams, and train with the EMA on."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fgdm.data.dataset import BucketBatchSampler
from fgdm.training.ranks import dev_batch, set_rng_states

TINY = "configs/tiny.yaml"
DDP = ["--set", "training.devices=2", "--set", "training.strategy=ddp", "--set", "training.accelerator=cpu"]


@pytest.mark.parametrize(("sequences", "batch", "limit", "world"), [(24, 8, None, 2), (40, 8, None, 3),
                                                                     (40, 8, 3, 2), (8, 8, None, 2)])  # fmt: skip
def test_the_ranks_dev_batches_are_one_processs_batches_once_each(sequences, batch, limit, world):
    lengths = np.random.default_rng(0).integers(5, 50, sequences)
    alone = list(BucketBatchSampler(lengths, batch, shuffle=False, limit=limit))
    shards = [list(BucketBatchSampler(lengths, batch, shuffle=False, limit=limit, num_replicas=world, rank=r))
              for r in range(world)]  # fmt: skip
    assert len({len(s) for s in shards}) == 1  # every rank takes as many steps
    taken, data = {}, SimpleNamespace(dev_batches=len(alone))
    for rank, shard in enumerate(shards):
        trainer = SimpleNamespace(world_size=world, global_rank=rank, datamodule=data)
        for i, indices in enumerate(shard):
            index = dev_batch(trainer, i)
            if index is not None:
                assert index not in taken and indices == alone[index]
                taken[index] = indices
    assert sorted(taken) == list(range(len(alone)))  # each of one process's batches once, fillers left out


def test_each_rank_draws_its_own_stream_and_resumes_its_own():
    def rank(r):
        return SimpleNamespace(global_rank=r, world_size=2)

    firsts = []
    for r in (0, 1):
        torch.manual_seed(5)  # what fit seeds every rank with
        set_rng_states(rank(r), None, seed=5)
        firsts.append(torch.rand(3))
    torch.manual_seed(5)
    assert torch.equal(firsts[0], torch.rand(3))  # rank 0 draws what one process would
    assert not torch.equal(firsts[0], firsts[1])
    saved = {"ranks": []}
    for seed in (11, 12):
        torch.manual_seed(seed)
        saved["ranks"].append({"torch": torch.get_rng_state()})
    for r, seed in ((0, 11), (1, 12)):
        set_rng_states(rank(r), saved, seed=5)
        got = torch.rand(3)
        torch.manual_seed(seed)
        assert torch.equal(got, torch.rand(3))


def _ddp(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "fgdm.cli", *args, "--quiet", *DDP]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _logged(run: Path, key: str) -> dict[int, float]:
    rows = csv.DictReader((run / "logs" / "version_0" / "metrics.csv").open())
    return {int(r["step"]): float(r[key]) for r in rows if r.get(key)}


def _validate_alone(module, data) -> dict[str, float]:
    import lightning as L

    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    (scores,) = trainer.validate(module, datamodule=data, verbose=False)
    return scores


def test_ddp_validation_scores_every_dev_sequence_once_as_one_process_would(tmp_path):
    """Three dev batches on two ranks: the second rank's filler is left out, and each batch is sampled with the
    seed one process gives it; the EMA (synth.yaml's default) trains under DDP."""
    from fgdm.config import from_dict
    from fgdm.training import LitFGDM
    from fgdm.training.data import PoseDataModule

    run = tmp_path / "run"
    sizes = ["--set", "data.synth_dev=24", "--set", "training.val_batches=null", "--set", "training.ema_decay=0.9"]
    done = _ddp(tmp_path, "train", TINY, "--set", f"training.output_dir={run}", "--set", "training.max_steps=2",
                "--set", "training.val_every=2", *sizes)  # fmt: skip
    assert done.stderr.count("not in the vocabulary") <= 1  # a warning once, not once per rank
    ddp = _logged(run, "dev/dtw")[1]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert len(ckpt["rng"]["ranks"]) == 2 and not torch.equal(*(r["torch"] for r in ckpt["rng"]["ranks"]))
    module = LitFGDM.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    cfg = from_dict(ckpt["hyper_parameters"]["config"])
    data = PoseDataModule(cfg.data, cfg.training, cfg.testing.batch_size, module.vocab)
    assert data.dev_batches == 3
    alone = _validate_alone(module, data)
    assert ddp == pytest.approx(alone["dev/dtw"], rel=1e-5)
    assert _logged(run, "dev/loss")[1] == pytest.approx(alone["dev/loss"], rel=1e-5)
    # resumed on two ranks: each rank goes on with its own stream, as a straight run does
    straight = tmp_path / "straight"
    _ddp(tmp_path, "train", TINY, "--set", f"training.output_dir={straight}", "--set", "training.max_steps=4",
         "--set", "training.val_every=2", *sizes)  # fmt: skip
    _ddp(tmp_path, "train", TINY, "--set", f"training.output_dir={run}", "--set", "training.max_steps=4",
         "--set", "training.val_every=2", "--resume", *sizes)  # fmt: skip
    a, b = (torch.load(r / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
            for r in (run, straight))  # fmt: skip
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_ddp_backtranslator_scores_the_whole_dev_split(tmp_path):
    """dev/wer, which picks best.ckpt and steps the plateau schedule, over every rank's sequences."""
    from fgdm.config import BackTranslatorConfig, from_dict
    from fgdm.training.backtranslator import LitBackTranslator
    from fgdm.training.data import PoseDataModule

    run = tmp_path / "bt"
    tiny = ["--set", "data.synth_train=32", "--set", "data.synth_dev=24", "--set", "data.skip_frames=3",
            "--set", "model.width=32", "--set", "model.ff=64", "--set", "model.encoder_layers=1",
            "--set", "model.decoder_layers=1", "--set", "training.max_steps=8", "--set", "training.val_every=8",
            "--set", "training.val_batches=null", "--set", "testing.batch_size=8"]  # fmt: skip
    _ddp(tmp_path, "backtranslator", "train", "configs/backtranslator.yaml", *tiny, "--set",
         f"training.output_dir={run}")  # fmt: skip
    summary = json.loads((run / "config.json").read_text())
    assert summary["training"]["devices"] == 2
    ddp = _logged(run, "dev/wer")
    module = LitBackTranslator.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    cfg = from_dict(module.hparams["config"], BackTranslatorConfig)
    data = PoseDataModule(cfg.data, cfg.training, cfg.testing.batch_size, module.gloss_vocab)
    alone = _validate_alone(module, data)
    assert ddp[7] == pytest.approx(alone["dev/wer"], abs=1e-6)
    assert _logged(run, "dev/bleu4")[7] == pytest.approx(alone["dev/bleu4"], abs=1e-6)
    assert _logged(run, "dev/loss")[7] == pytest.approx(alone["dev/loss"], rel=1e-5)


@pytest.mark.parametrize(("sig", "status", "said", "rank"),
                         [(2, 130, "interrupted", 0), (15, 143, "terminated (SIGTERM)", 0),
                          (15, 143, "terminated (SIGTERM)", 1)])  # fmt: skip
def test_a_signal_that_reaches_one_rank_stops_every_rank_with_the_last_checkpoint(tmp_path, sig, status, said, rank):
    """``kill -INT`` (or a scheduler's ``-TERM``) of one process alone: the ranks agree to stop at a step, so
    none waits for another forever, and the final checkpoint is written. (Lightning's own SIGTERM handler
    broadcast from inside the handler, and hung ranks that were at different collectives.) A SIGTERM that reached
    the second process only is said as one, with its status (it was said as an interruption, 130)."""
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fgdm.cli", "train", TINY, "--quiet", *DDP, "--set", f"training.output_dir={out}",
           "--set", "training.max_steps=100000", "--set", "training.val_every=7"]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 200
    while not (out / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.5)
    if rank == 0:
        proc.send_signal(sig)  # to rank 0's process only, not to its process group
    else:  # to the process rank 0 started for rank 1
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        os.kill(int(children[0]), sig)
    _, err = proc.communicate(timeout=200)
    assert proc.returncode == status, err[-3000:]
    assert err.count(f"{said} at step") == 1  # said once, by rank 0
    assert "fgdm: interrupted\n" not in err and "fgdm: terminated\n" not in err  # the other rank says nothing
    step = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert step > 7 and step % 5 == 0  # where the ranks agreed: a multiple of training.log_every (5), after step 7


@pytest.mark.parametrize("command", [["train", TINY], ["backtranslator", "train", "configs/backtranslator.yaml"]])
def test_several_machines_without_a_multinode_launch_are_refused_before_any_work(tmp_path, monkeypatch, capsys,
                                                                                 command):  # fmt: skip
    """training.num_nodes = 2 in a process started on its own waited forever for a second machine, silently."""
    from fgdm.cli import main
    from fgdm.training.ranks import MULTINODE_LAUNCH

    for name in MULTINODE_LAUNCH:
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "run"
    args = [*command, "--set", f"training.output_dir={out}", "--set", "training.num_nodes=2", "--quiet"]
    assert main(args) == 1
    said = capsys.readouterr().err
    assert "training.num_nodes = 2, but nothing launched this process on several machines" in said, said
    assert not out.exists()
    monkeypatch.setenv("NODE_RANK", "0")  # a launch that says which machine this is: no refusal from fgdm
    from fgdm.training.ranks import require_multinode_launch

    require_multinode_launch(2)


def test_a_strategy_this_machine_cannot_run_is_refused_naming_the_settings(tmp_path, capsys):
    """fsdp on the CPU: Lightning's refusal, said as fgdm's other refusals of these settings are, nothing written."""
    from fgdm.cli import main

    out = tmp_path / "run"
    sets = [f"training.output_dir={out}", "training.strategy=fsdp", "training.accelerator=cpu"]
    assert main(["train", TINY, "--quiet", *[a for s in sets for a in ("--set", s)]]) == 1
    said = capsys.readouterr().err
    assert "fgdm: error: training.accelerator, devices, strategy or precision: The strategy `fsdp` requires" in said
    assert not out.exists()


@pytest.mark.parametrize(
    ("devices", "omp", "warned"),
    [
        (3, None, "3 training processes of 1 thread each on this machine's 2 cores"),
        (2, "2", "2 training processes of 2 threads each (OMP_NUM_THREADS) on this machine's 2 cores"),
        (3, "2", "3 training processes of 2 threads each (OMP_NUM_THREADS) on this machine's 2 cores"),
        (3, "0", "3 training processes of 1 thread each on this machine's 2 cores"),  # 0: Lightning's share
        (2, None, None),  # Lightning gives each 1 thread
        (2, "1", None),
        (1, "8", None),  # one process: its threads are the caller's affair
    ],
)
def test_cpu_processes_that_crowd_the_cores_are_warned_of(monkeypatch, devices, omp, warned):
    """A multi-process CPU training asking for more threads than the machine's cores is warned of, with what to
    set instead; Lightning's trainer is built as fit builds it (no process is started by building it)."""
    import warnings

    import lightning as L

    from fgdm.training.ranks import warn_crowded_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "GROUP_RANK", "SLURM_PROCID", "SLURM_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    trainer = L.Trainer(accelerator="cpu", devices=devices, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)  # fmt: skip

    def said() -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warn_crowded_cores(trainer)
        return [str(w.message) for w in caught if "take turns on the cores" in str(w.message)]

    if warned is None:
        assert said() == []
    else:
        (message,) = said()
        assert f"training.devices {devices} starts {warned}" in message
        more = " and OMP_NUM_THREADS=1" if omp == "2" else ""
        fix = "OMP_NUM_THREADS=1" if devices <= 2 else f"training.devices 2 at most{more}"
        assert message.endswith(f"{fix} trains faster")
    for name, value in {"SLURM_NTASKS": devices, "SLURM_NTASKS_PER_NODE": devices, "SLURM_JOB_NAME": "train"}.items():
        monkeypatch.setenv(name, str(value))  # srun's tasks: each has CPUs of its own, so nothing is said
    assert said() == []
