"""``python -m ser``: see ser.cli."""

from __future__ import annotations

import sys

from ser.cli import main

if __name__ == "__main__":
    sys.exit(main())
