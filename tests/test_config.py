from pathlib import Path

import pytest

from fgdm.config import BackTranslatorConfig, Config, ConfigError, from_dict, load_config, to_dict

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
        (["model.focal.layers=0"], "model.focal.layers: must be ≥ 1"),
        (["model.general.heads=3"], "not divisible by 3 heads"),
        (["model.focal.tcn_kernel=4"], "must be odd"),
        (["model.scg.conv_kernel=4"], "model.scg.conv_kernel: must be odd, got 4"),
        (["model.scg.conv_kernel=0"], "model.scg.conv_kernel: must be ≥ 1, got 0"),
        (["nonsense"], "--set expects key=value"),
        (["diffusion=3"], "diffusion: expected a section"),
        (["training.strategy=ddp_everywhere"], "training.strategy: 'ddp_everywhere' is not one of auto, ddp"),
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


def test_ablation_configs_switch_one_thing_each():
    base = to_dict(load_config("configs/paper.yaml"))
    rows = sorted(Path("configs/ablations").glob("*.yaml"))
    assert len(rows) == 7
    for path in rows:
        diff = _diff(base, to_dict(load_config(["configs/paper.yaml", path])))
        assert all(k.startswith("model.") for k in diff), (path, diff)
        assert bool(diff) == (path.stem != "full"), (path, diff)


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
