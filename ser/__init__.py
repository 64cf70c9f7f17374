"""SER Studio: speech emotion recognition, from corpus to browser."""

from __future__ import annotations

import importlib

from ser import process

process.load_native_libraries_first()  # before anything of ours can load TensorFlow

__version__ = "0.1.0"

# The public road, for scripts and notebooks: ``ser.Predictor.from_path()``, ``ser.classify(path, predictor)``.
# Imported on first use, so ``import ser`` (the CLI's --help, the app's sidebar) stays light.
_PUBLIC = {"Predictor": "ser.serving.predict", "Prediction": "ser.serving.predict", "classify": "ser.serving.predict"}


def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ser' has no attribute {name!r}")
