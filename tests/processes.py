"""Helpers for the tests that start real processes and kill them: the process table read from
/proc, waiting on a condition with a deadline, and a generated corpus larger than the demo one."""

from __future__ import annotations

import csv
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DEMO_DIR

requires_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def process_table() -> dict[int, dict[str, int | str]]:
    """Every live process: pid -> state, ppid, pgrp, session (zombies and the dead left out)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while we looked
        if fields[0] not in ("Z", "X"):
            table[int(entry.name)] = {"state": fields[0], "ppid": int(fields[1]), "session": int(fields[3])}
    return table


def in_session(session: int) -> list[int]:
    """Live processes of a session (a child started with ``start_new_session=True`` leads one)."""
    return sorted(pid for pid, p in process_table().items() if p["session"] == session)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def forked_workers(pid: int) -> list[int]:
    """Children of ``pid`` running its own command line: the workers of a pool forked from it."""
    own = cmdline(pid)
    return sorted(c for c, p in process_table().items() if p["ppid"] == pid and own and cmdline(c) == own)


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, poll_s: float = 0.05):
    """Poll ``condition`` until it is truthy (returned) or ``timeout_s`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s:g} s: {what}")
        time.sleep(poll_s)


def gone(pids: list[int]) -> Callable[[], bool]:
    return lambda: not set(pids) & set(process_table())


def make_corpus(folder: Path, copies: int, *, speakers: tuple[str, ...] = (), words: int = 0) -> Path:
    """``copies`` copies of the demo corpus (of ``speakers`` and the first ``words`` words only,
    when given) as a CSV corpus in ``folder``; every copy is its own file (its own cache key), its
    speakers renamed. Returns the CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    sources = sorted(DEMO_DIR.glob("*/*.ogg"))
    kept_words = sorted({p.stem.split("_")[1] for p in sources})[: words or None]
    for source in sources:
        speaker, word, emotion = source.stem.split("_")
        if (speakers and speaker not in speakers) or word not in kept_words:
            continue
        for k in range(copies):
            target = folder / f"{speaker}{k}_{word}_{emotion}.ogg"
            shutil.copyfile(source, target)
            rows.append({"path": target.name, "emotion": emotion, "speaker": f"{speaker}{k}", "text": word})
    manifest = folder / "corpus.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "emotion", "speaker", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


PYTHON = sys.executable
