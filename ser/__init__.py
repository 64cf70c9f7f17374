"""SER Studio: speech emotion recognition, from corpus to browser."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import sys
from pathlib import Path

# pylibsrtp (aiortc's SRTP, under streamlit-webrtc) segfaults when its bundled OpenSSL is loaded
# after TensorFlow's; loaded first, both work. Every entry point imports ``ser`` before anything
# of ours can load TensorFlow (app.py, a page run on its own, the CLI, the tests), so loading it
# here settles the order once for all of them (25 ms).
# A process that imported TensorFlow before ``ser`` can load neither pylibsrtp nor openSMILE (below)
# any more: both skip here, openSMILE's user says so (ser.functionals), and the rest works.
TENSORFLOW_FIRST = "tensorflow" in sys.modules
if not TENSORFLOW_FIRST:
    with contextlib.suppress(ImportError):  # only the Live page needs it
        import pylibsrtp  # noqa: F401


def _load_opensmile_first() -> None:
    """openSMILE's library (eGeMAPS, ser.functionals) corrupts the heap ("malloc(): invalid size")
    when it is loaded after TensorFlow's, like pylibsrtp above; loaded first, both work. Only the
    shared library is loaded here (a few ms), not the opensmile package and its pandas stack."""
    spec = importlib.util.find_spec("opensmile")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        for library in sorted(Path(folder).glob("core/bin/*/libSMILEapi.so")):
            with contextlib.suppress(OSError):
                ctypes.CDLL(str(library))
                return


if not TENSORFLOW_FIRST:
    _load_opensmile_first()

__version__ = "0.1.0"

# The public road, for scripts and notebooks: ``ser.Predictor.from_path()``, ``ser.classify(path, predictor)``.
# Imported on first use, so ``import ser`` (the CLI's --help, the app's sidebar) stays light.
_PUBLIC = {"Predictor": "ser.predict", "Prediction": "ser.predict", "classify": "ser.predict"}


def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ser' has no attribute {name!r}")
