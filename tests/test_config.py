from pathlib import Path

import pytest

from fgdm.config import BackTranslatorConfig, Config, ConfigError, TrainingConfig, from_dict, load_config, to_dict

CONFIGS = sorted(Path("configs").glob("**/*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p))
def test_every_shipped_config_loads(path):
    schema = BackTranslatorConfig if path.stem == "backtranslator" else Config
    cfg = load_config(path, schema=schema)
    assert from_dict(to_dict(cfg), schema) == cfg  # the checkpoint round trip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.focal.widht=3"], "unknown key 'model.focal.widht'; valid keys here: enabled, layers, width"),
        (["model.general.attention=sideways"], "'sideways' is not one of bidirectional, causal"),
        (["training.precision=fp8"], "is not one of 32-true, 16-mixed"),
        (["model.focal.layers=two"], "model.focal.layers: expected an integer, got 'two'"),
        (["model.scg.enabled=maybe"], "model.scg.enabled: expected true or false"),
        (["model.scg.enabled=2"], "model.scg.enabled: expected true or false, got 2"),
        (["model.focal.layers=0"], "model.focal.layers: must be ≥ 1"),
        (["model.general.heads=3"], "not divisible by 3 heads"),
        (["model.focal.tcn_kernel=4"], "must be odd"),
        (["model.scg.conv_kernel=4"], "model.scg.conv_kernel: must be odd, got 4"),
        (["model.scg.conv_kernel=0"], "model.scg.conv_kernel: must be ≥ 1, got 0"),
        (["nonsense"], "--set expects key=value"),
        (["diffusion=3"], "diffusion: expected a section"),
        (["training.strategy=ddp_everywhere"], "training.strategy: 'ddp_everywhere' is not one of auto, ddp"),
        (["training.strategy=ddp_spawn"], "training.strategy: ddp_spawn trains in processes it starts itself, which"),
        (["training.strategy=ddp_notebook"], "hand their step count, optimizer state or figures back to the process"),
        (["loss.bone_weight=-1"], "loss.bone_weight: must be ≥ 0"),
        (["training.unk_rate=1"], "training.unk_rate: must be in [0, 1), got 1"),
        (["training.weight_decay=-0.1"], "training.weight_decay: must be ≥ 0, got -0.1"),
        (
            ["training.ema_decay=fast"],
            "training.ema_decay: 'fast' does not fit float or null (training.ema_decay: expected a number, got 'fast')",
        ),
    ],
)
def test_bad_values_are_rejected_with_the_valid_choices(overrides, message):
    with pytest.raises(ConfigError, match=None) as err:
        load_config("configs/tiny.yaml", overrides)
    assert message in str(err.value)
    assert "tiny.yaml" in str(err.value) or "--set" in str(err.value)


def test_an_unknown_section_in_a_set_is_blamed_on_the_set():
    with pytest.raises(ConfigError) as err:
        load_config("configs/tiny.yaml", ["bogus.key=1"])
    assert str(err.value).startswith("--set bogus.key=1: unknown key 'bogus'")


def test_overrides_are_typed_by_yaml():
    cfg = load_config("configs/paper.yaml", ["model.focal.enabled=false", "training.lr=3e-4", "data.path=/x"])
    assert cfg.model.focal.enabled is False and cfg.training.lr == 3e-4 and cfg.data.path == "/x"
    assert load_config(None).model.width == 512  # defaults are the paper's
    switches = ["model.focal.enabled=0", "model.scg.enabled=1", "model.focal.semantic_mask=no"]
    off = load_config("configs/paper.yaml", switches)
    assert off.model.focal.enabled is False and off.model.scg.enabled is True
    assert off.model.focal.semantic_mask is False


def test_ablation_configs_switch_one_thing_each():
    """Each row changes the model's switches alone (and trains into a directory of its own, not the base run's);
    each sets every switch, so a row layered after another is that row, not a third one."""
    base = to_dict(load_config("configs/paper.yaml"))
    rows = sorted(Path("configs/ablations").glob("*.yaml"))  # benchmarks/quality.py's ROWS name each (its tests)
    assert len(rows) >= 7
    for path in rows:
        row = to_dict(load_config(["configs/paper.yaml", path]))
        diff = _diff(base, row)
        assert all(k.startswith("model.") for k in diff if k != "training.output_dir"), f"{path} changes {diff}"
        assert bool(set(diff) - {"training.output_dir"}) == (path.stem != "full"), f"{path} changes {diff}"
        assert row["training"]["output_dir"] == f"runs/ablations/{path.stem}"
        for other in rows:
            unset = _diff(row, to_dict(load_config(["configs/paper.yaml", other, path])))
            assert not unset, f"{path} layered after {other} is not {path.name} alone: {path} should set {unset}"


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in a:
        if isinstance(a[k], dict):
            out += _diff(a[k], b[k], f"{prefix}{k}.")
        elif a[k] != b[k]:
            out.append(prefix + k)
    return out


def test_keys_of_older_versions_move_to_their_new_section():
    old = {"training": {"bone_weight": 0.3, "joint_loss_space": "model", "hand_weight": 2.0, "length_weight": 0.5,
                        "bone_mode": "direction", "lr": 0.01},
           "model": {"scg": {"weight": 0.02, "alpha": 5.0}}}  # fmt: skip
    cfg = from_dict(old)
    assert cfg.loss.bone_weight == 0.3 and cfg.loss.joint_space == "model" and cfg.loss.hand_weight == 2.0
    assert cfg.loss.length_weight == 0.5 and cfg.loss.bone_mode == "direction" and cfg.loss.scg_weight == 0.02
    assert cfg.training.lr == 0.01 and cfg.model.scg.alpha == 5.0
    assert old["training"]["bone_weight"] == 0.3  # the caller's dictionary is left as it was
    # the back-translator never had these terms: an old back-translator checkpoint's keys are dropped
    bt = from_dict({"training": {"bone_weight": 0.1, "lr": 0.002}}, BackTranslatorConfig)
    assert bt.training.lr == 0.002


@pytest.mark.parametrize("setting", ["training.ema_decay=0.999", "training.unk_rate=0.5", "training.compile=true"])
def test_the_generators_training_settings_are_refused_for_the_backtranslator(setting):
    """It has no EMA, gloss dropout or compiled loss: recorded in its config, they would say what never ran."""
    with pytest.raises(ConfigError, match=rf"{setting.split('=')[0]}: a setting of the generator's training"):
        load_config("configs/backtranslator.yaml", [setting], schema=BackTranslatorConfig)


def test_an_old_checkpoint_still_loads_for_sampling(trained, tmp_path):
    import torch

    from fgdm.sampling import load_for_sampling

    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    config = ckpt["hyper_parameters"]["config"]
    loss = config.pop("loss")  # written as fgdm 0.2 did: the weights inside training and model.scg
    config["training"] |= {"bone_weight": loss["bone_weight"], "joint_loss_space": loss["joint_space"],
                           "hand_weight": loss["hand_weight"], "length_weight": loss["length_weight"],
                           "bone_mode": loss["bone_mode"]}  # fmt: skip
    config["model"]["scg"]["weight"] = loss["scg_weight"]
    torch.save(ckpt, tmp_path / "old.ckpt")
    old, new = load_for_sampling(tmp_path / "old.ckpt"), load_for_sampling(trained / "checkpoints" / "last.ckpt")
    assert old.cfg == new.cfg


def test_an_old_key_name_in_a_later_layer_overrides_as_any_key_does(tmp_path):
    """fgdm 0.2's names (training.bone_weight, model.scg.weight): the later file or --set wins, whichever name it
    uses; one file that sets a value under both names is refused as ambiguous."""
    assert load_config("configs/tiny.yaml", ["model.scg.weight=0.5"]).loss.scg_weight == 0.5  # tiny sets the new
    assert (
        load_config("configs/tiny.yaml", ["training.bone_weight=0.2", "loss.bone_weight=0.3"]).loss.bone_weight == 0.3
    )
    assert (
        load_config("configs/tiny.yaml", ["loss.bone_weight=0.3", "training.bone_weight=0.2"]).loss.bone_weight == 0.2
    )
    with pytest.raises(ConfigError, match=r"--set training.hand_weight=abc: loss.hand_weight"):
        load_config("configs/tiny.yaml", ["training.hand_weight=abc"])
    (tmp_path / "old.yaml").write_text("training:\n  joint_loss_space: pose\n")
    assert load_config(["configs/synth.yaml", tmp_path / "old.yaml"]).loss.joint_space == "pose"
    (tmp_path / "both.yaml").write_text("training:\n  bone_weight: 0.2\nloss:\n  bone_weight: 0.3\n")
    with pytest.raises(ConfigError, match=r"training.bone_weight \(the old name of loss.bone_weight\) and"):
        load_config(["configs/tiny.yaml", tmp_path / "both.yaml"])


def _error(paths, overrides=()) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(paths, list(overrides))
    assert "\n" not in str(err.value)  # one line
    return str(err.value)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_set_value_is_refused_not_read_as_null(value):
    """data.path=$PHOENIX with the variable unset must not train on the embedded synthetic data."""
    message = _error("configs/paper.yaml", [f"data.path={value}"])
    assert message.startswith(f"--set data.path={value}: an empty value") and "write data.path=null" in message
    assert load_config("configs/paper.yaml", ["data.path=null"]).data.path is None  # null, written as such
    assert load_config("configs/paper.yaml", ["data.path=/x"]).data.path == "/x"


def test_a_key_given_twice_in_a_file_is_refused_with_both_lines(tmp_path):
    text = Path("configs/tiny.yaml").read_text(encoding="utf-8")
    first = text.split("\n").index("training:") + 1
    (tmp_path / "c.yaml").write_text(text + "training:\n  max_steps: 5\n", encoding="utf-8")
    second = len(text.split("\n"))
    message = _error(tmp_path / "c.yaml")
    assert message.startswith(f"{tmp_path / 'c.yaml'}:{second}: training: given twice, at lines {first} and {second}")
    (tmp_path / "d.yaml").write_text("model:\n  width: 32\n  focal: {layers: 1, layers: 2}\n", encoding="utf-8")
    assert _error(tmp_path / "d.yaml").startswith(
        f"{tmp_path / 'd.yaml'}:3: model.focal.layers: given twice, on line 3"
    )


@pytest.mark.parametrize(
    ("override", "value"),
    [
        ("data.path=[v2] phoenix", "[v2] phoenix"),  # YAML: a flow sequence, then an error
        ("data.path=@foo", "@foo"),  # YAML: a reserved character
        ("training.output_dir=*runs", "*runs"),  # YAML: an alias
        ("data.path=: x", ": x"),
        ("data.path=/data/my phoenix #2", "/data/my phoenix #2"),  # a # is never a comment
        ("data.path=no", "no"),  # not YAML 1.1's false
        ('data.path="null"', "null"),  # quoted: a string
        ("data.vocab= v.txt ", "v.txt"),
        ("data.vocab=~", None),
    ],
)
def test_a_set_value_of_a_path_key_is_the_text_as_written(override, value):
    section, key = override.split("=")[0].split(".")
    assert getattr(getattr(load_config("configs/tiny.yaml", [override]), section), key) == value


@pytest.mark.parametrize("key", ["data.path", "data.vocab", "training.output_dir"])
def test_a_path_under_the_home_is_the_homes_from_a_set_or_a_file(key, tmp_path):
    """The shell leaves ``--set training.output_dir=~/runs/x`` as written: a literal ``~`` folder held part of the run
    and Lightning (which expands it) the rest. Paths starting with ~ are the home's, wherever they are given."""
    section, name = key.split(".")
    assert getattr(getattr(load_config("configs/tiny.yaml", [f"{key}=~/runs/x"]), section), name) == str(
        Path.home() / "runs/x"
    )
    layer = tmp_path / "home.yaml"
    layer.write_text(f"{section}:\n  {name}: '~/x'\n")
    assert getattr(getattr(load_config(["configs/tiny.yaml", layer]), section), name) == str(Path.home() / "x")
    assert getattr(getattr(load_config("configs/tiny.yaml", [f"{key}=runs/~x"]), section), name) == "runs/~x"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.lr=@foo", "--set training.lr=@foo: training.lr: expected a number, got '@foo'"),
        ("training.lr=[1", "--set training.lr=[1: training.lr: expected a number, got '[1'"),
        ("training.seed=42 # x", "--set training.seed=42 # x: training.seed: expected an integer, got '42 # x'"),
        ("training.max_steps=0x10", "--set training.max_steps=0x10: training.max_steps: expected an integer"),
        ("training.seed=0042", "--set training.seed=0042: training.seed: 0042 is ambiguous: YAML 1.1 reads"),
        ("training.seed=-0042", "octal (-34), others as decimal (-42): write -42 or -34"),
        ("training.seed=00", "00 is ambiguous: YAML 1.1 reads an integer with a leading 0 as octal: write 0"),
    ],
)
def test_a_set_value_that_yaml_would_misread_is_refused_naming_the_set(override, message):
    assert message in _error("configs/tiny.yaml", [override])


def test_set_values_of_other_keys_read_as_their_type():
    cfg = load_config("configs/tiny.yaml", ["training.max_steps=1_000", "training.seed=0", "model.scg.enabled=off",
                                            "training.ema_decay=null", "training.compile=reduce-overhead"])  # fmt: skip
    assert (cfg.training.max_steps, cfg.training.seed, cfg.model.scg.enabled) == (1000, 0, False)
    assert cfg.training.ema_decay is None and cfg.training.compile == "reduce-overhead"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "training:\n  seed: 0042\n",
            ":2: training.seed: 0042 is ambiguous: YAML 1.1 reads an integer with a leading 0",
        ),
        ("training:\n  max_steps: 0x10\n", ":2: training.max_steps: 0x10 is not written in decimal (YAML 1.1 reads it"),
        (
            "training:\n  max_steps: 1:30\n",
            ":2: training.max_steps: 1:30 is not written in decimal (YAML 1.1 reads it as 90)",
        ),
        ("training:\n  lr: 1:30.5\n", ":2: training.lr: 1:30.5 is not written in decimal"),
        ("training:\n  max_steps: 1" + "0" * 5000 + "\n", ":2: training.max_steps: an integer of 5001 characters"),
        ("training:\n  seed: 2020-13-45\n", ": invalid YAML (month must be in 1..12)"),
    ],
)
def test_a_number_in_a_file_that_yaml_reads_otherwise_than_it_looks_is_refused(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    assert _error(tmp_path / "c.yaml").startswith(f"{tmp_path / 'c.yaml'}{message}")


@pytest.mark.parametrize("devices", [1, 4, -1, "auto", "0,1", "1,", " 0, 2 ", "2", "-1"])
def test_training_devices_takes_what_lightning_reads(devices):
    assert TrainingConfig(devices=devices).devices == devices


@pytest.mark.parametrize("devices", [0, -2, "abc", "0,0", "", ",", "1.5", "0", "1 2", "0,-1", "Auto"])
def test_training_devices_refuses_what_lightning_would_not_read(devices):
    with pytest.raises(ConfigError, match=r"^training\.devices: must be "):
        TrainingConfig(devices=devices)


def test_a_bad_devices_string_from_a_set_is_blamed_on_it():
    message = _error("configs/tiny.yaml", ["training.devices=abc"])
    assert message.startswith("--set training.devices=abc: training.devices: must be a count ≥ 1, -1 or auto")
    message = _error("configs/tiny.yaml", ["training.accelerator=cpu", "training.devices=0,1"])
    assert message.startswith("--set training.accelerator=cpu, --set training.devices=0,1: training.devices: the cpu")
    assert load_config("configs/tiny.yaml", ["training.accelerator=cpu", "training.devices=2"]).training.devices == 2


@pytest.mark.parametrize(
    "override",
    [
        "loss.hand_weight=.nan", "loss.bone_weight=.nan", "loss.scg_weight=.inf", "loss.length_weight=-.inf",
        "diffusion.data_scale=.nan", "diffusion.data_scale=.inf", "training.lr=.inf", "training.min_lr=.nan",
        "diffusion.cosine_s=.inf", "training.weight_decay=.inf", "training.weight_decay=inf", "training.lr=1e999",
        "diffusion.eta=NaN", "model.scg.alpha=.nan", "training.max_minutes=.inf", "training.ema_decay=.nan",
        "training.lr=1" + "0" * 400,
    ],
)  # fmt: skip
def test_a_non_finite_number_is_refused_naming_the_key(override):
    key, message = override.split("=")[0], _error("configs/tiny.yaml", [override])
    assert message.startswith(f"--set {override}: {key}: ") and f"{key}: must be a finite number" in message


def test_a_non_finite_number_in_a_file_is_refused_naming_file_and_key(tmp_path):
    (tmp_path / "c.yaml").write_text("diffusion:\n  data_scale: .nan\n", encoding="utf-8")
    assert (
        _error(tmp_path / "c.yaml") == f"{tmp_path / 'c.yaml'}: diffusion.data_scale: must be a finite number, got nan"
    )
    (tmp_path / "bt.yaml").write_text("model:\n  label_smoothing: .nan\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"model\.label_smoothing: must be a finite number"):
        load_config(tmp_path / "bt.yaml", schema=BackTranslatorConfig)


@pytest.mark.parametrize("section", ["training", "testing"])
@pytest.mark.parametrize(("seed", "ok"), [(0, True), (2**32 - 1, True), (-1, False), (2**32, False), (2**64, False)])
def test_training_and_validation_seeds_are_32_bit_seeds(section, seed, ok):
    key = f"{section}.seed"
    if ok:
        assert getattr(load_config("configs/tiny.yaml", [f"{key}={seed}"]), section).seed == seed
    else:
        message = _error("configs/tiny.yaml", [f"{key}={seed}"])
        assert message == f"--set {key}={seed}: {key}: must be in [0, 2**32 − 1 = 4294967295], got {seed}"


@pytest.mark.parametrize(
    ("overrides", "blamed", "key"),
    [
        (["training.lr=5e-05"], "--set training.lr=5e-05", "training.min_lr"),
        (["training.min_lr=1", "training.lr=0.5"], "--set training.min_lr=1, --set training.lr=0.5", "training.min_lr"),
        (["training.schedule=cosine", "training.lr=5e-05"], "--set training.schedule=cosine, --set training.lr=5e-05",
         "training.min_lr"),
        (["model.width=33"], "--set model.width=33", "model.general.heads"),
        (["diffusion.timesteps=3"], "--set diffusion.timesteps=3", "diffusion.sampling_steps"),
        (["training.lr=1", "training.lr=5e-05"], "--set training.lr=5e-05", "training.min_lr"),  # the last counts
    ],
)  # fmt: skip
def test_a_check_across_keys_blames_every_set_it_read(overrides, blamed, key):
    assert _error("configs/tiny.yaml", overrides).startswith(f"{blamed}: {key}: ")


def test_a_check_across_keys_blames_the_file_when_no_set_is_involved(tmp_path):
    (tmp_path / "c.yaml").write_text("training:\n  lr: 5.0e-5\n", encoding="utf-8")
    message = _error(["configs/tiny.yaml", tmp_path / "c.yaml"], ["training.seed=3"])
    assert message.startswith(f"configs/tiny.yaml + {tmp_path / 'c.yaml'}: training.min_lr: the plateau schedule")
    with pytest.raises(ConfigError) as err:  # the back-translator's own check across keys
        load_config("configs/backtranslator.yaml", ["model.width=30"], schema=BackTranslatorConfig)
    assert str(err.value).startswith("--set model.width=30: model.heads: model.width 30 is not divisible by")


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("data.path=", "fgdm: error: --set data.path=: an empty value"),
        ("training.devices=abc", "fgdm: error: --set training.devices=abc: training.devices: must be a count"),
        ("training.lr=@foo", "fgdm: error: --set training.lr=@foo: training.lr: expected a number"),
        ("diffusion.data_scale=.nan", "fgdm: error: --set diffusion.data_scale=.nan: diffusion.data_scale: must be"),
    ],
)
def test_the_cli_refuses_a_bad_set_in_one_line(override, says, capsys):
    from fgdm.cli import main

    assert main(["train", "configs/tiny.yaml", "--set", override, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(says) and err.count("\n") == 1 and "Traceback" not in err


def test_asgcn_without_a_graph_is_refused_by_the_config_naming_its_keys():
    with pytest.raises(ConfigError, match=r"model.focal.topology: false beside model.focal.contextual: false"):
        load_config("configs/tiny.yaml", ["model.focal.topology=false", "model.focal.contextual=false"])
    load_config(
        "configs/tiny.yaml", ["model.focal.topology=false", "model.focal.contextual=false", "model.focal.enabled=false"]
    )  # fmt: skip  (no Focal stage: nothing to say)


def test_a_folder_or_the_other_models_config_is_named_as_such():
    with pytest.raises(ConfigError, match=r"configs/ablations is a directory: name its YAML files"):
        load_config(["configs/tiny.yaml", "configs/ablations"])
    with pytest.raises(
        ConfigError, match=r"unknown key .*\(if it is the other model's config: fgdm backtranslator train reads it\)$"
    ):
        load_config("configs/backtranslator.yaml")
    with pytest.raises(
        ConfigError, match=r"unknown key 'loss'.*\(if it is the other model's config: fgdm train reads it\)$"
    ):
        load_config("configs/synth.yaml", schema=BackTranslatorConfig)
    with pytest.raises(ConfigError, match=r"unknown key 'model.bogus'[^(]*$"):  # a typo: no such hint
        load_config("configs/synth.yaml", ["model.bogus=1"])
