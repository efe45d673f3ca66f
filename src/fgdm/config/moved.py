"""Config keys that moved between versions: configs and checkpoints of older fgdm versions load, their keys in
their new place."""

from __future__ import annotations

import dataclasses

from fgdm.config.schema import Config, ConfigError

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
