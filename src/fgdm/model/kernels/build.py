"""Compiling ``asgcn.c`` with the system C compiler, caching the library, and loading it through ctypes.

The library is compiled once per source, compiler flags, compiler and CPU into a cache directory
(``$FGDM_CACHE`` or ``~/.cache/fgdm``) and reused; without a C compiler :func:`available` is False and
ASGCN keeps its PyTorch path. Three variants (:data:`VARIANTS`) compile the source's three branches:

- ``"native"``, what the model runs: tuned to this CPU (``-march=native``), 16-lane vectors where it has
  AVX-512, else 8-lane AVX ones on x86;
- ``"avx2"``: ``-march=native`` without AVX-512, the 8-lane AVX branch an AVX2 CPU runs (x86 with AVX only);
- ``"portable"``: the generic-vector branch whatever the compiler targets, what a CPU without AVX runs.

The last two are built separately so that the tests can check every branch on one machine.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("asgcn.c")
# -ffast-math lets the compiler vectorise the reductions; the library is linked in a separate step
# without it, so the start-up file that sets flush-to-zero for the whole process is not linked in.
# Without OpenMP (e.g. Apple's clang) the kernel runs on one thread; without -march=native it is portable.
_BASE = ["-O3", "-ffast-math", "-fno-finite-math-only", "-fPIC", "-std=c11"]
FLAG_SETS = [  # (compile flags, link flags), tried in order until one builds
    (["-march=native", *_BASE, "-fopenmp"], ["-shared", "-fopenmp", "-lm"]),
    ([*_BASE, "-fopenmp"], ["-shared", "-fopenmp", "-lm"]),
    (_BASE, ["-shared", "-lm"]),
]
VARIANTS: dict[str, list[tuple[list[str], list[str]]]] = {
    "native": FLAG_SETS,
    # this CPU without AVX-512 (a compiler that does not know the flag fails, and the variant is unavailable)
    "avx2": [([*FLAG_SETS[0][0], "-mno-avx512f"], FLAG_SETS[0][1])],
    # the fallbacks, with __AVX__ and __AVX512F__ undefined in case the compiler targets them by default: the
    # generic-vector branch (exp rounded by conversion and floor, plain division), as on a CPU without AVX
    "portable": [
        (["-U__AVX__", "-U__AVX512F__", *compile_flags], link_flags) for compile_flags, link_flags in FLAG_SETS[1:]
    ],
}


class CArgs(ctypes.Structure):
    """``asgcn_args`` of ``asgcn.c``: sizes, then one pointer per tensor (NULL for a part switched off)."""

    _fields_ = [(name, ctypes.c_int64) for name in ("S", "J", "D", "K", "W", "L", "Jp", "Dp")] + [
        (name, ctypes.c_void_p)
        for name in ("q", "kt", "kk", "valid", "wagg", "bagg", "prior", "g", "proto", "sw", "sb", "x", "xb")
    ]


def cache_dir() -> Path:
    root = os.environ.get("FGDM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fgdm"
    )
    return Path(root) / "kernels"


def cpu_signature() -> str:
    """What -march=native depends on: the machine and, on Linux, the CPU's feature flags."""
    sig = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            sig += next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return sig


def find_compiler() -> str | None:
    """``$CC``, else ``cc`` or ``gcc`` on the PATH, else None."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def build(compiler: str, variant: str = "native", source_file: Path = SOURCE) -> Path:
    """Compiles a variant of the library into the cache (or finds it there); falls back to the variant's next
    flag set if needed. ``source_file``: another version of asgcn.c (benchmarks/kernel_ab.py compares two)."""
    flag_sets = VARIANTS[variant]
    source, cpu = source_file.read_bytes(), cpu_signature().encode()
    targets = []
    for compile_flags, link_flags in flag_sets:
        flags = " ".join(compile_flags + link_flags).encode()
        key = hashlib.sha256(b"\0".join([source, flags, cpu, compiler.encode()])).hexdigest()[:16]
        targets.append(cache_dir() / f"asgcn-{key}.so")
    for target in targets:  # a build from an earlier run, even with fallback flags, is not attempted again
        if target.exists():
            return target
    errors = []
    for (compile_flags, link_flags), target in zip(flag_sets, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            obj, lib = Path(tmp) / "asgcn.o", Path(tmp) / "asgcn.so"
            for cmd in (
                [compiler, *compile_flags, "-c", str(source_file), "-o", str(obj)],
                [compiler, str(obj), *link_flags, "-o", str(lib)],
            ):
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    errors.append(f"`{' '.join(cmd)}` failed:\n{run.stderr.strip()}")
                    break
            else:
                os.replace(lib, target)  # atomic: concurrent processes (DDP) each build, one file wins
                return target
    raise RuntimeError("\n".join(errors))


_lock = threading.Lock()
_libraries: dict[str, ctypes.CDLL | None] = {}  # by variant: loaded, or None after a failure
_errors: dict[str, str] = {}
_warned = False


def load(variant: str = "native") -> ctypes.CDLL | None:
    """A variant of the library with its functions declared, built on first use; None if that fails (see
    unavailable_reason)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ASGCN kernel variant {variant!r}; one of {', '.join(VARIANTS)}")
    with _lock:
        if variant in _libraries:
            return _libraries[variant]
        _libraries[variant] = None
        compiler = find_compiler()
        if compiler is None:
            _errors[variant] = "no C compiler found (set CC or install gcc)"
            return None
        try:
            lib = ctypes.CDLL(str(build(compiler, variant)))
        except (OSError, RuntimeError) as e:
            _errors[variant] = f"building the ASGCN kernel failed: {e}"
            return None
        _libraries[variant] = declare(lib)
        return lib


def declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declares the library's argument and result types: ASGCN's forward and backward passes, the LayerNorm's
    and the build's description (asgcn_uses_avx, asgcn_lanes); an older asgcn.c may lack the last two kinds."""
    args = ctypes.POINTER(CArgs)
    lib.asgcn_forward.argtypes = [args, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p]
    lib.asgcn_backward.argtypes = [args, ctypes.c_int64, ctypes.c_int] + [ctypes.c_void_p] * 10
    lib.asgcn_forward.restype = lib.asgcn_backward.restype = ctypes.c_int
    if hasattr(lib, "rownorm_forward"):
        pointer, size = ctypes.c_void_p, ctypes.c_int64
        lib.rownorm_forward.argtypes = [pointer] * 3 + [ctypes.c_float, size, size, ctypes.c_int] + [pointer] * 3
        lib.rownorm_backward.argtypes = [pointer] * 5 + [size, size, ctypes.c_int] + [pointer] * 3
        lib.rownorm_forward.restype = lib.rownorm_backward.restype = ctypes.c_int
    for name in ("asgcn_uses_avx", "asgcn_lanes"):
        if hasattr(lib, name):
            getattr(lib, name).argtypes, getattr(lib, name).restype = [], ctypes.c_int
    return lib


def threads(items: int) -> int:
    """Threads for a library call over ``items`` frames or rows: PyTorch's, at most one per item, at least one."""
    return max(1, min(torch.get_num_threads(), items))


def check(failed: int, what: str) -> None:
    """MemoryError if ``failed`` of a call's thread ranges (a library function's return value) could not
    allocate their scratch memory."""
    if failed:
        raise MemoryError(f"the {what} could not allocate its scratch memory")


def available(variant: str = "native") -> bool:
    """True when the kernel is (or can be) built and loaded; see :func:`unavailable_reason`."""
    if variant in _libraries:  # known: no lock to take (which torch.compile could not trace)
        return _libraries[variant] is not None
    return load(variant) is not None


def unavailable_reason(variant: str = "native") -> str | None:
    """Why the kernel cannot be used, or None."""
    load(variant)
    return _errors.get(variant)


def warn_unavailable() -> None:
    """Says once per process that ASGCN falls back to its (slower) PyTorch path, and why."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"the fused ASGCN kernel is unavailable ({unavailable_reason()}); ASGCN runs on its slower PyTorch "
            "path (set model.focal.kernel=torch to choose it explicitly)",
            stacklevel=3,
        )
