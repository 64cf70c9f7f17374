"""The background training job: one ``ser.train.train`` run at a time per process, in a thread.

Its state lives behind a lock in a module-level singleton (``JOB``), so every browser session
sees the same run, and the run survives a page switch or a closed tab. The job never changes
the active model: a finished run leaves a bundle, and the user decides whether to serve it.

Importing this module is cheap: TensorFlow is loaded only when a job starts.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.config import TrainConfig
from ser.datasets import Manifest
from ser.errors import SERError, TrainingError
from ser.registry import models_folder

log = logging.getLogger(__name__)

# Job statuses: "idle" before any run; "running", "stopping"; then "done", "failed" or "stopped".
FINISHED = ("done", "failed", "stopped")


@dataclass
class JobState:
    status: str = "idle"
    name: str = ""  # the bundle name the run will write
    data: str = ""  # the corpus folder it trains on
    split: str = ""  # evaluation protocol
    config: dict[str, Any] = field(default_factory=dict)  # the TrainConfig, as a dict
    logs: list[Any] = field(default_factory=list)  # ser.train.EpochLog, one per finished epoch
    features_done: int = 0  # clips whose features are ready (first fold's training part)
    features_total: int = 0
    error: str = ""  # why a run failed or stopped
    path: str = ""  # the bundle written by a finished run
    card: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0  # time.time()
    finished_at: float = 0.0

    @property
    def running(self) -> bool:
        return self.status in ("running", "stopping")

    @property
    def n_epochs(self) -> int:
        return int(self.config.get("epochs", 0))


class TrainingJob:
    """Runs one training at a time in a daemon thread; any thread may read its state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = JobState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(
        self,
        manifest: Manifest,
        *,
        split: str = "speaker",
        config: TrainConfig = TrainConfig(),
        models_dir: Path | None = None,
        name: str | None = None,
    ) -> str:
        """Start training in the background; returns the bundle name it will write.

        Raises TrainingError while another run is in progress (naming it).
        """
        from ser.train import bundle_name

        with self._lock:
            if self._state.running:
                raise TrainingError(
                    f"a training run is already in progress ({self._state.name}, started "
                    f"{time.strftime('%H:%M:%S', time.localtime(self._state.started_at))}); "
                    "wait for it to finish or stop it first"
                )
            name = name or bundle_name(config.arch)
            self._stop.clear()
            self._state = JobState(
                status="running", name=name, data=str(manifest.root), split=split,
                config=config.to_dict(), started_at=time.time(),
            )  # fmt: skip
            target = Path(models_dir) if models_dir is not None else models_folder()
            self._thread = threading.Thread(
                target=self._run, args=(manifest, split, config, target, name), name=f"train-{name}", daemon=True
            )
            self._thread.start()
        return name

    def stop(self) -> None:
        """Ask the run to stop at the end of the current epoch; it then leaves no bundle."""
        with self._lock:
            if self._state.status == "running":
                self._state.status = "stopping"
                self._stop.set()

    def snapshot(self) -> JobState:
        """A copy of the current state, safe to read without the lock."""
        with self._lock:
            return dataclasses.replace(self._state, logs=list(self._state.logs), card=dict(self._state.card))

    def wait(self, timeout: float | None = None) -> JobState:
        """Block until the current run ends (or ``timeout`` s pass); returns the state then."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.snapshot()

    def _run(self, manifest: Manifest, split: str, config: TrainConfig, target: Path, name: str) -> None:
        from ser.train import train

        try:
            path, card = train(
                manifest, split=split, config=config, models_dir=target, name=name,
                command=f"SER Studio train page: {config.arch}, split {split}, {config.epochs} epochs",
                on_epoch=self._on_epoch, should_stop=self._stop.is_set, progress=self._on_progress,
            )  # fmt: skip
        except Exception as e:  # a background thread has nobody to raise to: record every failure
            if not isinstance(e, SERError):
                log.exception("training run %s failed", name)  # a bug, not bad input: keep the traceback
            self._finish("stopped" if self._stop.is_set() else "failed", error=_describe(e))
        else:
            self._finish("done", path=str(path), card=card)

    def _on_epoch(self, entry: Any) -> None:
        with self._lock:
            self._state.logs.append(entry)

    def _on_progress(self, done: int, total: int) -> None:
        with self._lock:
            self._state.features_done, self._state.features_total = done, total

    def _finish(self, status: str, *, error: str = "", path: str = "", card: dict | None = None) -> None:
        with self._lock:
            self._state.status, self._state.error, self._state.path = status, error, path
            self._state.card = card or {}
            self._state.finished_at = time.time()


def _describe(error: Exception) -> str:
    return str(error) if isinstance(error, SERError) else f"{type(error).__name__}: {error}"


JOB = TrainingJob()  # the one job of this process, shared by every session


def zip_bundle(path: Path) -> bytes:
    """A bundle folder as zip bytes, its files under the bundle's name."""
    path = Path(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            archive.write(file, Path(path.name) / file.relative_to(path))
    return buffer.getvalue()
