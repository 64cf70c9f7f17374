"""Voice profiles: one speaker's feature statistics, from unlabelled audio of that speaker.

A model that knows a speaker's profile normalises that speaker's features by it before it
classifies them, so the speaker's own voice (pitch range, timbre, loudness, microphone) is
taken out and what is left is how this recording differs from how they usually sound. Without
a profile, the bundle's fall-back statistics stand in (zero-shot).

A profile is built from any audio of the speaker (a batch marked as one speaker, a long
recording's own windows, a live stream as it goes, a "my voice" recording), grows as more
audio arrives (``ProfileBuilder``), and is saved and loaded as a small JSON file that is
validated like any other input: a damaged, foreign or hand-edited file is a ProfileError.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ser.errors import ModelError, ProfileError
from ser.voice.smoothing import Smoothing

PROFILE_FORMAT = "ser-voice-profile"  # the "format" field of a profile file
PROFILE_VERSION = 1
MAX_PROFILE_BYTES = 1 << 20  # a profile file is a few kB; anything near a megabyte is not one
MIN_STD = 1e-3  # a dimension that never moved in the speaker's audio is not divided by ~0
# eGeMAPS' coefficients of variation are heavy-tailed (up to 10^6 where a mean nears 0): uncapped, one
# such value puts a window so far from every support vector that the RBF kernel leaves only the
# SVM's bias to answer. 1.8 % of the pool's windows have a dimension beyond 10 standard deviations.
Z_LIMIT = 10.0
SHRINK_K = 10  # a profile of k windows weighs k / (k + SHRINK_K) against the fall-back (Normalisation.shrunk)


@dataclass(frozen=True)
class VoiceProfile:
    """Mean and spread of a speaker's feature vectors in one feature space."""

    space: str  # the feature space it describes (a bundle's ``normalisation_space``)
    mean: np.ndarray  # [shape=(n_dims,)], float64
    std: np.ndarray  # [shape=(n_dims,)], float64, at least MIN_STD
    speech_s: float  # seconds of speech it was computed from
    n_vectors: int  # feature vectors (frames, windows or clips) behind it
    source: str = ""  # how it was made, for the user: "3 files marked as one speaker", "the live stream"

    def normalise(self, vectors: np.ndarray, z_limit: float = Z_LIMIT) -> np.ndarray:
        """Vectors [shape=(..., n_dims)] in this speaker's units: (x - mean) / std, capped at +-``z_limit``."""
        return np.clip((vectors - self.mean) / self.std, -z_limit, z_limit).astype(np.float32)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": PROFILE_FORMAT,
                "version": PROFILE_VERSION,
                "space": self.space,
                "speech_s": round(self.speech_s, 3),
                "n_vectors": self.n_vectors,
                "source": self.source,
                "mean": [float(x) for x in self.mean],
                "std": [float(x) for x in self.std],
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, space: str | None = None) -> VoiceProfile:
        """A profile from its file's contents, checked whole. ``space``: the feature space the
        model that will use it expects; a profile of another space is refused. Raises ProfileError."""
        data = _parse(text)
        if data.get("format") != PROFILE_FORMAT or data.get("version") != PROFILE_VERSION:
            raise ProfileError(
                f"this is not a SER Studio voice profile (format {data.get('format')!r}, version "
                f"{data.get('version')!r}; expected {PROFILE_FORMAT!r} version {PROFILE_VERSION})"
            )
        if space is not None and data.get("space") != space:
            raise ProfileError(
                f"this voice profile was made for another model (feature space {data.get('space')!r}, this model "
                f"uses {space!r}); build a new profile from a few recordings"
            )
        mean, std = _vector(data, "mean"), _vector(data, "std")
        if len(mean) != len(std) or not len(mean):
            raise ProfileError(f"the profile's mean and std differ in length ({len(mean)} and {len(std)})")
        if (std < MIN_STD).any():
            raise ProfileError(f"the profile's std has values below {MIN_STD}: the file was edited or damaged")
        speech_s, n_vectors = data.get("speech_s"), data.get("n_vectors")
        if not _positive_number(speech_s) or not isinstance(n_vectors, int) or n_vectors < 1:
            raise ProfileError("the profile's speech_s and n_vectors must be positive numbers")
        return cls(str(data["space"]), mean, std, float(speech_s), n_vectors, str(data.get("source", "")))


class ProfileBuilder:
    """Running statistics of a speaker's feature vectors: add audio as it comes, read the profile
    at any time. Exact (sums of x and x^2 in float64), so the order of the audio does not matter."""

    def __init__(self, space: str, n_dims: int, *, source: str = "") -> None:
        self.space, self.source = space, source
        self._sum = np.zeros(n_dims)
        self._sum_sq = np.zeros(n_dims)
        self._weight = 0.0  # the vectors' total weight (their number, unless ``add`` was given weights)
        self.n_vectors = 0
        self.speech_s = 0.0

    def add(self, vectors: np.ndarray, speech_s: float, weights: np.ndarray | None = None) -> None:
        """Feature vectors [shape=(n, n_dims)] of ``speech_s`` seconds of the speaker's speech;
        ``weights`` [shape=(n,)]: how much each vector counts in the statistics (default 1 each)."""
        vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, len(self._sum))
        w = np.ones(len(vectors)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(len(vectors))
        self._sum += w @ vectors
        self._sum_sq += w @ vectors**2
        self._weight += float(w.sum())
        self.n_vectors += len(vectors)
        self.speech_s += float(speech_s)

    def profile(self) -> VoiceProfile | None:
        """The profile so far, or None before any audio."""
        if self._weight <= 0:  # no audio yet (or only weightless vectors)
            return None
        mean = self._sum / self._weight
        std = np.sqrt(np.maximum(self._sum_sq / self._weight - mean**2, 0.0))
        return VoiceProfile(self.space, mean, np.maximum(std, MIN_STD), self.speech_s, self.n_vectors, self.source)


def _parse(text: str | bytes) -> dict[str, Any]:
    if len(text) > MAX_PROFILE_BYTES:
        raise ProfileError(f"the file is {len(text):,} bytes; a voice profile is a small JSON file of a few kB")
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileError(f"the file is not a voice profile: it is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ProfileError("the file is not a voice profile: its JSON is not an object")
    return data


def _vector(data: dict[str, Any], key: str) -> np.ndarray:
    values = data.get(key)
    if not isinstance(values, list) or not all(_finite_number(v) for v in values):
        raise ProfileError(f"the profile's {key!r} must be a list of finite numbers")
    return np.array(values, dtype=np.float64)


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_number(value: Any) -> bool:
    return _finite_number(value) and value > 0


def feature_space(kind: str, n_dims: int, window_s: float) -> str:
    """The name of a feature space: profiles of one space serve every model that reads it."""
    return f"{kind}-{n_dims}-w{window_s:g}s"


@dataclass(frozen=True)
class VoiceMatch:
    """When a profile is taken for a voice the model was trained on (``ser.models.svm.known_voices``): it holds at
    least ``min_vectors`` feature vectors and its match statistic to that voice (the nearest) is
    below ``threshold``; the answer is then ``weight`` x that voice's classifier + (1 - ``weight``)
    x the pooled one, not smoothed."""

    # Almost every voice a user brings is new, and a new voice taken for a known one loses more than a
    # known one gains: the threshold sits well below every new voice measured (3.15 and up; docs/model.md,
    # "A voice it was trained on"; the figures: docs/research.md).
    threshold: float = 2.0
    min_vectors: int = 50  # below about 50, new voices came within the threshold of a training voice
    weight: float = 0.75
    z2_cap: float = 25.0  # a dimension's squared standard score counts at most this much in the statistic

    def __post_init__(self) -> None:
        if not (self.threshold > 0 and self.min_vectors >= 1 and 0.0 <= self.weight <= 1.0 and self.z2_cap > 0):
            raise ModelError(f"known-voice settings out of range: {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoiceMatch:
        try:
            # z2_cap: a card of schema 2 or earlier lacks it; its bundles were all served with 25
            z2_cap = float(data.get("z2_cap", 25.0))
            return cls(float(data["threshold"]), int(data["min_vectors"]), float(data["weight"]), z2_cap)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"the card's known-voice settings are damaged ({e})") from e


@dataclass(frozen=True)
class Normalisation:
    """How a bundle's features are put in the speaker's terms before its classifier: by the
    speaker's voice profile when there is one, else by the fall-back statistics of its training
    speakers (zero-shot). ``unknown_dims`` are dimensions that only mean something relative to the
    speaker (the level): zero-shot sets them to the average, 0. ``smoothing``: how the answers to
    several clips of one speaker lean on each other (``ser.voice.smoothing``); None for a bundle made
    before it existed, whose answers stay each clip's own. ``voices``: when a profile is taken for
    a voice the model was trained on (``ser.models.svm.known_voices``); None for a bundle made before then.
    ``z_limit`` and ``shrink_k``: the cap on normalised values and the profile's shrinkage
    (``shrunk``); a card of schema 2 or earlier lacks them, and its bundles were served with the defaults."""

    space: str
    fallback: VoiceProfile
    unknown_dims: tuple[int, ...] = ()
    smoothing: Smoothing | None = None
    voices: VoiceMatch | None = None
    z_limit: float = Z_LIMIT
    shrink_k: float = SHRINK_K

    def apply(self, vectors: np.ndarray, profile: VoiceProfile | None = None) -> np.ndarray:
        """Vectors [shape=(n, n_dims)] normalised by ``profile``, or zero-shot by the fall-back."""
        if profile is None:
            z = self.fallback.normalise(vectors, self.z_limit)
            z[..., list(self.unknown_dims)] = 0.0
            return z
        if profile.space != self.space:
            raise ProfileError(
                f"the voice profile is of feature space {profile.space!r}; this model reads {self.space!r}"
            )
        return self.shrunk(profile).normalise(vectors, self.z_limit)

    def shrunk(self, profile: VoiceProfile) -> VoiceProfile:
        """``profile`` blended towards the fall-back by how much audio it holds: weight k / (k + shrink_k)
        for k vectors. A profile of a few clips is noisy; shrunk, it moves the answer only a little, and
        shrink_k was fixed beforehand, not tuned (docs/model.md, "Voices: the speaker normalisation")."""
        w = profile.n_vectors / (profile.n_vectors + self.shrink_k)
        mean = w * profile.mean + (1 - w) * self.fallback.mean
        std = np.sqrt(w * profile.std**2 + (1 - w) * self.fallback.std**2)
        return dataclasses.replace(profile, mean=mean, std=std)

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "fallback": json.loads(self.fallback.to_json()),
            "unknown_dims": list(self.unknown_dims),
            "z_limit": self.z_limit,
            "shrink_k": self.shrink_k,
            **({"smoothing": self.smoothing.to_dict()} if self.smoothing else {}),
            **({"voices": self.voices.to_dict()} if self.voices else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalisation:
        fallback = VoiceProfile.from_json(json.dumps(data["fallback"]), space=data["space"])
        smoothing = Smoothing.from_dict(data["smoothing"]) if data.get("smoothing") else None
        voices = VoiceMatch.from_dict(data["voices"]) if data.get("voices") else None
        unknown = tuple(int(i) for i in data.get("unknown_dims", ()))
        limits = float(data.get("z_limit", Z_LIMIT)), float(data.get("shrink_k", SHRINK_K))
        return cls(data["space"], fallback, unknown, smoothing, voices, *limits)
