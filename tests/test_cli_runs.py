"""Commands given runs, checkpoints and data of the wrong kind: each refused, named, before it does the wrong work."""

import math
import shutil

import pytest

from fgdm.cli import main

TINY_BT = ["--set", "model.width=16", "--set", "model.ff=32", "--set", "model.encoder_layers=1",
           "--set", "model.decoder_layers=1", "--set", "training.max_steps=4", "--set", "training.val_every=4",
           "--set", "training.val_batches=1", "--set", "data.skip_frames=3", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def bt_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bt")
    assert main(["backtranslator", "train", "configs/backtranslator.yaml", *TINY_BT, "--set",
                 f"training.output_dir={out}"]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def lower_case(tmp_path_factory):
    """The embedded language's data with every gloss in lower case: no gloss a model of it knows."""
    out = tmp_path_factory.mktemp("lc") / "d"
    assert main(["synth", "--out", str(out), "--num-train", "12", "--num-dev", "3", "--num-test", "3", "--quiet"]) == 0
    for split in ("train", "dev", "test"):
        path = out / f"{split}.gloss"
        path.write_text(path.read_text(encoding="utf-8").lower(), encoding="utf-8")
    (out / "src_vocab.txt").unlink()
    return out


def test_evaluate_refuses_a_generator_for_data_whose_glosses_it_does_not_know(trained, bt_run, lower_case, tmp_path,
                                                                              capsys):  # fmt: skip
    argv = ["evaluate", "--backtranslator", str(bt_run / "checkpoints" / "last.ckpt"), "--checkpoint",
            str(trained / "checkpoints" / "last.ckpt"), "--data", str(lower_case), "--split", "test", "--out",
            str(tmp_path / "rep"), "--quiet"]  # fmt: skip
    assert main(argv) == 1  # (it scored the model signing <unk> for every sentence)
    assert "of its" in (err := capsys.readouterr().err) and "(100 %) are not in the model's vocabulary" in err
    assert not list(tmp_path.glob("rep*"))


def test_a_resumed_backtranslator_refuses_data_it_has_no_glosses_for(bt_run, lower_case, tmp_path, capsys):
    run = tmp_path / "bt"
    shutil.copytree(bt_run, run)
    argv = ["backtranslator", "train", "configs/backtranslator.yaml", *TINY_BT, "--set", "training.max_steps=6",
            "--set", f"training.output_dir={run}", "--set", f"data.path={lower_case}", "--resume"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the training split: " in err and "glosses (100 %) are not in the model's vocabulary: the run being " in err


def test_resuming_a_run_of_the_other_kind_names_the_checkpoint_for_what_it_is(trained, bt_run, tmp_path, capsys):
    assert main(["train", "configs/tiny.yaml", "--set", f"training.output_dir={bt_run}", "--resume", "--quiet",
                 "--set", "training.max_steps=40"]) == 1  # fmt: skip
    said = "last.ckpt: a back-translator's checkpoint, and this command trains a generator: give it another"
    assert said in capsys.readouterr().err
    assert main(["backtranslator", "train", "configs/backtranslator.yaml", *TINY_BT, "--set", "training.max_steps=40",
                 "--set", f"training.output_dir={trained}", "--resume"]) == 1  # fmt: skip
    said = "last.ckpt: a generator's checkpoint, and this command trains a back-translator: give it another"
    assert said in capsys.readouterr().err


def test_a_run_without_its_last_checkpoint_gets_one_answer(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "checkpoints" / "last.ckpt").unlink()  # best.ckpt stays, from a validation before the run's end
    argv = ["train", "configs/tiny.yaml", "--set", f"training.output_dir={run}", "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "its last.ckpt is gone, so --resume cannot continue it (a copy of best.ckpt named last.ckpt" in err
    assert "--resume continues" not in err
    assert main([*argv, "--resume"]) == 1 and "nothing to resume" in capsys.readouterr().err


def test_model_summary_refuses_a_vocabulary_too_small_and_a_checkpoint_for_its_config(trained, capsys):
    assert main(["model", "summary", "configs/tiny.yaml", "--vocab-size", "4"]) == 1
    assert "--vocab-size 4: a vocabulary holds <unk> <pad> <s> </s> and a gloss at least" in capsys.readouterr().err
    assert main(["model", "summary", "configs/tiny.yaml", "--vocab-size", "5"]) == 0
    capsys.readouterr()
    ckpt = trained / "checkpoints" / "last.ckpt"
    assert main(["model", "summary", str(ckpt)]) == 1
    err = capsys.readouterr().err
    assert "last.ckpt: a zip archive (a PyTorch checkpoint, .ckpt or .pt?), not text" in err and "iconv" not in err


def test_generate_never_replaces_a_data_sets_splits_and_refuses_a_folder_before_sampling(trained, tmp_path, capsys):
    data = tmp_path / "d"
    assert main(["synth", "--out", str(data), "--num-train", "2", "--num-dev", "1", "--num-test", "1", "--quiet"]) == 0
    before = (data / "test.skels").read_bytes()
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    argv = ["generate", "--checkpoint", ckpt, "--split", "test", "--out", str(data), "--overwrite", "--quiet"]
    assert main(argv) == 1  # --data is another directory (the checkpoint's embedded language)
    assert "holds a data set (src_vocab.txt): generated poses never replace a data set's splits" in (
        capsys.readouterr().err
    )
    assert (data / "test.skels").read_bytes() == before
    (tmp_path / "x.npy").mkdir()
    assert main(["generate", "--checkpoint", ckpt, "--gloss", "NORD", "--out", str(tmp_path / "x.npy"),
                 "--overwrite"]) == 1  # fmt: skip
    assert "x.npy: --gloss writes a .npy, .pose, .gif or .mp4 file, and this is a directory" in capsys.readouterr().err


def test_evaluate_names_a_file_given_as_hypotheses(bt_run, tmp_path, capsys):
    (hyp := tmp_path / "poses.npy").write_bytes(b"")
    argv = ["evaluate", "--backtranslator", str(bt_run / "checkpoints" / "last.ckpt"), "--hyp", str(hyp), "--out",
            str(tmp_path / "rep")]  # fmt: skip
    assert main(argv) == 1
    assert "poses.npy: hypothesis directory a file: give the folder of the system's poses (--hyp)" in (
        capsys.readouterr().err
    )


def test_a_first_step_that_diverges_claims_no_checkpoint(tmp_path):
    from fgdm.training.finite import not_finite

    said = str(not_finite(1, math.nan))
    assert "before the step reached the weights (no checkpoint holds it)" in said and "the checkpoints hold" not in said


def test_export_refuses_a_report_that_scored_no_model_and_reads_a_report_written_elsewhere(trained, bt_run, tmp_path,
                                                                                          capsys):  # fmt: skip
    from fgdm.evaluation.report import _same_file

    assert main(["evaluate", "--backtranslator", str(bt_run / "checkpoints" / "last.ckpt"), "--split", "test",
                 "--limit", "2", "--out", str(tmp_path / "ceiling"), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    assert main(["export", ckpt, "--out", str(tmp_path / "exp"), "--report", str(tmp_path / "ceiling.json")]) == 1
    said = "ceiling.json scored no model (evaluate without --checkpoint): its table would describe none"
    assert said in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()
    # a report records the checkpoint as evaluate was given it, relative to where it ran
    assert _same_file("run1/checkpoints/last.ckpt", tmp_path / "audit" / "run1" / "checkpoints" / "last.ckpt")
    assert not _same_file("run2/checkpoints/last.ckpt", tmp_path / "audit" / "run1" / "checkpoints" / "last.ckpt")
    assert not _same_file("../run1/last.ckpt", tmp_path / "run1" / "last.ckpt")  # (only where it ran could tell)


def test_a_set_below_a_key_a_config_file_gives_a_value_names_the_file(tmp_path):
    from fgdm.config import ConfigError, load_config

    (cfg := tmp_path / "c.yaml").write_text("data:\nmodel:\n  width: 16\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--set data.path=x: 'data' is not a section: .*c.yaml gives data: None, "):
        load_config(cfg, ["data.path=x"])


def test_a_new_run_never_replaces_an_exported_models_files(trained, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["export", str(trained / "checkpoints" / "last.ckpt"), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["train", "configs/tiny.yaml", "--set", f"training.output_dir={out}", "--quiet"]) == 1
    said = capsys.readouterr().err
    assert "holds config.json and no checkpoint (an exported model's?" in said and "--overwrite" in said
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the export loads as it did


def test_a_resume_refuses_what_would_change_its_weights_or_its_end_and_says_a_moved_schedule(tmp_path, capsys):
    import torch

    run = ["train", "configs/tiny.yaml", "--set", f"training.output_dir={tmp_path}", "--set", "training.val_every=2",
           "--set", "training.schedule=cosine", "--set", "training.min_lr=0", "--quiet"]  # fmt: skip
    assert main([*run, "--set", "training.max_steps=2"]) == 0
    assert main([*run, "--set", "training.max_steps=4", "--set", "training.precision=bf16-true", "--resume"]) == 1
    assert "training.precision 32-true → bf16-true would turn the run's weights from float32 to bfloat16" in (
        capsys.readouterr().err)  # fmt: skip
    with pytest.warns(UserWarning, match=r"max_steps 2 → 4 moves step 2's rate to another curve"):
        assert main([*run, "--set", "training.max_steps=4", "--resume"]) == 0
    last = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=False)  # as a plateau schedule leaves a run it ended: its rate below min_lr
    ckpt["hyper_parameters"]["config"]["training"] |= {"schedule": "plateau", "min_lr": 1e-4}
    ckpt["optimizer_states"][0]["param_groups"][0]["lr"] = 5e-5
    torch.save(ckpt, last)
    plateau = [*run[:-5], "--set", "training.max_steps=6", "--quiet"]
    capsys.readouterr()
    assert main([*plateau, "--resume"]) == 1
    assert "its learning rate fell to 5e-05, below training.min_lr 0.0001, which ended the run" in (
        capsys.readouterr().err)  # fmt: skip
    assert main([*plateau, "--set", "training.min_lr=1e-5", "--resume"]) == 0  # lowered, it goes on


def test_poses_generate_wrote_are_not_read_as_25_fps_data_and_thinned_again(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "last.ckpt")  # tiny.yaml: skip_frames 3, so its poses are at 8.33 fps
    assert main(["generate", "--checkpoint", ckpt, "--split", "test", "--limit", "2", "--out", str(tmp_path / "g"),
                 "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["generate", "--checkpoint", ckpt, "--split", "test", "--data", str(tmp_path / "g"), "--out",
                 str(tmp_path / "again"), "--quiet"]) == 1  # fmt: skip
    said = capsys.readouterr().err
    assert "test.fps: the test split was sampled at 8.33333 fps (fgdm generate's poses)" in said
    assert "skip_frames 3 would thin it again" in said and not (tmp_path / "again").exists()
    assert main(["render", str(tmp_path / "g"), "--out", str(tmp_path / "g.gif")]) == 0  # at its own rate
