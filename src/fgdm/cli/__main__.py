"""``python -m fgdm.cli``: the ``fgdm`` command."""

import sys

from fgdm.cli import main

sys.exit(main())
