"""SER Studio: speech emotion recognition, from corpus to browser."""

from __future__ import annotations

__version__ = "0.1.0"
