"""``python -m funcnet``: the ``funcnet`` command line (see :mod:`funcnet.cli`)."""

import sys

from funcnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
