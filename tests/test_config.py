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
        (["nonsense"], "--set expects key=value"),
        (["diffusion=3"], "diffusion: expected a section"),
    ],
)
def test_bad_values_are_rejected_with_the_valid_choices(overrides, message):
    with pytest.raises(ConfigError, match=None) as err:
        load_config("configs/tiny.yaml", overrides)
    assert message in str(err.value)
    assert "tiny.yaml" in str(err.value) or "--set" in str(err.value)


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
