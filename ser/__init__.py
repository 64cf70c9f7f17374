"""SER Studio: speech emotion recognition, from corpus to browser."""

from __future__ import annotations

import contextlib

# pylibsrtp (aiortc's SRTP, under streamlit-webrtc) segfaults when its bundled OpenSSL is loaded
# after TensorFlow's; loaded first, both work. Every entry point imports ``ser`` before anything
# of ours can load TensorFlow (app.py, a page run on its own, the CLI, the tests), so loading it
# here settles the order once for all of them (25 ms).
with contextlib.suppress(ImportError):  # only the Live page needs it
    import pylibsrtp  # noqa: F401

__version__ = "0.1.0"
