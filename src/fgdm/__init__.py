"""fgdm: the Focal–General Diffusion Model for sign language production, from glosses to 3D skeletons.

The public API (imported on first use, so ``import fgdm`` stays light):

    from fgdm import load_for_sampling, generate_poses, evaluate
    loaded = load_for_sampling("runs/synth/checkpoints/best.ckpt")
    (pose,) = generate_poses(loaded, [loaded.vocab.encode_sentence("MORGEN NORD REGEN")], frames=None)

- :func:`fgdm.sampling.load_for_sampling`, :func:`fgdm.sampling.generate_poses`, :func:`fgdm.sampling.generate_for`
  (one sequence per corpus sample), :class:`fgdm.choices.LengthMode`: inference;
- :func:`fgdm.evaluation.protocol.evaluate`: the evaluation protocol (back-translation, DTW, FID);
- :func:`fgdm.data.io.save_sequence`: one sequence to ``.npy`` or ``.pose``;
- :func:`fgdm.config.load_config`: a config from YAML files and ``key=value`` overrides;
- :class:`fgdm.data.vocab.UnknownTokenWarning`, :class:`fgdm.sampling.LongSequenceWarning`: the warnings a service
  may route or filter by category.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from fgdm.version import __version__

_API = {
    "load_for_sampling": "fgdm.sampling",
    "generate_poses": "fgdm.sampling",
    "generate_for": "fgdm.sampling",
    "LengthMode": "fgdm.choices",
    "evaluate": "fgdm.evaluation.protocol",
    "save_sequence": "fgdm.data.io",
    "load_config": "fgdm.config",
    "UnknownTokenWarning": "fgdm.data.vocab",  # a gloss the model does not know, sampled as <unk>
    "LongSequenceWarning": "fgdm.sampling",  # a sequence far longer than the model was trained on
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'fgdm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})  # the lazy names too, for completion
