"""The Python API's inputs, as an avatar's code gives them: what it refuses, names and warns of, as the command does."""

import logging
import shutil
import warnings

import numpy as np
import pytest
import torch

from fgdm.choices import LengthMode
from fgdm.config import ConfigError, load_config
from fgdm.data.vocab import UnknownTokenWarning
from fgdm.diffusion import Diffusion
from fgdm.sampling import generate_for, generate_poses, load_for_sampling, pretrained_path


@pytest.fixture(scope="module")
def loaded():
    return load_for_sampling()


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "empty, nothing to sign"),
        ("morgen nord", r"none of 'morgen nord' is in the vocabulary .*did you mean MORGEN NORD\? glosses are upper"),
        ("MOR\u200bGEN NORD", r"U\+200B \(ZERO WIDTH SPACE\), at character 4"),
        ("<pad> MORGEN", "<pad> is a vocabulary's own token, not a gloss"),
        (["MORGEN", " NORD"], "' NORD' holds a space or a line break: give each gloss on its own"),
        (["REGEN\n"], r"'REGEN\\n' holds a space"),
        (["MORGEN", ""], "an empty gloss"),
        (["MORGEN", 5], "5 is no gloss"),
        (["MOR\u00adGEN"], r"U\+00AD \(SOFT HYPHEN\)"),
    ],
)
def test_a_typed_sentence_is_refused_as_the_command_refuses_it(loaded, typed, says):
    with pytest.raises(ValueError, match=says):
        loaded.vocab.encode_sentence(typed)


def test_a_typed_sentence_encodes_and_an_unknown_gloss_is_warned_of_with_the_closest_known(loaded):
    v = loaded.vocab
    assert v.encode_sentence("MORGEN NORD REGEN") == v.encode_sentence(["MORGEN", "NORD", "REGEN"])
    assert v.encode_sentence("  MORGEN\tNORD ") == v.encode_sentence(["MORGEN", "NORD"])
    with pytest.warns(UnknownTokenWarning, match=r"^1 of 3 glosses is not .*NORDD \(1\); did you mean NORD for NORDD"):
        ids = v.encode_sentence("MORGEN NORDD REGEN")
    assert ids[1] == v.unk_index and ids[0] == v.index("MORGEN")
    assert "SUED" in v  # PHOENIX's glosses, as the embedded language's, spell umlauts out
    with pytest.warns(UnknownTokenWarning, match=r"did you mean SUED for SÜD"):
        v.encode_sentence("MORGEN SÜD")
    with pytest.warns(UnknownTokenWarning, match=r"^1 of 2 glosses is not"):  # what names the input, not the kind
        v.encode_sentence("MORGEN NORDD", "--gloss")
    with pytest.raises(ValueError, match=r"^--gloss: <s> is a vocabulary's own token, not a gloss$"):
        v.encode_sentence("<s> MORGEN", "--gloss")
    with pytest.raises(ValueError, match=r"^--gloss: 'MOR\\u200bGEN': an invisible"):
        v.encode_sentence(["MOR\u200bGEN"], "--gloss")


def test_encode_all_refuses_what_is_no_gloss_naming_the_sentence_and_words_its_warning(loaded):
    v = loaded.vocab
    for sentences, says in (
        ([["MORGEN"], ["<pad>", "NORD"]], "sentence 1: <pad> is a vocabulary's own token"),
        ([["MORGEN", "<unk>"]], "sentence 0: <unk> is a vocabulary's own token"),
        ([["MOR\u00adGEN"]], r"sentence 0: 'MOR\\xadGEN': an invisible"),
    ):
        with pytest.raises(ValueError, match=says):
            v.encode_all(sentences)
    for sentences, says in (
        ([["XX"]], r"^the only gloss is not in the vocabulary and maps to <unk>: XX \(1\)$"),
        ([["XX", "NORD"]], r"^1 of 2 glosses is not"),
        (
            [["XX", "YY"]],
            r"^none of the 2 glosses \(2 types\) is in the vocabulary; all map to <unk>: XX \(1\), YY \(1\)$",
        ),
    ):
        with pytest.warns(UnknownTokenWarning, match=says):
            v.encode_all(sentences)


def test_more_sampling_steps_end_nearer_t_0_and_a_step_count_must_be_whole():
    d = Diffusion(load_config("configs/paper.yaml").diffusion)
    assert d.sampling_timesteps(5) == [999, 799, 599, 399, 199]  # the paper's, and every divisor of T as before
    assert d.sampling_timesteps(10) == list(range(999, 0, -100))
    for steps in (3, 7, 333, 500, 501, 600, 999, 1000):
        t = d.sampling_timesteps(steps)
        assert len(set(t)) == steps and t == sorted(t, reverse=True) and t[0] == 999
        assert t[-1] < 1000 / steps  # 601 steps ended at t = 399 (a whole stride of 1 from 999)
    for steps in (True, 2.0, "3"):
        with pytest.raises(ValueError, match="steps: a whole number of sampling steps"):
            d.sampling_timesteps(steps)


def test_a_length_head_beyond_the_limit_is_refused_before_any_sampling_naming_the_sentence(loaded, monkeypatch):
    sampled = []
    monkeypatch.setattr(loaded.model, "generate", lambda *a, **k: sampled.append(1))
    ids = [loaded.vocab.encode_sentence("MORGEN NORD"), loaded.vocab.encode_sentence(" ".join(["REGEN NORD"] * 200))]
    with pytest.raises(ValueError, match=r"predicts \d+ frames for gloss sequence long, beyond the 2000 .*=\[N\]"):
        generate_poses(loaded, ids, None, batch_size=1, names=["short", "long"])
    assert not sampled
    with pytest.raises(TypeError, match="loaded: a model load_for_sampling"):
        generate_poses("model.ckpt", ids, None)


def test_a_named_safetensors_file_is_the_one_loaded_and_the_shipped_weights_load_by_name(tmp_path):
    from safetensors.torch import load_file, save_file

    shipped = pretrained_path()
    for name in ("config.json", "vocab.txt", "model.safetensors"):
        shutil.copy(shipped / name, tmp_path / name)
    tensors = load_file(shipped / "model.safetensors")
    save_file({k: torch.zeros_like(v) if k.startswith("denoiser.") else v for k, v in tensors.items()},
              tmp_path / "zeroed.safetensors", metadata={"step": str(load_for_sampling().step)})  # fmt: skip
    zeroed = load_for_sampling(tmp_path / "zeroed.safetensors")
    assert all(not p.any() for p in zeroed.model.denoiser.parameters())  # it read model.safetensors beside it
    with pytest.raises(FileNotFoundError, match=r"other.safetensors: not found$"):
        load_for_sampling(tmp_path / "other.safetensors")
    (tmp_path / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocab.txt: not found \(the weights zeroed.safetensors are read"):
        load_for_sampling(tmp_path / "zeroed.safetensors")
    by_name = load_for_sampling("synth")
    assert by_name.step == load_for_sampling().step and by_name.vocab == load_for_sampling().vocab


def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is(tmp_path):
    (tmp_path / "train.yaml").write_text("training: {max_steps: 3}\n")
    with pytest.raises(ValueError, match=r"train.yaml: a config, not a checkpoint \(a training checkpoint is a .ckpt"):
        load_for_sampling(tmp_path / "train.yaml")


def test_loading_builds_the_cpu_kernel_so_that_the_first_sentence_does_not(monkeypatch):
    from fgdm.model import kernels

    asked = []
    monkeypatch.setattr(kernels, "available", lambda *a: asked.append(a) or True)
    load_for_sampling(device="cpu")
    assert len(asked) == 1


def test_a_model_without_the_focal_stage_builds_no_kernel(tmp_path, monkeypatch):
    from fgdm.model import kernels
    from fgdm.training import train

    cfg = load_config("configs/tiny.yaml", [f"training.output_dir={tmp_path}", "training.max_steps=1",
                                            "training.val_every=1", "model.focal.enabled=false"])  # fmt: skip
    train(cfg, progress=False)
    asked = []
    monkeypatch.setattr(kernels, "available", lambda *a: asked.append(a) or True)
    load_for_sampling(tmp_path / "checkpoints" / "last.ckpt", device="cpu")
    assert not asked


def test_lengths_as_evaluate_takes_them_and_unknown_splits_as_value_errors(loaded):
    from fgdm.config import DataConfig
    from fgdm.data.sources import build_corpus

    with pytest.raises(ValueError, match="length: gt takes no frame count \\(fixed does\\), got 5"):
        LengthMode("gt", 5)
    corpus = build_corpus(DataConfig(synth_test=2, skip_frames=2), "test")
    samples = [corpus[0], corpus[1]]
    as_text, as_mode = generate_for(loaded, samples, "gt"), generate_for(loaded, samples, LengthMode("gt"))
    assert [len(p) for p in as_text] == [len(s.pose) for s in samples] and all(map(np.array_equal, as_text, as_mode))
    assert [len(p) for p in generate_for(loaded, samples, 7)] == [7, 7]
    with pytest.raises(ValueError, match="split 'nope': the embedded synthetic data has train, dev, test"):
        build_corpus(DataConfig(), "nope")


def test_load_config_refuses_a_string_of_overrides_and_a_dict(tmp_path):
    with pytest.raises(ConfigError, match=r"overrides: a list of key=value strings, e.g. \['training.max_steps=5'\]"):
        load_config("configs/tiny.yaml", "training.max_steps=5")
    with pytest.raises(ConfigError, match="from_dict"):
        load_config({"training": {}})
    with pytest.raises(ConfigError, match=r"config file not found \(an override is given with --set training.max_"):
        load_config(["configs/tiny.yaml", "training.max_steps=5"])


def test_save_animation_takes_lists_and_warns_of_poses_in_other_units(tmp_path, loaded):
    from fgdm.data.io import save_sequence
    from fgdm.render import Renderer, save_animation

    (pose,) = generate_poses(loaded, [loaded.vocab.encode_sentence("MORGEN")], [4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_animation(tmp_path / "a.gif", pose.tolist(), fps=loaded.fps, renderer=Renderer(size=48))
    with pytest.warns(UserWarning, match=r"mm.gif: sequence 0 lies mostly outside the picture .*millimetres"):
        save_animation(tmp_path / "mm.gif", pose * 1000, fps=loaded.fps, renderer=Renderer(size=48))
    with pytest.raises(ValueError, match=r"a.pose: fps: a number of frames per second, got '12.5'"):
        save_sequence(tmp_path / "a.pose", pose, fps="12.5")
    flat = pose.reshape(len(pose), -1)  # (S, J·3): each sequence of a list is named with its own shape
    with pytest.raises(ValueError, match=rf"b.gif: sequence 1 has shape \({len(pose)}, {flat.shape[1]}\), expected"):
        save_animation(tmp_path / "b.gif", [pose, flat], renderer=Renderer(size=48))
    with pytest.raises(ValueError, match=rf"b.gif: sequence 0 has shape \({len(pose)}, {flat.shape[1]}\), expected"):
        save_animation(tmp_path / "b.gif", flat, renderer=Renderer(size=48))
    with pytest.raises(ValueError, match=r"b.gif: no sequence to draw"):
        save_animation(tmp_path / "b.gif", [], renderer=Renderer(size=48))
    assert not (tmp_path / "b.gif").exists()


def test_training_from_python_leaves_lightnings_noise_out_and_its_loggers_as_they_were():
    import lightning  # noqa: F401  (its loggers' handlers)

    from fgdm.runtime import DropNoise, lightning_noise_dropped

    own = logging.StreamHandler()  # Lightning adds its own where the root logger has none (not under pytest)
    logging.getLogger("lightning.pytorch").addHandler(own)
    handlers = [h for n in ("lightning.pytorch", "lightning.fabric") for h in logging.getLogger(n).handlers]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with lightning_noise_dropped():
            assert all(any(isinstance(f, DropNoise) for f in h.filters) for h in handlers)
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", stacklevel=1)
            warnings.warn("something that matters", stacklevel=1)
    assert [str(w.message) for w in seen] == ["something that matters"]
    assert not any(isinstance(f, DropNoise) for h in handlers for f in h.filters)
    logging.getLogger("lightning.pytorch").removeHandler(own)
    record = logging.LogRecord("lightning.pytorch", logging.INFO, "", 0, "💡 Tip: For seamless cloud logging", (), None)
    assert not DropNoise().filter(record)


def test_a_padded_batch_or_a_vocabularys_own_token_is_refused_naming_the_sentence(loaded):
    v = loaded.vocab
    a, b = v.encode_sentence("MORGEN NORD REGEN"), v.encode_sentence("MORGEN")
    with pytest.raises(ValueError, match=r"gloss sequence 1: id 1 is <pad>, no gloss \(a padded batch\?"):
        generate_poses(loaded, torch.tensor([a, b + [v.pad_index] * 2]), None)  # its length and poses would change
    for special in (v.bos_index, v.eos_index):
        with pytest.raises(ValueError, match=rf"gloss sequence 0: id {special} is {v.itos[special]}, no gloss"):
            generate_poses(loaded, [[special, *b]], [4])
    assert len(generate_poses(loaded, [[v.unk_index]], [3])[0]) == 3  # <unk>: a gloss the model does not know
    with pytest.raises(TypeError, match=r"^loaded: a model load_for_sampling\(...\) returns, got FGDM$"):
        generate_poses(loaded.model, [a], None)  # named by its type, not its hundred-line repr
    assert repr(loaded).startswith("LoadedModel(step=") and "\n" not in repr(loaded)


def test_text_metrics_refuse_a_string_for_a_list_and_no_sentences():
    from fgdm.metrics import bleu, text_scores, wer

    with pytest.raises(TypeError, match=r"hypotheses: a list of sentences, got one string 'ABCD'"):
        wer("ABCD", "ABCE")  # (its characters scored as sentences: WER 25)
    with pytest.raises(TypeError, match=r"references: a list of sentences, got one string"):
        text_scores(["the cat"], "the cat")
    with pytest.raises(TypeError, match=r"hypotheses: each sentence a string of words, got \['A', 'B'\]"):
        wer([["A", "B"]], ["A B"])
    with pytest.raises(ValueError, match="no sentences to score"):
        bleu([], [])
    assert wer(["A B"], ["A C"]).wer == 50.0


def test_pose_metrics_refuse_what_they_cannot_score():
    from fgdm.metrics import dtw_mje, finger_length_ratio
    from fgdm.metrics.features import diversity, frechet_distance

    p = np.zeros((4, 50, 3), np.float32)
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        finger_length_ratio([p], [p, 2 * p])
    with pytest.raises(ValueError, match=r"the hypothesis is no \(S ≥ 1, J, 3\) finite pose sequence \(no frames\)"):
        dtw_mje(p[:0], p)
    with pytest.raises(ValueError, match=r"the reference is no .* \(non-finite values\)"):
        dtw_mje(p, np.full_like(p, np.nan))
    with pytest.raises(ValueError, match=r"hypothesis frames \(20, 3\) against reference frames \(50, 3\)"):
        dtw_mje(p[:, :20], p)
    features = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="non-finite values"):
        frechet_distance(features, np.full_like(features, np.nan))
    with pytest.raises(ValueError, match="pairs is a whole number ≥ 1, got 0"):
        diversity(features, pairs=0)
    same = np.tile([1.0, 2.0, 3.0], (3, 1))  # covariances of zero: SciPy's warning, named as FID's
    with pytest.warns(UserWarning, match=r"FID of 3 and 3 sequences of 3 features: Matrix is singular"):
        assert frechet_distance(same, same + 1) == pytest.approx(3.0)


def test_save_animation_names_a_frame_rate_that_is_no_number_and_poses_of_another_skeleton(tmp_path, loaded):
    from fgdm.render import save_animation

    pose = generate_poses(loaded, [loaded.vocab.encode_sentence("NORD")], [3])[0]
    with pytest.raises(ValueError, match=r"a.gif: fps: a number of frames per second, got '12.5'"):
        save_animation(tmp_path / "a.gif", pose, fps="12.5")
    with pytest.raises(ValueError, match=r"a.gif: sequence 0 has shape \(3, 20, 3\), expected \(S, 50, 3\)"):
        save_animation(tmp_path / "a.gif", pose[:, :20])
    assert not (tmp_path / "a.gif").exists()


def test_generate_for_takes_names_and_evaluate_refuses_length_0(loaded):
    from fgdm.data.synth.corpus import SynthCorpus
    from fgdm.evaluation.protocol import evaluate

    samples = [SynthCorpus(2, "test", seed=0)[i] for i in range(2)]
    poses = generate_for(loaded, samples, 3, names=["mine", "yours"])  # (was: names given twice, a TypeError)
    assert [len(p) for p in poses] == [3, 3]
    with pytest.raises(ValueError, match=r"length: a fixed length is a frame count from 1 to 2000, got 0"):
        evaluate("bt.ckpt", "synth", length=0)  # (was: the config's length, silently)
    with pytest.raises(TypeError, match=r"a string of glosses or a list of them, got None"):
        loaded.vocab.encode_sentence(None)


def test_a_fixed_length_beyond_sampling_is_refused_in_the_config_and_a_folder_named_synth_does_not_hide_silently(
    tmp_path, monkeypatch, loaded
):
    from fgdm.sampling import export

    with pytest.raises(ConfigError, match=r"testing.fixed_length: sampling takes at most 2000 frames, got 3000"):
        load_config("configs/tiny.yaml", ["testing.length=fixed", "testing.fixed_length=3000"])
    load_config("configs/tiny.yaml", ["testing.fixed_length=3000"])  # unused unless fixed: old configs load
    with pytest.raises(ValueError, match=r"data: .*nowhere: no directory"):
        export(loaded, tmp_path / "out", data=str(tmp_path / "nowhere"))
    assert not (tmp_path / "out").exists()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synth").mkdir()
    with pytest.raises(ValueError, match=r"synth: a folder here, without exported weights, has the name of fgdm's "):
        load_for_sampling("synth")
    assert load_for_sampling().step == loaded.step  # no name: the shipped weights
