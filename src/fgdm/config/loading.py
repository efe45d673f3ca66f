"""Loading configs: commented YAML files layered in order, ``--set key=value`` overrides, type checks.

Unknown keys and bad values are rejected with messages that name the key and list the valid choices;
the resolved config is stored with every checkpoint (:func:`to_dict`) and rebuilt from it
(:func:`from_dict`), moving keys that older versions kept elsewhere (:func:`upgrade`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from fgdm.config.schema import Config, ConfigError


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Checks/coerces ``value`` against a type hint, raising :class:`ConfigError` naming ``key``."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return _build(hint, value, key)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: {value!r} does not fit {_type_name(hint)} ({'; '.join(errors)})")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML (YAML 1.1) reads 3e-4 as a string; accept what float() reads
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover


def _type_name(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    names = [getattr(a, "__name__", str(a)) for a in args]
    return " or ".join(names) + (" or null" if type(None) in typing.get_args(hint) else "")


def _build(cls: type, raw: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"unknown key {where!r}; valid keys here: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in raw.items()}
    return cls(**kwargs)


# Keys that moved, old → new: configs and checkpoints written by fgdm 0.2 and earlier still load.
MOVED = {
    "training.joint_loss_space": "loss.joint_space", "training.hand_weight": "loss.hand_weight",
    "training.bone_weight": "loss.bone_weight", "training.bone_mode": "loss.bone_mode",
    "training.length_weight": "loss.length_weight", "model.scg.weight": "loss.scg_weight",
}  # fmt: skip


def upgrade(raw: dict, schema: type = Config) -> dict:
    """A copy of a nested config dictionary with moved keys (:data:`MOVED`) in their new place.

    A schema without the new section (the back-translator's) drops them: they never applied to it.
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    if isinstance(out.get("model"), dict) and isinstance(out["model"].get("scg"), dict):
        out["model"]["scg"] = dict(out["model"]["scg"])
    sections = {f.name for f in dataclasses.fields(schema)}
    for old, new in MOVED.items():
        *path, key = old.split(".")
        node = out
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key not in node:
            continue
        value = node.pop(key)
        section, new_key = new.split(".")
        if section not in sections:
            continue
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # _build reports the bad section
        if new_key in target:
            raise ConfigError(f"{old} (the old name of {new}) and {new} are both set: keep {new}")
        target[new_key] = value
    return out


def from_dict(raw: dict | None, schema: type = Config) -> Any:
    """Builds and validates a config (a :class:`Config` by default) from nested dictionaries.

    Missing keys take their defaults; keys of older versions are moved first (:func:`upgrade`).
    """
    return _build(schema, upgrade(raw or {}, schema))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Applies ``key.sub=value`` strings (values parsed as YAML) to a nested dictionary, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return raw


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:  # one line: where, and what the parser expected
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}: column {mark.column + 1}: " if mark is not None else f"{path}: "
        what = "; ".join(str(x) for x in (getattr(err, "context", None), getattr(err, "problem", None)) if x)
        raise ConfigError(f"{where}invalid YAML ({what or str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections")
    return raw


def _merge(base: dict, top: dict) -> dict:
    """Deep merge: keys of ``top`` win; sections merge recursively."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(
    paths: Path | str | list[Path | str] | None = None, overrides: list[str] | None = None, schema: type = Config
) -> Any:
    """Loads YAML config files (later ones override earlier ones), then ``--set`` overrides.

    Layering lets an ablation file (``configs/ablations/*.yaml``) apply to any base config.
    """
    if paths is None:
        paths = []
    elif isinstance(paths, str | Path):
        paths = [paths]
    raw: dict = {}
    sections = {f.name for f in dataclasses.fields(schema)}
    for path in map(Path, paths):  # each layer's old key names moved first, so that a later layer's win
        raw = _merge(raw, upgrade(_read_yaml(path), schema))
    for item in overrides or []:
        key, eq, value = item.partition("=")
        new = MOVED.get(key.strip())
        apply_overrides(raw, [f"{new}={value}" if eq and new and new.split(".")[0] in sections else item])
    where = " + ".join(str(p) for p in paths)
    try:
        return from_dict(raw, schema)
    except ConfigError as err:
        text = str(err)
        for override in reversed(list(overrides or [])):  # the last --set of the key is the value that counts
            key = override.split("=", 1)[0].strip()
            key = MOVED.get(key, key)  # an old name was set under its new one
            parts = key.split(".")  # an unknown section names only its first part: 'bogus' of bogus.key
            if text.startswith(f"{key}:") or any(f"'{'.'.join(parts[:i])}'" in text for i in range(1, len(parts) + 1)):
                raise ConfigError(f"--set {override}: {text}") from None
        raise ConfigError(f"{where}: {text}" if where else text) from None
