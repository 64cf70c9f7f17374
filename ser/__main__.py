"""``python -m ser``: see ser.cli."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from ser.cli import main


def exit_now(status: int) -> None:
    """End the process once its work is done, without tearing the interpreter down: freeing
    every module scikit-learn, scipy and pandas loaded, one object at a time, took 0.45 s of a
    3.5 s ``predict`` (bench/startup.py). Exit handlers still run and output is flushed; with a
    thread still running (nothing of ours leaves one), the ordinary exit waits for it."""
    if threading.active_count() > 1:
        sys.exit(status)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        status = status or 120  # what Python's own exit answers when the flush fails
    os._exit(status)


if __name__ == "__main__":
    exit_now(main())
