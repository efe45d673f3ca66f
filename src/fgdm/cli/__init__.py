"""The ``fgdm`` command line: :mod:`fgdm.cli.parser` reads the arguments, :mod:`fgdm.cli.commands` (and
:mod:`fgdm.cli.generate`, ``fgdm generate``) calls the library; here, the one place that turns expected
failures into one line, ``fgdm: error: ...``.

Exit status: 0 done, 1 an expected failure (bad input, missing or corrupt file, no CUDA, a full disk,
non-finite training), 2 a usage error (argparse), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM; training writes
its last checkpoint first). ``--debug`` prints the failure's traceback too.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from fgdm.runtime import DropNoise, drop_noise_warnings, keep_freed_memory, sigterm_raises

INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"fgdm: warning: {message}\n"


def quiet_lightning(quiet: bool = False) -> None:
    """Lightning's notes that say nothing to an fgdm user left out (:data:`fgdm.runtime.NOISE`), and with ``quiet``
    its informational lines too; warnings in one line. For a process that trains (``fgdm train``, the benchmarks)."""
    import lightning  # noqa: F401  (it sets its loggers' levels on import: quiet them afterwards)

    warnings.formatwarning = _one_line_warning  # Lightning's import put its own, with its source file's path
    drop_noise_warnings()
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:  # a handler's filter sees its children's records too
            handler.addFilter(DropNoise())
        if quiet:
            logging.getLogger(name).setLevel(logging.WARNING)


def describe(err: BaseException) -> str:
    """The one line an expected failure prints."""
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.errno is not None:
        where = f"{err.filename}: " if err.filename else ""
        if err.errno == errno.ENOSPC:
            return f"{where}{err.strerror}: free some space and run the command again"
        return f"{where}{err.strerror}"
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, RuntimeError) and "gloo" in str(err) and "by peer" in str(err):  # a rank's connection lost
        return (f"another process of this training ended (killed?), so this one stops too; --resume continues from "
                f"the last checkpoint ({str(err).splitlines()[0][:120]})")  # fmt: skip
    return str(err)


def main(argv: Sequence[str] | None = None) -> int:
    from fgdm.cli.parser import parse

    warnings.formatwarning = _one_line_warning
    drop_noise_warnings()
    keep_freed_memory()  # large tensors reuse freed pages instead of faulting fresh ones in (fgdm.runtime)
    if isinstance(sys.stdout, io.TextIOWrapper):  # an ASCII pipe: "wrote x_\xe4.gif" rather than an error once written
        sys.stdout.reconfigure(errors="backslashreplace")
    args = parse(argv)
    try:
        with sigterm_raises():  # a SIGTERM stops as a Ctrl-C does (143); training notes both during its fit
            if args.command in ("train", "backtranslator"):  # Lightning's import takes seconds: interruptible too
                quiet_lightning(getattr(args, "quiet", False))
            return int(args.func(args) or 0)
    except BrokenPipeError:  # `fgdm … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 1
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM's Terminated (143)
        if args.debug:
            traceback.print_exc()
        status = getattr(err, "exit_status", INTERRUPTED)
        if not getattr(err, "reported", False):  # training says where its last checkpoint is, in one line
            print(f"fgdm: {'interrupted' if status == INTERRUPTED else 'terminated'}", file=sys.stderr)
        return status
    # incl. DataFormatError, ConfigError; ImportError: a dependency installed without its own (imageio's ffmpeg)
    except (ValueError, KeyError, OSError, RuntimeError, ArithmeticError, ImportError) as err:
        if args.debug:
            traceback.print_exc()
        print(f"fgdm: error: {describe(err)}", file=sys.stderr)
        return 1
