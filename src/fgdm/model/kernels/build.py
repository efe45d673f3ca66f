"""Compiling ``asgcn.c`` with the system C compiler, caching the library, and loading it through ctypes.

The library is compiled once per source, compiler flags, compiler and CPU into a cache directory
(``$FGDM_CACHE`` or ``~/.cache/fgdm``) and reused; without a C compiler :func:`available` is False and
ASGCN keeps its PyTorch path. Two variants exist: the default one, tuned to this CPU (``-march=native``:
on x86 the AVX branch of ``asgcn.c``), and the *portable* one (``portable=True``), which compiles the
source's generic-vector branch whatever the compiler targets — what a CPU without AVX runs, built
separately so that the tests can check it on any machine.
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

SOURCE = Path(__file__).with_name("asgcn.c")
# -ffast-math lets the compiler vectorise the reductions; the library is linked in a separate step
# without it, so the start-up file that sets flush-to-zero for the whole process is not linked in.
# Without OpenMP (e.g. Apple's clang) the kernel runs on one thread; without -march=native it is portable.
_BASE = ["-O3", "-ffast-math", "-fno-finite-math-only", "-fPIC", "-std=c11"]
FLAG_SETS = [  # (compile flags, link flags), tried in order until one builds
    (["-march=native", *_BASE, "-fopenmp"], ["-shared", "-fopenmp"]),
    ([*_BASE, "-fopenmp"], ["-shared", "-fopenmp"]),
    (_BASE, ["-shared"]),
]
# The fallbacks, with __AVX__ undefined in case the compiler targets AVX by default: the source's
# generic-vector branch (exp rounded by conversion and floor, plain division), as on a CPU without AVX.
PORTABLE_FLAG_SETS = [(["-U__AVX__", *compile_flags], link_flags) for compile_flags, link_flags in FLAG_SETS[1:]]


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


def build(compiler: str, portable: bool = False) -> Path:
    """Compiles the library into the cache (or finds it there); falls back to the next flag set if needed."""
    flag_sets = PORTABLE_FLAG_SETS if portable else FLAG_SETS
    source, cpu = SOURCE.read_bytes(), cpu_signature().encode()
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
                [compiler, *compile_flags, "-c", str(SOURCE), "-o", str(obj)],
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
_libraries: dict[bool, ctypes.CDLL | None] = {}  # by `portable`: loaded, or None after a failure
_errors: dict[bool, str] = {}
_warned = False


def load(portable: bool = False) -> ctypes.CDLL | None:
    """The library with its functions declared, built on first use; None if that fails (see unavailable_reason)."""
    with _lock:
        if portable in _libraries:
            return _libraries[portable]
        _libraries[portable] = None
        compiler = find_compiler()
        if compiler is None:
            _errors[portable] = "no C compiler found (set CC or install gcc)"
            return None
        try:
            lib = ctypes.CDLL(str(build(compiler, portable)))
        except (OSError, RuntimeError) as e:
            _errors[portable] = f"building the ASGCN kernel failed: {e}"
            return None
        args = ctypes.POINTER(CArgs)
        lib.asgcn_forward.argtypes = [args, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p]
        lib.asgcn_backward.argtypes = [args, ctypes.c_int64, ctypes.c_int] + [ctypes.c_void_p] * 10
        lib.asgcn_forward.restype = lib.asgcn_backward.restype = ctypes.c_int
        lib.asgcn_uses_avx.argtypes, lib.asgcn_uses_avx.restype = [], ctypes.c_int
        _libraries[portable] = lib
        return lib


def available(portable: bool = False) -> bool:
    """True when the kernel is (or can be) built and loaded; see :func:`unavailable_reason`."""
    return load(portable) is not None


def unavailable_reason(portable: bool = False) -> str | None:
    """Why the kernel cannot be used, or None."""
    load(portable)
    return _errors.get(portable)


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
