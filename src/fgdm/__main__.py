"""``python -m fgdm``: the ``fgdm`` command (as ``python -m fgdm.cli``)."""

import sys

from fgdm.cli import main

if __name__ == "__main__":
    sys.exit(main())
