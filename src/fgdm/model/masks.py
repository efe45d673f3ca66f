"""Helpers for validity masks (True = valid position)."""

from __future__ import annotations

import torch


def nothing_padded(mask: torch.Tensor) -> bool:
    """True when every position is valid, so masking can be skipped (the results are the same).

    Checked on the CPU only: on a GPU reading the answer would synchronise the device, so there the
    answer is always False and the masks are applied.
    """
    return mask.device.type == "cpu" and bool(mask.all())
