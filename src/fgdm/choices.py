"""What a sampling run may be asked for, in plain Python: how many frames (:class:`LengthMode`, at most
:data:`MAX_FRAMES`) and in which precision (:data:`PRECISIONS`).

:mod:`fgdm.sampling` samples with them; the command line's parser reads them from here, without loading PyTorch,
so that ``fgdm --help`` and a mistyped option answer at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Literal

from fgdm.config.schema import MAX_FRAMES

if TYPE_CHECKING:
    from fgdm.config import Config
    from fgdm.data.corpus import Sample

PRECISIONS = ("32", "bf16")  # of sampling: float32, or the General part in bfloat16 (Denoiser.lower_precision)
# torch.compile's modes, as training.compile and sampling's compile take them (or True for "default"); the two
# "max-autotune" modes search kernels' settings for minutes, "reduce-overhead" and "max-autotune" record CUDA graphs
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def whole(value: object) -> bool:
    """A whole number: a Python or NumPy integer, not a bool (a frame count, a seed, a batch size)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class LengthMode:
    """How many frames to sample per sequence: ``gt`` (the reference's), ``predicted`` (the length head)
    or ``fixed`` (``frames`` each)."""

    kind: Literal["gt", "predicted", "fixed"] = "gt"
    frames: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("gt", "predicted", "fixed"):
            raise ValueError(f"length: the kind is gt, predicted or fixed, got {self.kind!r}")
        if self.frames is not None and not whole(self.frames):
            raise ValueError(f"length: a fixed length is a whole number of frames, got {self.frames!r}")
        fixed = self.kind == "fixed"
        if not fixed and self.frames is not None:
            raise ValueError(f"length: {self.kind} takes no frame count (fixed does), got {self.frames}")
        if fixed != (self.frames is not None) or (fixed and not 1 <= (self.frames or 0) <= MAX_FRAMES):
            raise ValueError(f"length: a fixed length is a frame count from 1 to {MAX_FRAMES}, got {self.frames}")

    @classmethod
    def parse(cls, text: str | int) -> LengthMode:
        """``gt``, ``predicted`` or a whole number of frames ≥ 1."""
        if text in ("gt", "predicted"):
            return cls(text)  # type: ignore[arg-type]
        try:
            if not (isinstance(text, str) or whole(text)):
                raise ValueError  # 34.9 is no frame count (int() would take 34)
            n = int(text)
        except ValueError:
            raise ValueError(
                f"length: expected gt, predicted or a frame count from 1 to {MAX_FRAMES}, got {text!r}"
            ) from None
        return cls("fixed", n)

    @classmethod
    def from_config(cls, cfg: Config, reference: bool = True) -> LengthMode:
        """The config's ``testing.length`` (and ``testing.fixed_length``): how a run samples unless told otherwise;
        without a reference to take a length from (``reference=False``), ``gt`` falls back to ``predicted``."""
        kind = cfg.testing.length
        if kind == "fixed":
            return cls("fixed", cfg.testing.fixed_length)
        return cls("gt") if kind == "gt" and reference else cls("predicted")

    def frame_counts(self, samples: Sequence[Sample] | None = None, n: int | None = None) -> list[int] | None:
        """Frame counts for ``samples`` (or ``n`` sequences without ground truth); None = ask the length head."""
        if self.kind == "predicted":
            return None
        if self.kind == "fixed":
            return [int(self.frames)] * (len(samples) if samples is not None else int(n or 0))  # type: ignore[arg-type]
        if samples is None:
            raise ValueError(
                "length gt takes each length from a reference sequence (--split has them): for a "
                "sentence without one, use --length predicted or a frame count (--length N)"
            )
        return [len(s.pose) for s in samples]

    def __str__(self) -> str:
        return str(self.frames) if self.kind == "fixed" else self.kind
