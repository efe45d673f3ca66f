"""Shared builders of the model tests: a tiny config, a padded batch, and inputs that carry signal.

A plain module (not a conftest fixture) so that tests import exactly what they use:
``from helpers import V, batch, tiny``.
"""

import torch

from fgdm.config import Config, from_dict

V = 20  # gloss vocabulary size of every tiny model


def tiny(**overrides) -> Config:
    """A tiny FGDM config; ``overrides`` are dotted keys, e.g. ``tiny(**{"model.focal.enabled": False})``."""
    raw = {
        "model": {
            "width": 32,
            "gloss_encoder": {"layers": 1, "heads": 2, "ff": 64},
            "focal": {"layers": 2, "width": 8, "neighbors": 2, "tcn_kernel": 3},
            "general": {"layers": 1, "heads": 2, "ff": 64, "dropout": 0.0},
            "scg": {"conv_width": 16, "lstm_hidden": 8, "lstm_layers": 1},
        },
        "diffusion": {"timesteps": 100},
    }
    for key, value in overrides.items():
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return from_dict(raw)


def batch(B=3, S=12, L=4, seed=0):
    """(pose, frame_mask, gloss, gloss_mask): sequence 0 full, 1 and 2 padded in frames and glosses."""
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(B, S, 50, 3, generator=g) * 0.2
    frame_mask = torch.ones(B, S, dtype=torch.bool)
    frame_mask[1, S - 4 :] = False
    frame_mask[2, S - 7 :] = False
    gloss = torch.randint(4, V, (B, L), generator=g)
    gloss_mask = torch.ones(B, L, dtype=torch.bool)
    gloss_mask[1, L - 1 :] = False
    gloss_mask[2, L - 2 :] = False
    gloss[~gloss_mask] = 1
    return pose * frame_mask[..., None, None], frame_mask, gloss, gloss_mask


def activate(model, seed=0):
    """Randomises the zero-initialised parameters so every path carries signal."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if any(k in name for k in ("aggregate", "separation", "prior_offset")):
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


def asgcn_inputs(B=2, S=10, J=50, D=8, L=3, Dg=32):
    """(h, cond, frame_mask, gloss_mask) for an ASGCN layer of width D under a D_g-wide gloss encoding."""
    g = torch.Generator().manual_seed(1)
    return (torch.randn(B, S, J, D, generator=g), torch.randn(B, L, Dg, generator=g),
            torch.ones(B, S, dtype=torch.bool), torch.ones(B, L, dtype=torch.bool))  # fmt: skip
