"""What a killed process leaves in the models folder, found and cleared by the next one.

Two things can be left behind when a server or a training run dies mid-way (``kill -9``, a
crash, a restart): the record of the background job (``models_dir/.job.json``, kept by
``ser.app.jobs``) still saying "running", and a half-written bundle (a folder
``.NAME.PID_START-XXXXXXXX.tmp`` of ``ser.models.network.layers.save_bundle``, named by ``temp_bundle_prefix``).
Both are dot-named, so neither is ever listed as a model.

A record or a folder belongs to a dead process when its pid is gone, or now names another
process (the pid came back for something else: the process start time differs). Where that
cannot be told (a record written on another host), nothing is touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOB_FILE = ".job.json"  # the background job's record, in the models folder
TMP_BUNDLE = re.compile(r"^\..+\.tmp$")  # save_bundle's temporary folders, old and new names
# ".NAME.PID_START-XXXXXXXX.tmp": the writer's pid and start time (mkdtemp's random part has no "-")
TMP_OWNER = re.compile(r"\.(\d+)(?:_(\d+))?-[a-z0-9_]+\.tmp$")
UNOWNED_STALE_S = 3600.0  # a temporary folder that names no writer (older releases) is left alone this long


def process_started(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat), or ""
    where that cannot be read (no /proc: macOS, Windows; then a pid alone identifies a process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()  # the name in parentheses may hold spaces
    return fields[19] if len(fields) > 19 else ""


def process_alive(pid: int, started: str = "") -> bool:
    """Whether ``pid`` is a running process and, when ``started`` is given, the same one."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except OSError:
        return False
    now = process_started(pid)
    return not (started and now and now != started)


def this_process() -> dict[str, Any]:
    """What identifies the current process in a record: host, pid, start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "process_started": process_started(pid)}


def owner_alive(record: dict[str, Any]) -> bool | None:
    """Whether the process that wrote ``record`` (``this_process`` fields) still runs; None when
    this machine cannot tell (another host wrote it)."""
    if record.get("host") != socket.gethostname():
        return None
    try:
        pid = int(record.get("pid", 0))
    except (TypeError, ValueError):
        return False
    return process_alive(pid, str(record.get("process_started", "")))


def temp_bundle_prefix(name: str) -> str:
    """The start of the name of the temporary folder a bundle called ``name`` is written in:
    it names this process, so the next one can tell a dead writer's folder from a live one's."""
    me = this_process()
    started = f"_{me['process_started']}" if me["process_started"] else ""
    return f".{name}.{me['pid']}{started}-"


def write_job_record(models_dir: Path, record: dict[str, Any]) -> None:
    """Replace ``models_dir/.job.json`` atomically (a reader sees the old record or the new one,
    whole). A folder that cannot be written is logged, never raised: the record only informs."""
    target = Path(models_dir) / JOB_FILE
    tmp = target.with_name(f"{JOB_FILE}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as e:
        log.warning("cannot record the job in %s: %s", target, e)
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_job_record(models_dir: Path) -> dict[str, Any] | None:
    """The job record of ``models_dir``, or None when there is none or it cannot be read."""
    try:
        record = json.loads((Path(models_dir) / JOB_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def interrupted_job(models_dir: Path) -> dict[str, Any] | None:
    """The record of a job whose process died while it ran, or None.

    A record still "running" or "stopping" whose process is gone is marked "interrupted" (and
    saved so: the next start finds it interrupted too, until it is dismissed or a new job
    starts). ``interrupted_at`` is when this was noticed; ``updated_at``, the job's last sign of life.
    """
    record = read_job_record(models_dir)
    if record is None:
        return None
    if record.get("status") in ("running", "stopping") and owner_alive(record) is False:
        record = {**record, "status": "interrupted", "interrupted_at": time.time()}
        write_job_record(models_dir, record)
    return record if record.get("status") == "interrupted" else None


def remove_job_record(models_dir: Path, *, status: str | None = None) -> None:
    """Delete the job record when this process wrote it (its job ended: nothing to recover), or,
    with ``status``, when it has that status ("interrupted": the user has read it). A record of
    another live process's job stays."""
    record = read_job_record(models_dir)
    if record is None:
        return
    mine = record.get("pid") == os.getpid() and record.get("host") == socket.gethostname()
    if (status is None and mine) or (status is not None and record.get("status") == status):
        with contextlib.suppress(OSError):
            (Path(models_dir) / JOB_FILE).unlink()


def remove_stale_bundles(models_dir: Path) -> list[Path]:
    """Delete the temporary bundle folders of writers that died; returns the folders removed.

    A folder whose writer still runs is being written right now and stays; one that names no
    writer stays for ``UNOWNED_STALE_S`` after its last change. Finished bundles, the active
    model and anything not named like a temporary bundle are never touched.
    """
    models_dir = Path(models_dir)
    try:
        candidates = [p for p in models_dir.iterdir() if TMP_BUNDLE.match(p.name) and p.is_dir()]
    except OSError:
        return []
    removed = []
    for path in candidates:
        if _writer_alive(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
            log.info("removed %s, a bundle half-written by a process that died", path)
    return removed


def _writer_alive(path: Path) -> bool:
    match = TMP_OWNER.search(path.name)
    if match:
        return process_alive(int(match.group(1)), match.group(2) or "")
    try:
        return time.time() - path.stat().st_mtime < UNOWNED_STALE_S
    except OSError:
        return True  # gone already, or unreadable: leave it
