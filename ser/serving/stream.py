"""Live audio: a thread-safe ring buffer of the latest audio, classified on demand, and the
speaker's voice profile growing from the stream as it goes.

Frames arrive on another thread (a WebRTC callback) through ``push``; the page polls
``readout`` on its own schedule. No Streamlit call happens here.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from ser.audio.load import to_mono_16k, validate
from ser.errors import AudioContentError
from ser.features.windows import extract_features
from ser.serving.predict import Prediction, Predictor, Timeline
from ser.units import dbfs

PROFILE_TARGET_S = 20.0  # seconds of the speaker's speech before the live readout uses their profile
LISTENING = "listening…"  # what the page shows before the first readout
SILENCE = "silence: speak into the microphone"
NOT_SPEECH = "no speech: sound is coming in, but the voice-activity detector hears no voice in it"


class StreamClassifier:
    """A thread-safe ring buffer of the latest audio, classified on demand.

    Audio frames arrive on another thread (e.g. a WebRTC callback) through ``push``; the page
    polls ``latest`` on its own schedule. No Streamlit call happens here.
    """

    def __init__(self, predictor: Predictor, *, min_s: float = 0.5, history_s: float = 60.0) -> None:
        self.predictor = predictor
        self.capacity = predictor.feature_config.n_samples  # the model's window, e.g. 3 s
        self.min_samples = int(min_s * predictor.feature_config.sample_rate)
        self.history_s = history_s  # how far back ``recent`` reaches
        self._buffer = np.zeros(self.capacity, dtype=np.float32)
        self._filled = 0
        self._history: deque[tuple[float, np.ndarray | None]] = deque()  # (s since the stream began, probabilities)
        self._started: float | None = None  # time.monotonic() of the first audio since a reset
        self._unprofiled = 0  # samples pushed since the profile last learnt from the buffer
        self._voice = predictor.profile_builder("the live stream") if predictor.takes_profiles else None
        self._waiting = LISTENING  # why the last ``latest`` had nothing to show
        self._lock = threading.Lock()
        threading.Thread(target=predictor.warm_up, name="ser-warm-up", daemon=True).start()  # before START

    def push(self, frames: np.ndarray, sample_rate: int) -> None:
        """Append raw frames [shape=(n,) or (n, channels)] at any rate."""
        chunk = to_mono_16k(frames, sample_rate)[-self.capacity :]
        with self._lock:
            self._started = time.monotonic() if self._started is None else self._started
            self._buffer = np.roll(self._buffer, -len(chunk))
            self._buffer[-len(chunk) :] = chunk
            self._filled = min(self.capacity, self._filled + len(chunk))
            self._unprofiled = min(self.capacity, self._unprofiled + len(chunk))

    def reset(self) -> None:
        """Forget the buffered audio (the stream stopped): a new stream starts from silence rather
        than from the end of the last one."""
        with self._lock:
            self._buffer[:] = 0.0
            self._filled = 0
            self._history.clear()
            self._started = None
            self._unprofiled = 0
            self._waiting = LISTENING
            if self._voice is not None:  # the next stream may be someone else
                self._voice = self.predictor.profile_builder("the live stream")

    def level_dbfs(self, last_s: float = 0.1) -> float:
        """RMS level of the most recent audio, dBFS (-120 when nothing has arrived)."""
        n = int(last_s * self.predictor.feature_config.sample_rate)
        with self._lock:
            recent = self._buffer[-n:] if self._filled else np.zeros(1, np.float32)
        return dbfs(np.sqrt(np.mean(np.square(recent, dtype=np.float64))))

    def voice_state(self) -> tuple[float, float] | None:
        """(seconds of the speaker's speech learnt, seconds needed before the profile is used), or
        None for a model that takes no profile."""
        if self._voice is None:
            return None
        with self._lock:
            return self._voice.speech_s, PROFILE_TARGET_S

    def voice_text(self) -> str | None:
        """The profile's state for the page: "learning your voice: 12 s of 20", then what it uses;
        None for a model that takes no profile."""
        state = self.voice_state()
        if state is None:
            return None
        learnt, needed = state
        if learnt < needed:
            return f"learning your voice: {learnt:.0f} s of {needed:.0f} (zero-shot until then)"
        return f"using your voice profile ({learnt:.0f} s of your speech)"

    @property
    def waiting(self) -> str:
        """Why there is no readout, for the page: "listening…" before the first ``min_s`` of audio,
        then ``SILENCE`` or ``NOT_SPEECH`` (sound, but no voice in it)."""
        return self._waiting

    def latest(self) -> Prediction | None:
        """Classify the buffered audio; None until ``min_s`` has arrived, and while it is silent
        or holds no speech (``waiting`` says which). The speech heard so far grows the speaker's
        voice profile, used once it holds ``PROFILE_TARGET_S`` of speech (zero-shot before)."""
        with self._lock:
            if self._filled < self.min_samples:
                self._waiting = LISTENING
                return None
            waveform, new = self._buffer[-self._filled :].copy(), self._unprofiled
            self._unprofiled = 0
            profiled = self._voice is not None and self._voice.speech_s >= PROFILE_TARGET_S
        predictor = self.predictor
        try:
            windows = extract_features(validate(waveform, config=predictor.audio_config),
                                       predictor.windows_config(profiled=profiled), predictor.audio_config)  # fmt: skip
        except AudioContentError:  # silence, or too little sound in the window: nothing to show yet
            self._waiting = SILENCE
            return None
        if not windows.speech.any():  # sound, but no voice in it (what Predictor.answer refuses)
            self._waiting = NOT_SPEECH
            return None
        profile = None
        if self._voice is not None:
            with self._lock:
                self._voice.add_windows(windows, new_s=new / predictor.feature_config.sample_rate)
                ready = self._voice.speech_s >= PROFILE_TARGET_S
                profile = self._voice.profile() if ready else None
        return predictor.answer([windows], profile=profile)[0]

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
