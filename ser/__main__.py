"""``python -m ser``: see ser.cli.parser."""

from __future__ import annotations

from ser.cli.parser import main
from ser.process import exit_now

if __name__ == "__main__":
    exit_now(main())
