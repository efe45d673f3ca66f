"""The ``fgdm`` command line: :mod:`fgdm.cli.parser` reads the arguments, :mod:`fgdm.cli.commands` calls
the library; here, the one place that turns expected failures into ``fgdm CMD: error: ...``."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence

from fgdm.data.pt import DataFormatError
from fgdm.runtime import keep_freed_memory


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"fgdm: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    from fgdm.cli.parser import build_parser

    warnings.formatwarning = _one_line_warning
    keep_freed_memory()  # large tensors reuse freed pages instead of faulting fresh ones in (fgdm.runtime)
    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False) and args.command in ("train", "backtranslator"):
        import lightning  # noqa: F401  (it sets its loggers' levels on import: quiet them afterwards)

        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (DataFormatError, ValueError, KeyError, FileNotFoundError) as err:
        print(f"fgdm {args.command}: error: {err}", file=sys.stderr)
        return 1
