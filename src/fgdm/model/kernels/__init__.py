"""The fused ASGCN kernel (``asgcn.c``): built with the system C compiler on first use, called through ctypes.

Why C: ASGCN's work is ~0.5 GMAC per layer spread over thousands of 50×50 maps; through PyTorch it runs
as small batched products and elementwise passes over (B, S, 2n+1, J, J) tensors at ~14 GFLOP/s. The
kernel keeps one frame's maps in cache and does the whole adjacency and its messages in one pass,
forward and backward (see ``benchmarks/results/speed.md``). Its results equal the PyTorch path's up to
float rounding (``tests/test_kernels.py``).

``build.py`` compiles, caches and loads the library (and says why when it cannot); ``asgcn.py`` checks
the arguments and wraps the library as a differentiable operation; ``norm.py`` does the same for the
library's LayerNorm over narrow rows, the Focal stage's norm. The library's OpenMP threads are
PyTorch's own when both use libgomp (see the note in ``asgcn.c``).
"""

from fgdm.model.kernels.asgcn import ASGCNArgs, Dims, fused_asgcn, padded_size
from fgdm.model.kernels.build import available, unavailable_reason, warn_unavailable
from fgdm.model.kernels.norm import layer_norm

__all__ = [
    "ASGCNArgs",
    "Dims",
    "available",
    "fused_asgcn",
    "layer_norm",
    "padded_size",
    "unavailable_reason",
    "warn_unavailable",
]
