"""``python -m continuum_federation demo``: the local federation for ``make demo``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
