"""Serving a bundle: waveform -> emotion probabilities, per clip and per window (streams: ser.serving.stream).

Every setting comes from the bundle's card (labels, feature config), never from defaults.
A ``Predictor`` is read-only after construction and safe to share between threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.audio.load import load_audio_head, validate
from ser.audio.sources import AudioSource
from ser.config import NO_SPEECH, AudioConfig, FeatureConfig
from ser.errors import AudioContentError, ModelError, NoSpeechError, SERError
from ser.features.windows import Windows, concatenate_windows, iter_features
from ser.models import Answer
from ser.models.base import SELF_NORMALISED
from ser.models.bundle import Bundle, load_bundle
from ser.store.registry import MODELS_DIR, serving_bundle
from ser.units import cut_note
from ser.voice.profile import VoiceProfile
from ser.voice.smoothing import MIN_CLIPS


@dataclass(frozen=True)
class Prediction:
    label: str  # the most probable emotion
    probabilities: dict[str, float]  # every label of the model, in the card's order
    duration_s: float  # length of the audio that was classified
    n_windows: int  # windows averaged: 1 for a clip that fits the model's window; pauses not counted
    normalised_by: str = ""  # how the speaker's voice was taken out, in words ("zero-shot", "your voice profile")
    # The mean of the speech windows' features as the classifier read them (a speaker-normalised model
    # only): what ``Predictor.smooth`` compares clips of one speaker by.
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    known_voice: str = ""  # the training voice the profile was taken for (ser.models.svm.known_voices), else ""

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
        """One dict per window, for a table or a CSV: start_s, end_s, emotion (or "no speech"), and
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
        """Each window's most probable emotion, or "no speech" where the window holds too little speech."""
        best = self.probabilities.argmax(axis=1)
        return [self.labels[i] if s else NO_SPEECH for i, s in zip(best, self.speech, strict=True)]


def clip_probabilities(window_probabilities: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """A clip's probabilities from its windows': the mean over the speech windows, or over every
    window when none holds enough speech (never an empty mean). Serving, evaluation and training's
    test scores all call this; serving never reaches the second case, as it answers a recording
    without speech with NoSpeechError, while a corpus clip without a speech window is still scored.
    [shape=(n_windows, n_labels)], [shape=(n_windows,)] -> [shape=(n_labels,)]"""
    speech = np.asarray(speech, dtype=bool)
    return window_probabilities[speech if speech.any() else slice(None)].mean(axis=0)


class Predictor:
    """Classify waveforms with one bundle. Build it once (``from_path``) and reuse it. How a clip's
    windows are answered (with a voice profile or without, smoothed over a speaker's clips) is the
    bundle's kind's to say (``ser.models``); this class runs the road from a waveform to those windows
    and from their answer to a ``Prediction``."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.labels = bundle.labels
        self.feature_config = bundle.feature_config
        self.audio_config: AudioConfig = bundle.card.audio_config  # trimming as in training
        self._lock = threading.Lock()  # Keras models are not documented as thread-safe for calls
        self._warm = False  # warm_up has run

    @classmethod
    def from_path(cls, path: str | Path | None = None, models_dir: Path = MODELS_DIR) -> Predictor:
        """The bundle at ``path``, or the one ``models_dir`` serves (its active bundle, or a whole one
        when that is damaged; see ``ser.store.registry.serving_bundle``)."""
        return cls(load_bundle(Path(path) if path else serving_bundle(models_dir)[0]))

    @property
    def takes_profiles(self) -> bool:
        return self.model.takes_profiles

    @property
    def profile_space(self) -> str:
        """The feature space of the voice profiles the model reads (ModelError for one that reads none)."""
        return self.model.profile_space

    def predict(self, waveform: np.ndarray, *, profile: VoiceProfile | None = None) -> Prediction:
        """Classify a 16 kHz mono waveform (validated, silence trimmed); a clip longer than the
        window is the mean of its speech windows' probabilities."""
        return self.analyse(waveform, profile=profile)[0]

    def analyse(
        self, waveform: np.ndarray, *, validated: bool = False, profile: VoiceProfile | None = None
    ) -> tuple[Prediction, Timeline | None]:
        """``predict`` and, for speech longer than the model's window, its ``Timeline``, from one
        pass over the windows of the speech (``ser.features.windows.iter_features``: leading and trailing
        silence trimmed, windows inside a pause marked and left out of the mean); the timeline's
        times count from the start of ``waveform``, so they line up with a plot of it.

        A model that takes voice profiles reads the speaker's ``profile`` when given; without one, its
        kind decides (``Model.clip_profile``: a long recording by its own speech, a short one
        zero-shot). ``validated``: the waveform comes from ``load_audio``."""
        if not validated:
            waveform = validate(waveform, config=self.audio_config)
        config = self.windows_config(profiled=profile is not None)
        return self.answer(iter_features(waveform, config, self.audio_config), profile=profile)

    def windows_config(self, *, profiled: bool) -> FeatureConfig:
        """The features to compute for an answer with a profile (``profiled``) or without: only a
        zero-shot answer reads the contours (``ser.models.svm.contours``), so with a profile they are left out."""
        if profiled and self.feature_config.contours:
            return dataclasses.replace(self.feature_config, contours=False)
        return self.feature_config

    def answer(
        self, chunks: Iterable[Windows], *, profile: VoiceProfile | None = None
    ) -> tuple[Prediction, Timeline | None]:
        """``analyse`` of windows already computed (``ser.features.windows.iter_features``)."""
        if self.takes_profiles:  # functionals: a few hundred bytes a window, so all are kept at once
            whole = concatenate_windows(list(chunks))
            chunks = [whole]
            speech_s = whole.speech_span_s()
            profile, how = self.model.clip_profile(whole.features[:, 0], whole.speech, speech_s, profile)
        else:  # it normalises each window by itself, so the chunks can stream through
            profile, how = None, SELF_NORMALISED
        # Each chunk's features are let go once scored (a CNN's hour of audio is never held whole).
        parts = [(self._scores(w, profile), w.starts_s, w.ends_s, w.speech) for w in chunks]
        answers, starts_s, ends_s, speech = zip(*parts, strict=True)
        starts_s, ends_s, speech = (np.concatenate(column) for column in (starts_s, ends_s, speech))
        probs = np.concatenate([a.probs for a in answers])
        known = answers[0].known_voice
        if known:
            how += f"; a voice it was trained on ({known}), answered mostly by its own classifier"
        vector = None
        if answers[0].vectors is not None:
            vector = clip_probabilities(np.concatenate([a.vectors for a in answers]), speech)
        duration_s = float(ends_s[-1] - starts_s[0])  # of the trimmed speech
        if not speech.any():
            raise NoSpeechError(
                f"no speech: the voice-activity detector heard no voice in its {duration_s:.1f} s "
                "of sound (a tone, noise or music?); record or upload someone speaking"
            )
        prediction = self._prediction(
            clip_probabilities(probs, speech), duration_s, int(speech.sum()), how, vector, known
        )
        if len(starts_s) == 1:
            return prediction, None
        return prediction, Timeline(starts_s, self.feature_config.window_s, probs, self.labels, speech)

    def _scores(self, windows: Windows, profile: VoiceProfile | None) -> Answer:
        contours = None if windows.contours is None else windows.contours[:, 0]
        with self._lock:
            return self.model.answer(windows.features[:, 0], contours=contours, profile=profile)

    def warm_up(self) -> None:
        """Load now what the first clip would wait for: openSMILE, the voice-activity detector, the
        network's first call (about a second, once per process). The Live page calls it while the
        user reaches for START; a 1 s tone goes the whole road, to its "no speech". Once per predictor."""
        if self._warm:
            return
        self._warm = True
        tone = 0.1 * np.sin(
            2 * np.pi * 220 * np.arange(self.feature_config.sample_rate) / self.feature_config.sample_rate
        )
        with contextlib.suppress(SERError):
            self.analyse(tone.astype(np.float32))

    def profile_builder(self, source: str = "") -> SpeakerProfileBuilder:
        """An empty profile of this model's feature space, to fill with a speaker's audio."""
        if not self.takes_profiles:
            raise ModelError(f"{self.bundle.name} normalises each clip by itself and takes no voice profile")
        return SpeakerProfileBuilder(self, source)

    def build_profile(self, waveforms: Sequence[np.ndarray], source: str = "") -> VoiceProfile:
        """A voice profile from recordings of one speaker (validated 16 kHz waveforms). Raises
        AudioContentError when they hold no speech at all."""
        builder = self.profile_builder(source)
        for waveform in waveforms:
            builder.add_waveform(waveform)
        profile = builder.profile()
        if profile is None:
            raise AudioContentError("none of the recordings holds speech to learn the voice from")
        return profile

    def _prediction(
        self, probs: np.ndarray, duration_s: float, n_windows: int, how: str = "", vector: np.ndarray | None = None,
        known_voice: str = "",
    ) -> Prediction:  # fmt: skip
        label = self.labels[int(np.argmax(probs))]
        probabilities = {k: float(p) for k, p in zip(self.labels, probs, strict=True)}
        return Prediction(label, probabilities, duration_s, n_windows, how, vector, known_voice)

    def smooth(self, predictions: Sequence[Prediction]) -> list[Prediction]:
        """The answers to several clips of one speaker, each smoothed over the speaker's clips nearest it
        (``Model.smooth``), as ``evaluate --per-speaker`` scores them: the clips must have been
        classified with that speaker's voice profile. Unchanged for a model that does not smooth,
        fewer than ``ser.voice.smoothing.MIN_CLIPS`` clips, or a voice it was trained on (its own
        classifier answers it)."""
        unsmoothed = any(p.vector is None or p.known_voice for p in predictions)
        if not self.model.smooths or len(predictions) < MIN_CLIPS or unsmoothed:
            return list(predictions)
        probs = np.array([[p.probabilities[label] for label in self.labels] for p in predictions])
        smoothed = self.model.smooth(probs, np.array([p.vector for p in predictions]))
        how = f"smoothed over the {len(predictions)} clips of this speaker"
        return [
            self._prediction(row, p.duration_s, p.n_windows, f"{p.normalised_by}; {how}".lstrip("; "), p.vector)
            for p, row in zip(predictions, smoothed, strict=True)
        ]


class SpeakerProfileBuilder:
    """A voice profile in a predictor's feature space, grown from a speaker's audio as it comes:
    files marked as one speaker, a "my voice" recording, a live stream. Only speech windows count."""

    def __init__(self, predictor: Predictor, source: str = "") -> None:
        self.predictor = predictor
        self._builder = predictor.model.profile_builder(source)
        self._covered_s = -np.inf  # the end of the recording's speech counted so far (add_windows)

    @property
    def speech_s(self) -> float:
        return self._builder.speech_s

    def add_windows(self, windows: Windows, *, new_s: float | None = None) -> None:
        """The speech windows of ``windows``, the next chunk of the recording so far (``add_waveform``
        starts a new one); ``new_s``: seconds of audio they add (a stream's, whose windows are each
        the latest seconds), else the seconds of speech they cover that earlier chunks did not."""
        speech = windows.speech
        if not speech.any():
            return
        vectors = windows.features[speech, 0].reshape(int(speech.sum()), -1)
        if new_s is None:
            new_s = windows.speech_span_s(self._covered_s)
            self._covered_s = max(self._covered_s, float(windows.ends_s[speech].max()))
        self._builder.add(vectors, new_s)

    def add_waveform(self, waveform: np.ndarray) -> None:
        """Every speech window of a validated waveform, another recording of the speaker (one with
        too little sound adds nothing)."""
        predictor = self.predictor
        self._covered_s = -np.inf  # its own clock
        try:
            for windows in iter_features(waveform, predictor.feature_config, predictor.audio_config):
                self.add_windows(windows)
        except AudioContentError:
            return

    def profile(self) -> VoiceProfile | None:
        return self._builder.profile()


@dataclass(frozen=True)
class Classification:
    """One recording classified (``classify``): what the CLI prints and the Classify page shows."""

    prediction: Prediction
    timeline: Timeline | None  # for speech longer than the model's window
    waveform: np.ndarray  # [shape=(n_samples,)], the decoded audio (up to the cap), for charts
    truncated: bool  # the recording went on past the cap and only its first part was classified
    recording_s: float | None  # the whole recording's length, when its header records it
    cap_s: float  # the cap (AudioConfig.max_duration_s)
    decoded_s: float  # the length of ``waveform``, kept when a batch lets go of the samples (``without_audio``)

    def without_audio(self) -> Classification:
        """This answer without its samples: what a batch keeps of each file until all are classified."""
        return dataclasses.replace(self, waveform=self.waveform[:0])

    @property
    def note(self) -> str:
        """What the user must be told about the input, e.g. that a long recording was cut."""
        return cut_note(self.cap_s, self.recording_s) if self.truncated else ""


def classify(source: AudioSource, predictor: Predictor, *, profile: VoiceProfile | None = None) -> Classification:
    """Decode any supported file (path, bytes or file object) and classify it: the one road from
    a recording to its emotion, for the command line, the pages and the tests. A recording longer
    than the cap is cut there (``truncated``). ``profile``: the speaker's voice profile, for a
    model that takes one. Raises SERError for input that cannot be used."""
    head = load_audio_head(source, config=predictor.audio_config)
    prediction, timeline = predictor.analyse(head.waveform, validated=True, profile=profile)
    cap_s = predictor.audio_config.max_duration_s
    decoded_s = len(head.waveform) / predictor.audio_config.sample_rate
    return Classification(prediction, timeline, head.waveform, head.truncated, head.duration_s, cap_s, decoded_s)


def one_speaker_profile(
    sources: Sequence[AudioSource], predictor: Predictor, *, noun: str = "files", what: str = "marked as one speaker"
) -> tuple[VoiceProfile, dict[int, str]]:
    """The voice profile of recordings of one speaker (``predict --same-speaker``, the Classify
    page's "these clips are one speaker", "my voice"), from those that can be used; its source says
    how many of them that was ("2 of 3 files marked as one speaker"); and, by their index in
    ``sources``, why the others could not be decoded. Raises SERError when none holds speech, with
    the reason when none could even be decoded."""
    builder = predictor.profile_builder()
    used, problems = 0, {}
    for i, source in enumerate(sources):
        before_s = builder.speech_s
        try:
            builder.add_waveform(load_audio_head(source, config=predictor.audio_config).waveform)
        except SERError as e:
            problems[i] = str(e)
        used += builder.speech_s > before_s
    profile = builder.profile()
    if profile is None:
        why = f" ({problems[0]})" if len(problems) == len(sources) else ""  # none decoded: the first's reason
        raise AudioContentError(f"none of the {len(sources)} {noun} holds speech to learn the voice from{why}")
    counted = f"{used} of {len(sources)}" if used < len(sources) else f"{used}"
    return dataclasses.replace(profile, source=f"{counted} {noun} {what}"), problems
