"""Configuration: commented YAML (joeynmt layout) loaded into frozen, validated dataclasses.

:mod:`fgdm.config.schema` holds the sections and their defaults (the model's in :mod:`fgdm.config.model`);
:mod:`fgdm.config.loading` reads YAML, applies overrides and checks every value; :mod:`fgdm.config.moved` moves
keys older versions kept elsewhere. Every key is documented beside its default in the schema.
"""

from fgdm.config.loading import apply_overrides, from_dict, load_config, to_dict
from fgdm.config.model import FocalConfig, GeneralConfig, GlossEncoderConfig, ModelConfig, SCGConfig
from fgdm.config.moved import MOVED, upgrade
from fgdm.config.schema import (
    STRATEGIES,
    SYNTH_SPLIT_SIZES,
    BackTranslatorConfig,
    BackTranslatorModelConfig,
    Config,
    ConfigError,
    DataConfig,
    DiffusionConfig,
    LossConfig,
    TestingConfig,
    TrainingConfig,
)

__all__ = [
    "MOVED", "STRATEGIES", "SYNTH_SPLIT_SIZES", "BackTranslatorConfig", "BackTranslatorModelConfig", "Config",
    "ConfigError", "DataConfig", "DiffusionConfig", "FocalConfig", "GeneralConfig", "GlossEncoderConfig",
    "LossConfig", "ModelConfig", "SCGConfig", "TestingConfig", "TrainingConfig", "apply_overrides", "from_dict",
    "load_config", "to_dict", "upgrade",
]  # fmt: skip
