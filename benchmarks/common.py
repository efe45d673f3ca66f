"""What the benchmark scripts share with the ``fgdm`` command: argument types that refuse what no one can mean
(``fgdm.cli.arguments``), results that are not replaced without ``--overwrite``, and bad input and warnings reported
in one line. A sibling module: the scripts run as ``python benchmarks/NAME.py``, which puts this folder on the path."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from fgdm.cli import describe
from fgdm.cli.arguments import count, nonnegative, number, positive, positive_int, probability  # noqa: F401
from fgdm.cli.refusals import refuse_existing, refuse_unwritable  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]  # the project: its configs/ are the scripts' defaults


def shipped(config: str) -> str:
    """``config`` as given where it is found from here, else the project's file of that name: the default
    ``configs/paper.yaml`` of a script run from another directory is the project's."""
    return str(ROOT / config) if not Path(config).exists() and (ROOT / config).is_file() else config


class InputError(ValueError):
    """An argument or an input that a benchmark script refuses."""


def _one_line_warnings(name: str) -> None:
    """Warnings shown as the ``fgdm`` command shows them, in one line (``NAME.py: warning: ...``), without the
    source file and line. Set as ``warnings.showwarning``, not ``formatwarning``: Lightning's import and
    ``fgdm.cli.quiet_lightning`` replace the formatter, and would bring the file's path back or name ``fgdm``."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        with contextlib.suppress(OSError):  # stderr gone: as with Python's own, the warning is lost
            print(f"{name}: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show


def run(main: Callable[[], object]) -> None:
    """``main()``, with bad input (what fgdm refuses with ``ValueError``: a config, data, a device, results that
    are there already; a file that is not there or cannot be written; an :class:`InputError`) reported as the
    ``fgdm`` command reports it: ``NAME.py: error: ...``, exit status 1 (``FGDM_DEBUG=1`` shows the traceback too),
    and warnings in one line, ``NAME.py: warning: ...``. Any other failure keeps its traceback: in a benchmark it
    is a bug."""
    name = Path(sys.argv[0]).name
    _one_line_warnings(name)
    try:
        main()
    except BrokenPipeError:  # `NAME.py … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (ValueError, OSError) as err:
        if os.environ.get("FGDM_DEBUG"):
            raise
        print(f"{name}: error: {describe(err)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)


def machine(device: str = "cpu") -> str:
    """What a figure was measured on: the CPU's model, the threads PyTorch uses, PyTorch's version, and the GPU's
    name where ``device`` is one."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    where = f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if str(device).startswith("cuda"):
        where += f", {torch.cuda.get_device_name(torch.device(device))}"
    return where
