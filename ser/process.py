"""Process-wide workarounds, each for a fault outside SER Studio, gathered here with why each exists.

- Native libraries that must load before TensorFlow (``load_native_libraries_first``): pylibsrtp and
  openSMILE crash when their bundled libraries load after TensorFlow's.
- One thread at a time in ``ast.parse`` (``serialise_ast_parse``): CPython 3.11's AST constructor is
  not thread-safe (python/cpython#106905), and training threads and Streamlit both parse source.
- TensorFlow's native start-up logs hidden (``native_stderr_silenced``): they bypass Python's logging.
- One BLAS thread for small products (``one_blas_thread``): OpenBLAS's spinning threads took the
  second core from openSMILE's reset (docs/operations.md).
- Long-lived objects out of the garbage collector's reach (``freeze_long_lived_objects``).
- A quick exit for the command line (``exit_now``): tearing the interpreter down took longer than the work.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import ctypes
import functools
import gc
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# A process that imported TensorFlow before ``ser`` can load neither pylibsrtp nor openSMILE: both
# are skipped, openSMILE's user says so (ser.features.functionals), and the rest works.
TENSORFLOW_FIRST = "tensorflow" in sys.modules


def load_native_libraries_first() -> None:
    """pylibsrtp (aiortc's SRTP, under streamlit-webrtc) segfaults when its bundled OpenSSL is loaded
    after TensorFlow's, and openSMILE's library (eGeMAPS) corrupts the heap ("malloc(): invalid size");
    loaded first, all work. Every entry point imports ``ser`` before anything of ours can load
    TensorFlow (app.py, a page run on its own, the CLI, the tests), so ``ser`` calls this once for all
    of them (about 25 ms). Only openSMILE's shared library is loaded, not its package and pandas."""
    if TENSORFLOW_FIRST:
        return
    with contextlib.suppress(ImportError):  # only the Live page needs it
        import pylibsrtp  # noqa: F401
    spec = importlib.util.find_spec("opensmile")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        for library in sorted(Path(folder).glob("core/bin/*/libSMILEapi.so")):
            with contextlib.suppress(OSError):
                ctypes.CDLL(str(library))
                return


def serialise_ast_parse() -> None:
    """Let one thread at a time build a Python AST. CPython 3.11's AST constructor keeps one
    recursion counter per interpreter, and two threads in ``ast.parse`` at once can raise
    "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). A training
    thread's TensorFlow parses source for every tf.function it converts (autograph, through gast),
    while Streamlit parses each page script it runs (its "magic"): seen once as a Train page error
    during a run. Both call ``ast.parse`` by its module attribute, so a lock around it covers both."""
    if getattr(ast.parse, "_ser_serialised", False):
        return
    parse, lock = ast.parse, threading.RLock()

    @functools.wraps(parse)
    def serialised(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    serialised._ser_serialised = True
    ast.parse = serialised


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """TensorFlow's C++ start-up logs (CUDA probing on a machine without a GPU) bypass Python's
    logging; hide them while it loads so the command line prints only our own messages."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.lru_cache(maxsize=1)
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finds the BLAS libraries loaded once (a few ms), not at every call


_blas_lock = threading.Lock()
_blas_users = 0  # threads inside one_blas_thread: the first sets the limit, the last lifts it
_blas_limit: Any = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """NumPy's BLAS on the calling thread alone while any thread is inside. A clip's matrices are
    small, and BLAS's own threads, left spinning after each product, took the second core from
    openSMILE's reset (``ser.features.functionals``), which runs in the background after each clip.
    The limit is the process's: counted, so that sessions answering at once never leave it set (each
    restoring what another had set)."""
    global _blas_users, _blas_limit
    with _blas_lock:
        if not _blas_users:
            _blas_limit = _blas().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if not _blas_users:
                _blas_limit.restore_original_limits()


def freeze_long_lived_objects() -> None:
    """Move every object alive now out of the garbage collector's reach. After the model loads,
    TensorFlow and the model leave millions of long-lived objects, and a full collection walked them
    all (it paused every session on the server). In a forked feature worker, a collection would touch
    each object inherited from the parent and copy its page: 100s of MB per worker."""
    gc.freeze()


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
