"""Serving a bundle: waveform -> emotion probabilities, per clip, per window, or streaming.

Every setting comes from the bundle's card (labels, feature config), never from defaults.
A ``Predictor`` is read-only after construction and safe to share between threads.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.audio import TRIM_HOP, frame_bounds, load_audio, loud_frames, to_mono_16k, validate
from ser.config import PAUSE, AudioConfig
from ser.errors import AudioContentError
from ser.features import iter_windows
from ser.model import MODELS_DIR, Bundle, load_bundle, serving_bundle


@dataclass(frozen=True)
class Prediction:
    label: str  # the most probable emotion
    probabilities: dict[str, float]  # every label of the model, in the card's order
    duration_s: float  # length of the audio that was classified
    n_windows: int  # windows averaged: 1 for a clip that fits the model's window; pauses not counted

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


@dataclass(frozen=True)
class Timeline:
    starts_s: np.ndarray  # [shape=(n_windows,)] start of each window
    window_s: float  # length of each window
    probabilities: np.ndarray  # [shape=(n_windows, n_labels)]
    labels: list[str]
    speech: np.ndarray  # [shape=(n_windows,)], bool: False for a pause (less than the minimum clip of speech)

    def rows(self) -> list[dict[str, float | str]]:
        """One dict per window, for a table or a CSV: start_s, end_s, emotion (or "pause"), and
        each label's probability (the model's output even in a pause, which is not counted)."""
        return [
            {
                "start_s": round(float(start), 3),
                "end_s": round(float(start) + self.window_s, 3),
                "emotion": winner,
                **{label: round(float(p), 4) for label, p in zip(self.labels, probs, strict=True)},
            }
            for start, winner, probs in zip(self.starts_s, self.winners, self.probabilities, strict=True)
        ]

    @property
    def winners(self) -> list[str]:
        """Each window's most probable emotion, or "pause" where the window holds too little speech."""
        return [
            self.labels[i] if s else PAUSE for i, s in zip(self.probabilities.argmax(axis=1), self.speech, strict=True)
        ]


class Predictor:
    """Classify waveforms with one bundle. Build it once (``from_path``) and reuse it."""

    def __init__(self, bundle: Bundle, audio_config: AudioConfig = AudioConfig()) -> None:
        self.bundle = bundle
        self.labels = bundle.labels
        self.feature_config = bundle.feature_config
        self.audio_config = audio_config
        self._lock = threading.Lock()  # Keras models are not documented as thread-safe for calls

    @classmethod
    def from_path(cls, path: str | Path | None = None, models_dir: Path = MODELS_DIR) -> Predictor:
        """The bundle at ``path``, or the one ``models_dir`` serves (its active bundle, or a whole one
        when that is damaged; see ``ser.registry.serving_bundle``)."""
        return cls(load_bundle(Path(path) if path else serving_bundle(models_dir)[0]))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Features [shape=(n, n_bins, n_frames)] -> probabilities [shape=(n, n_labels)]"""
        with self._lock:
            # predict_on_batch runs a compiled graph: ~1.5 ms for one window against ~10 ms for an
            # eager call of the same model on 2 cores.
            return np.asarray(self.bundle.model.predict_on_batch(features.astype(np.float32)))

    def predict(self, waveform: np.ndarray) -> Prediction:
        """Classify a 16 kHz mono waveform (validated, silence trimmed); a clip longer than the
        window is the mean of its windows' probabilities."""
        return self.analyse(waveform)[0]

    def analyse(self, waveform: np.ndarray) -> tuple[Prediction, Timeline | None]:
        """``predict`` and, for speech longer than the model's window, its ``Timeline``, from one
        pass over the windows of the speech (leading and trailing silence trimmed); the timeline's
        times count from the start of ``waveform``, so they line up with a plot of it. Windows
        inside a pause (less than ``min_duration_s`` of speech) are marked, not averaged."""
        waveform = validate(waveform, config=self.audio_config)
        loud = loud_frames(waveform, top_db=self.audio_config.trim_top_db)  # one pass: trimming and pauses
        start, end = frame_bounds(loud, len(waveform))
        speech, sr = waveform[start:end], self.feature_config.sample_rate
        timeline = self._timeline(speech, loud[start // TRIM_HOP :])
        kept = timeline.probabilities[timeline.speech]
        prediction = self._prediction(kept.mean(axis=0), len(speech) / sr, len(kept))
        if len(timeline.starts_s) == 1:
            return prediction, None
        return prediction, dataclasses.replace(timeline, starts_s=timeline.starts_s + start / sr)

    def window_probabilities(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of each window of ``waveform`` [shape=(n_windows, n_labels)] and the
        windows' start times in s [shape=(n_windows,)]: one window for a clip that fits the model's,
        else one every ``hop_s``. Windows go through the model a chunk at a time (``iter_windows``),
        so an hour-long recording needs no more memory than a few minutes of it."""
        chunks = [
            (self.probabilities(features), starts) for features, starts in iter_windows(waveform, self.feature_config)
        ]
        return np.concatenate([p for p, _ in chunks]), np.concatenate([s for _, s in chunks])

    def predict_file(self, source) -> Prediction:
        """Decode any supported file, path, bytes or file object, then classify it."""
        return self.predict(load_audio(source, config=self.audio_config))

    def timeline(self, waveform: np.ndarray) -> Timeline:
        """Per-window probabilities over a clip (one window when it fits the model's window)."""
        return self._timeline(validate(waveform, config=self.audio_config))

    def _timeline(self, waveform: np.ndarray, loud: np.ndarray | None = None) -> Timeline:
        """``loud``: the waveform's ``loud_frames``, when the caller has them already."""
        if loud is None:
            loud = loud_frames(waveform, top_db=self.audio_config.trim_top_db)
        probs, starts_s = self.window_probabilities(waveform)
        return Timeline(starts_s, self.feature_config.window_s, probs, self.labels, self.speech_windows(loud, starts_s))

    def speech_windows(self, loud: np.ndarray, starts_s: np.ndarray) -> np.ndarray:
        """Whether each window (starting at ``starts_s``) holds at least ``min_duration_s`` of speech,
        counted in ``loud`` (``ser.audio.loud_frames``: louder than ``trim_top_db`` below the peak,
        as trimming decides). Returns np.ndarray [shape=(n_windows,)], bool"""
        loud = np.concatenate([[0], np.cumsum(loud)])
        sr = self.feature_config.sample_rate
        first = np.round(starts_s * sr / TRIM_HOP).astype(int)
        last = np.minimum(first + round(self.feature_config.window_s * sr / TRIM_HOP), len(loud) - 1)
        speech_s = (loud[last] - loud[np.minimum(first, len(loud) - 1)]) * TRIM_HOP / sr
        speech = speech_s >= self.audio_config.min_duration_s
        return speech if speech.any() else np.ones_like(speech)  # never an empty mean

    def _prediction(self, probs: np.ndarray, duration_s: float, n_windows: int) -> Prediction:
        label = self.labels[int(np.argmax(probs))]
        return Prediction(label, {k: float(p) for k, p in zip(self.labels, probs, strict=True)}, duration_s, n_windows)


class StreamClassifier:
    """A thread-safe ring buffer of the latest audio, classified on demand.

    Audio frames arrive on another thread (e.g. a WebRTC callback) through ``push``; the page
    polls ``latest`` on its own schedule. No Streamlit call happens here.
    """

    def __init__(self, predictor: Predictor, *, min_s: float = 1.0, history_s: float = 60.0) -> None:
        self.predictor = predictor
        self.capacity = predictor.feature_config.n_samples  # the model's window, e.g. 3 s
        self.min_samples = int(min_s * predictor.feature_config.sample_rate)
        self.history_s = history_s  # how far back ``recent`` reaches
        self._buffer = np.zeros(self.capacity, dtype=np.float32)
        self._filled = 0
        self._history: deque[tuple[float, np.ndarray | None]] = deque()  # (s since the stream began, probabilities)
        self._started: float | None = None  # time.monotonic() of the first audio since a reset
        self._lock = threading.Lock()

    def push(self, frames: np.ndarray, sample_rate: int) -> None:
        """Append raw frames [shape=(n,) or (n, channels)] at any rate."""
        chunk = to_mono_16k(frames, sample_rate)[-self.capacity :]
        with self._lock:
            self._started = time.monotonic() if self._started is None else self._started
            self._buffer = np.roll(self._buffer, -len(chunk))
            self._buffer[-len(chunk) :] = chunk
            self._filled = min(self.capacity, self._filled + len(chunk))

    def reset(self) -> None:
        """Forget the buffered audio (the stream stopped): a new stream starts from silence rather
        than from the end of the last one."""
        with self._lock:
            self._buffer[:] = 0.0
            self._filled = 0
            self._history.clear()
            self._started = None

    def level_dbfs(self, last_s: float = 0.1) -> float:
        """RMS level of the most recent audio, dBFS (-120 when nothing has arrived)."""
        n = int(last_s * self.predictor.feature_config.sample_rate)
        with self._lock:
            recent = self._buffer[-n:] if self._filled else np.zeros(1, np.float32)
        return float(20 * np.log10(np.sqrt(np.mean(recent**2)) + 1e-6))

    def latest(self) -> Prediction | None:
        """Classify the buffered audio; None until ``min_s`` has arrived or while it is silent."""
        with self._lock:
            if self._filled < self.min_samples:
                return None
            waveform = self._buffer[-self._filled :].copy()
        try:
            return self.predictor.predict(waveform)
        except AudioContentError:  # silence or too little speech in the window: nothing to show yet
            return None

    def readout(self, now: float | None = None) -> Prediction | None:
        """``latest``, remembered for ``recent`` (a pause where there is no speech to classify);
        ``now`` is a ``time.monotonic()`` reading, taken here when not given."""
        prediction = self.latest()
        now = time.monotonic() if now is None else now
        probabilities = None if prediction is None else np.array(list(prediction.probabilities.values()))
        with self._lock:
            if self._started is None:  # no audio yet: nothing to remember
                return prediction
            self._history.append((now - self._started, probabilities))
            while self._history and self._history[0][0] < now - self._started - self.history_s:
                self._history.popleft()
        return prediction

    def recent(self) -> Timeline | None:
        """The readouts of the last ``history_s`` as a ``Timeline`` whose windows end at each
        readout, in seconds since the stream began (the first window may reach back before it);
        pauses marked. None before two readouts."""
        with self._lock:
            history = list(self._history)
        if len(history) < 2:
            return None
        labels, window_s = self.predictor.labels, self.predictor.feature_config.window_s
        times = np.array([t for t, _ in history])
        probabilities = np.array([np.zeros(len(labels)) if p is None else p for _, p in history])
        speech = np.array([p is not None for _, p in history])
        return Timeline(times - window_s, window_s, probabilities, labels, speech)
