"""Loading configs: commented YAML files layered in order, ``--set key=value`` overrides, type checks.

A file may not give a key twice, nor write a number otherwise than in decimal (YAML 1.1 reads 0042 as octal);
a ``--set`` value is not YAML but read as its key's type (:func:`_parse_value`): a path is the text as written.

Unknown keys and bad values are rejected with messages that name the key and list the valid choices;
the resolved config is stored with every checkpoint (:func:`to_dict`) and rebuilt from it
(:func:`from_dict`), moving keys that older versions kept elsewhere (:func:`upgrade`).
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import math
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml

from fgdm.config.moved import MOVED, upgrade
from fgdm.config.schema import Config, ConfigError
from fgdm.encoding import not_utf8, whole_file_problem


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
        if type(value) is int and value in (0, 1):  # --set ema.enabled=0, as YAML's no and off are taken
            return bool(value)
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        number = value
        if isinstance(value, str):  # PyYAML (YAML 1.1) reads 3e-4 as a string; accept what float() reads
            with contextlib.suppress(ValueError):
                number = float(value)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = float(number)
        except OverflowError:  # an integer beyond float's range
            raise ConfigError(f"{key}: must be a finite number, got an integer too large for a float") from None
        if not math.isfinite(number):  # every float key: NaN would pass the range checks (NaN < 0 is false)
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return number
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


def from_dict(raw: dict | None, schema: type = Config) -> Any:
    """Builds and validates a config (a :class:`Config` by default) from nested dictionaries.

    Missing keys take their defaults; keys of older versions are moved first (:func:`upgrade`).
    """
    return _build(schema, upgrade(raw or {}, schema))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


# How a --set value reads (not as YAML: a # is part of the value, a leading 0 is refused, nothing is an alias)
_NULL = ("null", "Null", "NULL", "~")
_BOOLS = {w: b for b, words in ((True, "true yes on"), (False, "false no off")) for v in words.split()
          for w in (v, v.title(), v.upper())}  # fmt: skip
_INT = re.compile(r"[-+]?[0-9][0-9_]*")
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")


def _leading_zero(text: str) -> str:
    """Why an integer written with a leading 0 (0042) is refused, in a file or a --set."""
    plain = text.replace("_", "")
    octal = int(plain, 8) if re.fullmatch(r"[-+]?[0-7]+", plain) else int(plain)
    if octal == int(plain):
        return f"{text} is ambiguous: YAML 1.1 reads an integer with a leading 0 as octal: write {int(plain)}"
    return (f"{text} is ambiguous: YAML 1.1 reads an integer with a leading 0 as octal ({octal}), others as decimal "
            f"({int(plain)}): write {int(plain)} or {octal}")  # fmt: skip


def _hint_at(schema: type, parts: list[str]) -> Any:
    """The type hint of a dotted key in ``schema``; None for a key it does not have (:func:`_build` reports it)."""
    hint: Any = schema
    for part in parts:
        if not dataclasses.is_dataclass(hint):
            return None
        hint = typing.get_type_hints(hint).get(part)
    return hint


def _string_only(hint: Any) -> bool:
    """Whether a key takes strings alone (a path, one of some words), or null."""
    if hint is None:
        return False
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    words = (typing.get_origin(a) is Literal and all(isinstance(c, str) for c in typing.get_args(a)) for a in args)
    return all(a is str or a is type(None) or w for a, w in zip(args, words, strict=True))


def _parse_value(text: str, hint: Any) -> Any:
    """A --set value, as its key's type reads it.

    ``"x"`` or ``'x'``: the string x. null or ~: null. A key that takes strings alone (a path) takes the text as
    written, whatever its characters; other keys read true/false (yes/no, on/off), decimal integers (a leading 0
    is refused as ambiguous), .nan and .inf; anything else stays a string, which a number key reads as float()
    does and any other key refuses. Surrounding whitespace is dropped.
    """
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    if value in _NULL:
        return None
    if _string_only(hint):
        return value
    if value in _BOOLS:
        return _BOOLS[value]
    if _INT.fullmatch(value):
        if re.match(r"[-+]?0[0-9_]*[0-9]", value):
            raise ConfigError(_leading_zero(value))
        try:
            return int(value)
        except ValueError:  # misplaced underscores
            return value
    return float(value.replace(".", "", 1)) if _SPECIAL_FLOAT.fullmatch(value) else value


class _NotASectionError(ConfigError):
    """A ``--set`` below a key that the config files give a value, not a section (``given``: what they give)."""

    def __init__(self, message: str, given: str) -> None:
        super().__init__(message)
        self.given = given


def apply_overrides(raw: dict, overrides: list[str], schema: type = Config) -> dict:
    """Applies ``key.sub=value`` strings to a nested dictionary, in place; values read as :func:`_parse_value` says.

    An old key name (:data:`MOVED`) sets its new one. An empty value is refused: it is what an unset shell variable
    gives (``data.path=$DATA``), and null is written ``null``.
    """
    sections = {f.name for f in dataclasses.fields(schema)}
    given: dict[str, str] = {}  # key → the --set that gave it
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        new = MOVED.get(key)
        key = new if new and new.split(".")[0] in sections else key
        if not text.strip():
            raise ConfigError(
                f"--set {item}: an empty value (an unset shell variable?); write {key}=null if you mean null"
            )
        if (earlier := given.setdefault(key, item)) != item:
            warnings.warn(f"--set {earlier}, then --set {item}: {key} given twice, the last taken", stacklevel=2)
        parts = key.split(".")
        try:
            value = _parse_value(text, _hint_at(schema, parts))
        except ConfigError as err:
            raise ConfigError(f"--set {item}: {key}: {err}") from None
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # (load_config names the files that gave it so)
                raise _NotASectionError(f"--set {item}: {part!r} is not a section", given=f"{part}: {node!r}")
        node[parts[-1]] = value
    return raw


def _number_problem(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str | None:
    """Why a number in a YAML file is refused: not written in decimal, so YAML 1.1 (PyYAML) reads it otherwise
    than it looks (0042 is octal 34, 1:30 is base 60: 90), or too long to be any key's value."""
    text, integer = node.value, node.tag == "tag:yaml.org,2002:int"
    if integer and len(text) > 100:
        return f"an integer of {len(text)} characters is too large"
    if integer and re.fullmatch(r"[-+]?0[0-9_]+", text):
        return _leading_zero(text)
    if (integer and not re.fullmatch(r"[-+]?(0|[1-9][0-9_]*)", text)) or (not integer and ":" in text):
        number = loader.construct_object(node)
        return f"{text} is not written in decimal (YAML 1.1 reads it as {number}): write {number}"
    return None


def _check_nodes(loader: yaml.SafeLoader, node: yaml.Node, path: Path, key: str = "", seen: set | None = None) -> None:
    """Refuses what ``yaml.safe_load`` would read silently otherwise than meant: a key given twice (the last one
    wins, a whole section at once) and numbers not written in decimal (:func:`_number_problem`)."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for k, v in node.value:
            name, line = (k.value if isinstance(k, yaml.ScalarNode) else "?"), k.start_mark.line + 1
            where = f"{key}.{name}" if key else name
            if name in lines and isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                twice = f"on line {line}" if lines[name] == line else f"at lines {lines[name]} and {line}"
                raise ConfigError(f"{path}:{line}: {where}: given twice, {twice}; only the last would count (a whole "
                                  "section, if it is one): merge them")  # fmt: skip
            lines[name] = line
            _check_nodes(loader, v, path, where, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_nodes(loader, item, path, f"{key}[{i}]", seen)
    elif node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and (
        problem := _number_problem(loader, node)
    ):
        raise ConfigError(f"{path}:{node.start_mark.line + 1}: {key}: {problem}")


def _load_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load`` and :func:`_check_nodes` between composing and constructing."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(loader, node, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> dict:
    if path.is_dir():
        raise ConfigError(f"{path} is a directory: name its YAML files (e.g. {path / '*.yaml'})")
    if not path.is_file():
        override = "=" in path.name and path.suffix.lower() not in (".yaml", ".yml")
        hint = f" (an override is given with --set {path})" if override else ""
        raise ConfigError(f"{path}: config file not found{hint}")
    data = path.read_bytes()
    if problem := whole_file_problem(data, path.name):
        raise ConfigError(f"{path}: {problem}")
    try:
        raw = _load_yaml(data.decode("utf-8-sig"), path) or {}
    except UnicodeDecodeError as err:
        at = err.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)  # err.start counts after the mark
        line = data[:at].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: {not_utf8(data, at, err.reason, path.name)}") from None
    except yaml.YAMLError as err:  # one line: where, and what the parser expected
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}: column {mark.column + 1}: " if mark is not None else f"{path}: "
        what = "; ".join(str(x) for x in (getattr(err, "context", None), getattr(err, "problem", None)) if x)
        raise ConfigError(f"{where}invalid YAML ({what or str(err).splitlines()[0]})") from None
    except ConfigError:
        raise
    except ValueError as err:  # a constructor's: a date such as 2020-13-45
        raise ConfigError(f"{path}: invalid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections")
    if not raw:  # (a file saved empty by mistake would train on the defaults, unsaid)
        warnings.warn(f"{path}: no settings (empty, or comments only): every key keeps its value", stacklevel=3)
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
    elif isinstance(paths, dict):
        raise ConfigError("load_config reads YAML files; a config given as a dict is read by fgdm.config.from_dict")
    if isinstance(overrides, str):  # one string would be taken character by character
        raise ConfigError(f"overrides: a list of key=value strings, e.g. [{overrides!r}], got one string")
    raw: dict = {}
    for path in map(Path, paths):  # each layer's old key names moved first, so that a later layer's win
        raw = _merge(raw, upgrade(_read_yaml(path), schema))
    where = " + ".join(str(p) for p in paths)
    try:
        apply_overrides(raw, list(overrides or []), schema)
    except _NotASectionError as err:
        if not where:
            raise
        raise ConfigError(f"{err}: {where} gives {err.given}, where a section of keys belongs") from None
    try:
        return from_dict(raw, schema)
    except ConfigError as err:
        text, involved = str(err), {str(err).split(":", 1)[0], *err.also}
        blamed: dict[str, str] = {}  # key → its last --set: the value that counts
        for override in overrides or []:
            key = override.split("=", 1)[0].strip()
            key = MOVED.get(key, key)  # an old name was set under its new one
            parts = key.split(".")  # an unknown section names only its first part: 'bogus' of bogus.key
            if key in involved or any(f"'{'.'.join(parts[:i])}'" in text for i in range(1, len(parts) + 1)):
                blamed[key] = override
        if blamed:
            raise ConfigError(", ".join(f"--set {o}" for o in blamed.values()) + f": {text}") from None
        text += _other_command(raw, schema) if "unknown key" in text else ""
        raise ConfigError(f"{where}: {text}" if where else text) from None


def _other_command(raw: dict, schema: type) -> str:
    """Where a config that ``schema`` refuses would do for the other model (a back-translator's given to ``fgdm
    train``, or the reverse), the command that reads it: a hint, for a typo can make one pass for the other."""
    from fgdm.config.schema import BackTranslatorConfig

    other, command = (BackTranslatorConfig, "backtranslator train") if schema is Config else (Config, "train")
    try:
        from_dict(raw, other)
    except ConfigError:
        return ""
    return f" (if it is the other model's config: fgdm {command} reads it)"
