"""The background job: one ``ser.training.train.train`` run, or one ``ser.training.adapt.adapt`` run (a model
adapted to one speaker), at a time per process, in a thread.

Its state lives behind a lock in a module-level singleton (``JOB``), so every browser session
sees the same run, and the run survives a page switch or a closed tab. The job never changes
the active model: a finished run leaves a bundle, and the user decides whether to serve it.

A running job keeps a small record of itself in the models folder (``.job.json``, see
``ser.store.recovery``), so that when the server is killed mid-run, the next server start shows that
run as interrupted (what it was, when it was last seen, that it saved nothing) instead of
forgetting it.

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

from ser.config import RunHooks, TrainConfig
from ser.corpora.datasets import Manifest
from ser.errors import SERError, TrainingError
from ser.store.card import ModelCard
from ser.store.recovery import interrupted_job, remove_job_record, remove_stale_bundles, this_process, write_job_record
from ser.store.registry import adapted_name, bundle_name, check_bundle, models_folder

log = logging.getLogger(__name__)

# Job statuses: "idle" before any run; "running", "stopping"; then "done", "failed" or "stopped";
# "interrupted": a run of an earlier server process that died while it ran (from its record).
FINISHED = ("done", "failed", "stopped", "interrupted")
HEARTBEAT_S = 1.0  # a running job rewrites its record at most this often: its last sign of life


@dataclass
class JobState:
    status: str = "idle"
    kind: str = "train"  # "train" or "adapt"
    name: str = ""  # the bundle name the run will write
    data: str = ""  # the corpus folder it trains on
    split: str = ""  # evaluation protocol
    config: dict[str, Any] = field(default_factory=dict)  # the TrainConfig, as a dict
    logs: list[Any] = field(default_factory=list)  # ser.config.EpochLog, one per finished epoch
    features_done: int = 0  # clips whose features are ready (first fold's training part)
    features_total: int = 0
    speaker: str = ""  # adapt: the speaker the model is adapted to
    base: str = ""  # adapt: the bundle adapted
    steps_done: int = 0  # batches finished: adapt's fine-tuning, an SVM's contour networks (of the current fit)
    steps_total: int = 0
    fit: str = ""  # train: the split of the fit under way, e.g. "leave one corpus out: test emodb"
    fit_index: int = 0  # 1-based, among n_fits
    n_fits: int = 0
    error: str = ""  # why a run failed or stopped
    path: str = ""  # the bundle written by a finished run
    card: ModelCard | None = None  # of the bundle a finished run wrote
    started_at: float = 0.0  # time.time()
    finished_at: float = 0.0

    @property
    def running(self) -> bool:
        return self.status in ("running", "stopping")

    @property
    def n_epochs(self) -> int:
        return int(self.config.get("epochs", 0))

    def progress(self) -> tuple[float, str]:
        """How far a running job is, as (fraction done, what it is doing) for a progress bar."""
        if self.kind == "adapt":
            if self.steps_total:
                return self.steps_done / self.steps_total, f"fine-tuning step {self.steps_done} of {self.steps_total}"
        elif self.logs:  # a network: its epochs
            last = self.logs[-1]
            done = (last.fold_index - 1 + min(1.0, last.epoch / max(1, self.n_epochs))) / last.n_folds
            fold = f"fit {last.fold_index} of {last.n_folds} ({last.fold}), " if last.n_folds > 1 else ""
            return done, f"{fold}epoch {last.epoch} of at most {self.n_epochs}"
        elif self.fit_index and self.features_total:  # an SVM, fit by fit: its features, then its networks
            if self.features_done < self.features_total:
                share, what = 0.5 * self.features_done / self.features_total, "computing features…"
            elif self.steps_total:
                share = 0.5 + 0.5 * self.steps_done / self.steps_total
                what = f"{self.fit}: contour networks, step {self.steps_done} of {self.steps_total}"
            else:
                share, what = 0.5, f"{self.fit}: fitting"
            text = f"fit {self.fit_index} of {self.n_fits}, {what}" if self.n_fits > 1 else what
            return (self.fit_index - 1 + share) / self.n_fits, text[0].upper() + text[1:]
        if self.features_total:
            return self.features_done / self.features_total, "Computing features…"
        return 0.0, "Preparing…"


class TrainingJob:
    """Runs one training at a time in a daemon thread; any thread may read its state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = JobState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._record_dir: Path | None = None  # the models folder the current run's record is in
        self._recorded_at = 0.0  # time.monotonic() of the record's last write
        self._recovered: set[Path] = set()  # models folders ``recover`` has looked at

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
        name = name or bundle_name(config.arch)
        state = JobState(name=name, data=str(manifest.root), split=split, config=config.to_dict())
        target = Path(models_dir) if models_dir is not None else models_folder()
        return self._launch(state, self._train, (manifest, split, config, target, name), target)

    def start_adaptation(
        self,
        bundle_path: Path,
        manifest: Manifest,
        speaker: str,
        *,
        shots: int = 5,
        seed: int = 0,
        models_dir: Path | None = None,
        name: str | None = None,
    ) -> str:
        """Adapt the bundle at ``bundle_path`` to ``speaker`` of ``manifest`` from ``shots`` labelled
        clips per emotion (``ser.training.adapt.adapt``) in the background; returns the bundle name it will
        write. Raises TrainingError while another run is in progress."""
        bundle_path = Path(bundle_path)
        name = name or adapted_name(bundle_path.name, speaker)
        state = JobState(
            kind="adapt", name=name, data=str(manifest.root), split="speaker-adapted",
            config={"shots": shots, "seed": seed}, speaker=speaker, base=bundle_path.name,
        )  # fmt: skip
        target = Path(models_dir) if models_dir is not None else models_folder()
        return self._launch(state, self._adapt, (bundle_path, manifest, speaker, shots, seed, target, name), target)

    def _launch(self, state: JobState, run, args: tuple, target: Path) -> str:
        remove_stale_bundles(target)  # what earlier runs, killed while they saved, left there
        with self._lock:
            if self._state.running:
                what = "an adaptation" if self._state.kind == "adapt" else "a training run"
                raise TrainingError(
                    f"{what} is already in progress ({self._state.name}, started "
                    f"{time.strftime('%H:%M:%S', time.localtime(self._state.started_at))}); "
                    "wait for it to finish or stop it first"
                )
            self._stop.clear()
            self._state = dataclasses.replace(state, status="running", started_at=time.time())
            # Recorded before the thread starts: its own later writes can never be overtaken by this one.
            self._record_dir = target
            self._save_record(self._state)
            self._thread = threading.Thread(target=run, args=args, name=f"{state.kind}-{state.name}", daemon=True)
            self._thread.start()
        return state.name

    def stop(self) -> None:
        """Ask the run to stop at the end of the current epoch (or at once while it computes
        features); it then leaves no bundle."""
        with self._lock:
            if self._state.status == "running":
                self._state.status = "stopping"
                self._stop.set()

    def recover(self, models_dir: Path | None = None) -> None:
        """Once per process and models folder (a server's start): remove the bundles that killed
        runs half-wrote there and, while this process has run no job, take up a job an earlier
        process left running as "interrupted" (``ser.store.recovery.interrupted_job``)."""
        target = Path(models_dir) if models_dir is not None else models_folder()
        with self._lock:
            if target in self._recovered:
                return
            self._recovered.add(target)
        remove_stale_bundles(target)
        record = interrupted_job(target)
        if record is None:
            return
        state = _interrupted_state(record, target)
        with self._lock:
            if self._state.status == "idle":
                self._state, self._record_dir = state, target

    def dismiss(self) -> None:
        """Forget an interrupted run (its record too): the user has seen it."""
        with self._lock:
            if self._state.status != "interrupted":
                return
            self._state, target = JobState(), self._record_dir
        if target is not None:
            remove_job_record(target, status="interrupted")

    def snapshot(self) -> JobState:
        """A copy of the current state, safe to read without the lock."""
        with self._lock:
            return dataclasses.replace(self._state, logs=list(self._state.logs))

    def wait(self, timeout: float | None = None) -> JobState:
        """Block until the current run ends (or ``timeout`` s pass); returns the state then."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.snapshot()

    def _train(self, manifest: Manifest, split: str, config: TrainConfig, target: Path, name: str) -> None:
        from ser.training.train import train

        self._run(
            name,
            lambda: train(
                manifest, split=split, config=config, models_dir=target, name=name,
                command=f"SER Studio train page: {config.arch}, split {split}, {config.epochs} epochs",
                hooks=self._hooks(),
            ),
        )  # fmt: skip

    def _adapt(
        self, bundle_path: Path, manifest: Manifest, speaker: str, shots: int, seed: int, target: Path, name: str
    ) -> None:
        from ser.models.bundle import load_bundle
        from ser.models.network.adapt import AdaptConfig
        from ser.training.adapt import adapt

        def run() -> tuple[Path | None, ModelCard]:
            path, card, _model = adapt(
                load_bundle(bundle_path), manifest, speaker, AdaptConfig(shots=shots, seed=seed), models_dir=target,
                name=name, command=f"SER Studio train page: adapt {bundle_path.name} to {speaker}, {shots} shots",
                hooks=self._hooks(),
            )  # fmt: skip
            return path, card

        self._run(name, run)

    def _hooks(self) -> RunHooks:
        return RunHooks(
            progress=self._on_progress, on_epoch=self._on_epoch, on_fit=self._on_fit, on_step=self._on_step,
            should_stop=self._stop.is_set,
        )  # fmt: skip

    def _run(self, name: str, work) -> None:
        """Run ``work`` (-> (bundle path, card)) and record how it ended."""
        try:
            path, card = work()
        except Exception as e:  # a background thread has nobody to raise to: record every failure
            if not isinstance(e, SERError):
                log.exception("job %s failed", name)  # a bug, not bad input: keep the traceback
            self._finish("stopped" if self._stop.is_set() else "failed", error=_describe(e))
        else:
            self._finish("done", path=str(path), card=card)

    def _on_fit(self, split: str, index: int, n_fits: int) -> None:
        with self._lock:
            self._state.fit, self._state.fit_index, self._state.n_fits = split, index, n_fits
            self._state.steps_done = self._state.steps_total = 0
            self._state.features_done = self._state.features_total = 0
        self._heartbeat()

    def _on_step(self, step: int, n_steps: int, loss: float) -> None:
        with self._lock:
            self._state.steps_done, self._state.steps_total = step, n_steps
        self._heartbeat()

    def _on_epoch(self, entry: Any) -> None:
        with self._lock:
            self._state.logs.append(entry)
        self._heartbeat()

    def _on_progress(self, done: int, total: int) -> None:
        with self._lock:
            self._state.features_done, self._state.features_total = done, total
        self._heartbeat()
        if self._stop.is_set():  # a stop while features are computed ends the run now, not after them
            raise TrainingError("training was stopped while computing features; the active model is unchanged")

    def _finish(self, status: str, *, error: str = "", path: str = "", card: ModelCard | None = None) -> None:
        with self._lock:
            self._state.status, self._state.error, self._state.path = status, error, path
            self._state.card = card
            self._state.finished_at = time.time()
            target, self._record_dir = self._record_dir, None  # no heartbeat from here on
        if target is not None:
            remove_job_record(target)  # the run ended as it should: nothing to recover

    def _heartbeat(self) -> None:
        """Rewrite the record, at most every ``HEARTBEAT_S`` (called from the job's thread)."""
        if time.monotonic() - self._recorded_at >= HEARTBEAT_S:
            self._save_record(self.snapshot())

    def _save_record(self, state: JobState) -> None:
        """Write ``state`` to the record: from ``_launch`` before the job's thread starts, then only
        from that thread, so the writes never overtake one another; ``_finish`` removes it."""
        if self._record_dir is None:
            return
        record = {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name not in ("logs", "card")}
        if state.logs:
            last = state.logs[-1]
            record.update(epoch=last.epoch, fold=last.fold, fold_index=last.fold_index, n_folds=last.n_folds)
        write_job_record(self._record_dir, {**record, "updated_at": time.time(), **this_process()})
        self._recorded_at = time.monotonic()


def _interrupted_state(record: dict[str, Any], models_dir: Path) -> JobState:
    """The state to show for the record of a run whose process died."""
    known = {f.name for f in dataclasses.fields(JobState)} - {"logs", "card", "status", "error"}
    state = JobState(**{k: v for k, v in record.items() if k in known})
    state.status, state.finished_at = "interrupted", float(record.get("updated_at") or state.started_at)
    state.error = _interruption(record, state, models_dir)
    return state


def _interruption(record: dict[str, Any], state: JobState, models_dir: Path) -> str:
    """What the user reads: where the run was, when it was last seen, and what it left."""
    if record.get("epoch"):
        fold = f" of fit {record['fold_index']} of {record['n_folds']}" if record.get("n_folds", 1) > 1 else ""
        where = f"after epoch {record['epoch']} of at most {state.n_epochs}{fold}"
    elif state.steps_total and state.kind == "adapt":
        where = f"at fine-tuning step {state.steps_done} of {state.steps_total}"
    elif state.steps_total:
        fit = f" of fit {state.fit_index} of {state.n_fits}" if state.n_fits > 1 else ""
        where = f"while training the contour networks{fit} (step {state.steps_done} of {state.steps_total})"
    elif state.features_total:
        where = f"while computing features ({state.features_done} of {state.features_total} clips)"
    else:
        where = "while it prepared"
    seen = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.finished_at))
    minutes = max(0.0, state.finished_at - state.started_at) / 60
    try:
        check_bundle(models_dir / state.name)
        saved = f"Its bundle {state.name} had been saved whole just before; the active model is unchanged."
    except SERError:
        saved = "Nothing was saved: no bundle was written, and the active model is unchanged."
    what = "adaptation" if state.kind == "adapt" else "training run"
    return (
        f"Interrupted: the server stopped while this {what} ran, {where}. Last seen {seen}, "
        f"{minutes:.1f} min after it started. {saved}"
    )


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
