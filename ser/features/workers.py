"""Process pools that leave nothing behind, sized to the memory the machine has free.

    with process_pool(pool_size(len(jobs))) as pool:
        results = list(pool.map(work, jobs))

A worker of ``process_pool`` exits within a fraction of a second of its parent process dying,
however the parent died (``kill -9`` included): unguarded, a killed run leaves its workers alive,
blocked writing to a pipe nobody reads, ~500 MB each, for as long as the machine runs. Two guards,
because neither holds everywhere on its own:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, asked for by the worker itself: the kernel kills
  it the moment its parent goes. The signal follows the parent *thread* that forked the worker,
  so a pool is made, used and shut down by one thread (``process_pool`` is a context manager for
  that reason); the app's training job runs its pool from the job's own thread, which outlives it.
- Everywhere: a watchdog thread in each worker. ``os.getppid()`` changes when the parent dies
  (POSIX hands orphans to init or a subreaper), and multiprocessing's parent sentinel becomes
  ready (a process handle on Windows, a pipe under ``spawn``); the watchdog waits on the sentinel
  for ``WATCHDOG_POLL_S`` and compares the parent pid between waits. On a platform without
  ``prctl`` (macOS, Windows) this thread alone ends the orphans, within ``WATCHDOG_POLL_S``.

Workers ignore Ctrl-C (the terminal sends SIGINT to the whole process group): the parent alone
handles it, ends the pool and reports once, instead of every worker printing a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ser.process import freeze_long_lived_objects

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCHDOG_POLL_S = 0.25  # how often a worker looks for its parent where the kernel does not tell it
# Memory one feature-extraction worker adds to the machine (its private pages, USS; the rest it
# shares with the parent it was forked from), at its peak in bench/memory.py: 108 MB on the demo
# corpus, 113 MB over all of TESS (2,800 clips, one a 96 kHz recording). Over twice that, so a
# machine short of memory runs fewer workers rather than swap.
WORKER_MB = 250
RESERVE_MB = 1024  # left free for the parent (it collects every clip's features) and the rest of the machine
TERMINATE_WAIT_S = 2.0  # how long an interrupted pool's workers get to exit before SIGKILL


@contextlib.contextmanager
def process_pool(n_workers: int) -> Iterator[ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` of ``n_workers`` whose workers die with this process.

    Leaving the block normally waits for the work submitted; leaving it by an exception (a
    stopped run, Ctrl-C) cancels what has not started and ends the workers at once, rather than
    waiting for every clip already handed out. Use the pool from the thread that made it.
    """
    pool = ProcessPoolExecutor(max_workers=n_workers, initializer=_guard_worker, initargs=(os.getpid(),))
    _start_deaf_to_ctrl_c(pool)
    try:
        yield pool
    except BaseException:
        terminate_pool(pool)
        raise
    pool.shutdown(wait=True)


def _start_deaf_to_ctrl_c(pool: ProcessPoolExecutor) -> None:
    """Start the pool's threads (and its workers) with SIGINT blocked in them. Ctrl-C is sent to the
    process, and the kernel may hand it to any thread that does not block it; Python runs its handler
    in the main thread only, which does not wake from a sleep or a wait for a signal another thread
    took. A Ctrl-C was lost that way in each of three full test runs (``tests/features/test_workers.py``). From the
    main thread only: another thread's mask is not this function's to change."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pool.submit(_ready).result()  # the first task starts the executor's threads, which keep this mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _ready() -> None:
    """A task that does nothing."""


def terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued work and end the workers now: SIGTERM, then SIGKILL after ``TERMINATE_WAIT_S``."""
    # The executor has no public way to end running work before Python 3.14 (terminate_workers).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(TERMINATE_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join(TERMINATE_WAIT_S)
    if manager is not None:
        # Its clean-up after the workers ends must be over before the interpreter exits: else
        # the executor's exit hook races it and prints an OSError traceback (CPython 3.11).
        manager.join(TERMINATE_WAIT_S)


def pool_size(n_tasks: int, *, worker_mb: float = WORKER_MB) -> int:
    """Workers for ``n_tasks`` tasks: no more than the CPUs this process may use, nor than the
    free memory holds (``available_memory_mb`` less ``RESERVE_MB``, ``worker_mb`` each); at least 1."""
    by_memory = int((available_memory_mb() - RESERVE_MB) // worker_mb)
    return max(1, min(n_tasks, usable_cpus(), by_memory))


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory_mb() -> float:
    """Memory that can be used without swapping: MemAvailable of /proc/meminfo, or less where a
    cgroup (a container's limit) allows less. Where neither can be read, a figure that allows
    every CPU a worker, as before this cap existed."""
    available = _meminfo_available_mb()
    limit = _cgroup_headroom_mb()
    if available is None and limit is None:
        return RESERVE_MB + WORKER_MB * (os.cpu_count() or 1)
    return min(x for x in (available, limit) if x is not None)


def _meminfo_available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom_mb() -> float | None:
    """cgroup v2 ``memory.max - memory.current`` of this process's group, None when unlimited."""
    try:
        group = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        folder = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return (int(limit) - int((folder / "memory.current").read_text())) / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _guard_worker(parent_pid: int) -> None:
    """The pool's initializer: runs first in every worker."""
    freeze_long_lived_objects()  # all of TensorFlow in a training run: not copied page by page
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the parent's Python handlers (Streamlit's SIGTERM handler would
    # try to stop a server that is not there): terminate means exit, as for any process.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _ask_kernel_for_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(1)
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    threading.Thread(target=_watch_parent, args=(parent_pid, sentinel), name="parent-watchdog", daemon=True).start()


def _ask_kernel_for_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return  # no prctl: the watchdog alone ends orphans
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch_parent(parent_pid: int, sentinel: int | None) -> None:
    while os.getppid() == parent_pid:
        if sentinel is None:
            threading.Event().wait(WATCHDOG_POLL_S)
        elif multiprocessing.connection.wait([sentinel], timeout=WATCHDOG_POLL_S):
            break  # the parent's end of the sentinel closed: it exited
    os._exit(1)  # from this thread: nothing of the worker's would run any more anyway
