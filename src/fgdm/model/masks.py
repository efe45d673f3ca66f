"""Helpers for validity masks (True = valid position)."""

from __future__ import annotations

import torch


def nothing_padded(mask: torch.Tensor) -> bool:
    """True when every position is valid, so masking can be skipped (the results are the same).

    Checked on the CPU only: on a GPU reading the answer would synchronise the device, so there the
    answer is always False and the masks are applied; so it is under ``torch.compile``, where reading it would
    break the graph.
    """
    return mask.device.type == "cpu" and not torch.compiler.is_compiling() and bool(mask.all())
