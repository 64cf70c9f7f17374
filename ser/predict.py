"""Serving a bundle: waveform -> emotion probabilities, per clip, per window, or streaming.

Every setting comes from the bundle's card (labels, feature config), never from defaults.
A ``Predictor`` is read-only after construction and safe to share between threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.audio import AudioSource, format_duration, load_audio_head, to_mono_16k, validate
from ser.config import PAUSE, AudioConfig
from ser.errors import AudioContentError
from ser.features import iter_features
from ser.model import Bundle, load_bundle, predict_proba
from ser.registry import MODELS_DIR, serving_bundle


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


def clip_probabilities(window_probabilities: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """A clip's probabilities from its windows': the mean over the speech windows, or over every
    window when none holds enough speech (never an empty mean). Serving, evaluation and training's
    test scores all call this. [shape=(n_windows, n_labels)], [shape=(n_windows,)] -> [shape=(n_labels,)]"""
    speech = np.asarray(speech, dtype=bool)
    return window_probabilities[speech if speech.any() else slice(None)].mean(axis=0)


class Predictor:
    """Classify waveforms with one bundle. Build it once (``from_path``) and reuse it."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.labels = bundle.labels
        self.feature_config = bundle.feature_config
        self.audio_config: AudioConfig = bundle.card.audio_config  # trimming as in training
        self._lock = threading.Lock()  # Keras models are not documented as thread-safe for calls

    @classmethod
    def from_path(cls, path: str | Path | None = None, models_dir: Path = MODELS_DIR) -> Predictor:
        """The bundle at ``path``, or the one ``models_dir`` serves (its active bundle, or a whole one
        when that is damaged; see ``ser.registry.serving_bundle``)."""
        return cls(load_bundle(Path(path) if path else serving_bundle(models_dir)[0]))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Features [shape=(n, n_bins, n_frames)] -> probabilities [shape=(n, n_labels)]"""
        with self._lock:
            return predict_proba(self.bundle.model, features)

    def predict(self, waveform: np.ndarray) -> Prediction:
        """Classify a 16 kHz mono waveform (validated, silence trimmed); a clip longer than the
        window is the mean of its speech windows' probabilities."""
        return self.analyse(waveform)[0]

    def analyse(self, waveform: np.ndarray, *, validated: bool = False) -> tuple[Prediction, Timeline | None]:
        """``predict`` and, for speech longer than the model's window, its ``Timeline``, from one
        pass over the windows of the speech (``ser.features.iter_features``: leading and trailing
        silence trimmed, windows inside a pause marked and left out of the mean); the timeline's
        times count from the start of ``waveform``, so they line up with a plot of it.
        ``validated``: the waveform comes from ``load_audio``, which has checked it already."""
        if not validated:
            waveform = validate(waveform, config=self.audio_config)
        parts = [
            (self.probabilities(w.features[:, 0]), w.starts_s, w.ends_s, w.speech)
            for w in iter_features(waveform, self.feature_config, self.audio_config)
        ]
        probs, starts_s, ends_s, speech = (np.concatenate(column) for column in zip(*parts, strict=True))
        speech = speech if speech.any() else np.ones_like(speech)  # never an empty mean
        duration_s = float(ends_s[-1] - starts_s[0])  # of the trimmed speech
        prediction = self._prediction(clip_probabilities(probs, speech), duration_s, int(speech.sum()))
        if len(starts_s) == 1:
            return prediction, None
        return prediction, Timeline(starts_s, self.feature_config.window_s, probs, self.labels, speech)

    def _prediction(self, probs: np.ndarray, duration_s: float, n_windows: int) -> Prediction:
        label = self.labels[int(np.argmax(probs))]
        return Prediction(label, {k: float(p) for k, p in zip(self.labels, probs, strict=True)}, duration_s, n_windows)


@dataclass(frozen=True)
class Classification:
    """One recording classified (``classify``): what the CLI prints and the Classify page shows."""

    prediction: Prediction
    timeline: Timeline | None  # for speech longer than the model's window
    waveform: np.ndarray  # [shape=(n_samples,)], the decoded audio (up to the cap), for charts
    truncated: bool  # the recording went on past the cap and only its first part was classified
    recording_s: float | None  # the whole recording's length, when its header records it
    cap_s: float  # the cap (AudioConfig.max_duration_s)

    @property
    def note(self) -> str:
        """What the user must be told about the input, e.g. that a long recording was cut."""
        if not self.truncated:
            return ""
        whole = f" of {format_duration(self.recording_s)}" if self.recording_s else ""
        return f"only the first {format_duration(self.cap_s)}{whole} were classified"


def classify(source: AudioSource, predictor: Predictor) -> Classification:
    """Decode any supported file (path, bytes or file object) and classify it: the one road from
    a recording to its emotion, for the command line, the pages and the tests. A recording longer
    than the cap is cut there (``truncated``). Raises SERError for input that cannot be used."""
    head = load_audio_head(source, config=predictor.audio_config)
    prediction, timeline = predictor.analyse(head.waveform, validated=True)
    cap_s = predictor.audio_config.max_duration_s
    return Classification(prediction, timeline, head.waveform, head.truncated, head.duration_s, cap_s)


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
