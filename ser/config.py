"""Settings shared by every stage: label set, audio, features and training.

Options are frozen dataclasses; variants are made with ``dataclasses.replace``.
The feature config and label order travel inside every model bundle and are
read back at prediction time, so training and serving cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent  # the checkout: models/ and assets/ beside ser/

# The seven classes of the model, in the order of its output units.
EMOTIONS = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
# Emotions some corpora have (RAVDESS calm, EmoDB boredom, IEMOCAP frustrated and excited, MSP-Podcast
# contempt and other): kept in manifests and counted, not modelled.
EXTRA_EMOTIONS = ("calm", "boredom", "frustrated", "excited", "contempt", "other")
ALL_EMOTIONS = EMOTIONS + EXTRA_EMOTIONS

SAMPLE_RATE = 16_000  # Hz, the one rate inside the library
NO_SPEECH = "no speech"  # a timeline window with too little speech to classify (see ser.serving.predict.Timeline)
# Names of audio files, in a corpus and in the Classify page's uploader: what ser.audio.load decodes.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".m4a", ".aac", ".webm", ".opus")
FEATURE_KINDS = ("logmel", "mfcc", "egemaps")
N_CONTOUR = 25  # eGeMAPS v02's low-level descriptors, every 10 ms: what its functionals summarise
CONTOUR_RATE = 100  # descriptor frames a second
N_EGEMAPS = 88  # eGeMAPS v02 functionals (openSMILE); the "egemaps" kind adds the window's level as one more
STRATEGIES = ("default", "mirrored", "multi-worker")  # tf.distribute strategies training can run under
NORMALIZATIONS = ("band_mean", "utterance", "none")  # see FeatureConfig.normalize


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = SAMPLE_RATE  # every waveform is resampled to this rate
    min_duration_s: float = 0.3  # shorter clips carry too little speech to classify
    max_duration_s: float = 3600.0  # longer recordings are refused with a message
    silence_dbfs: float = -60.0  # a clip whose peak is below this is called silent
    trim_top_db: float = 30.0  # leading/trailing parts this far below the peak are trimmed
    # A window is speech where it is loud and the voice-activity detector (ser.audio.speech) hears a voice
    # for min_duration_s; off, loudness alone decides (the bundles of before the detector were).
    detect_voice: bool = True


@dataclass(frozen=True)
class FeatureConfig:
    kind: str = "logmel"  # one of FEATURE_KINDS: frame matrices ("logmel", "mfcc") or "egemaps" functionals
    sample_rate: int = SAMPLE_RATE  # Hz of the waveforms fed in
    n_fft: int = 512  # 32 ms analysis window
    hop_length: int = 320  # 20 ms between frames: prosody, not phonetic detail, carries emotion
    n_mels: int = 40  # mel bands
    n_mfcc: int = 40  # cepstral coefficients when kind == "mfcc"
    fmin: float = 50.0  # Hz, lowest mel band edge
    fmax: float = 8000.0  # Hz, highest mel band edge (Nyquist at 16 kHz)
    window_s: float = 3.0  # every TESS word (1.3-3.0 s after trimming) fits one window
    hop_s: float = 1.0  # step between windows when a long clip is cut into several
    # "band_mean": remove each band's mean over the clip, divide by the clip's overall std (keeps
    # how strongly each band moves, removes the speaker's fixed timbre); "utterance": per-band
    # mean and std; "none". band_mean scored higher speaker-independent (docs/model.md, "The TESS CNN").
    normalize: str = "band_mean"
    # "egemaps" only: the window's eGeMAPS descriptors every 10 ms too, beside its functionals (ser.models.svm.contours)
    contours: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ConfigError(f"FeatureConfig.kind must be one of {FEATURE_KINDS}, not {self.kind!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"FeatureConfig.normalize must be one of {NORMALIZATIONS}, not {self.normalize!r}")
        if self.contours and self.kind != "egemaps":
            raise ConfigError("FeatureConfig.contours are eGeMAPS descriptors: only the egemaps kind has them")

    @property
    def n_samples(self) -> int:
        return round(self.window_s * self.sample_rate)  # 48,000 samples by default

    @property
    def n_frames(self) -> int:
        if self.kind == "egemaps":
            return 1  # one vector of functionals per window
        return 1 + self.n_samples // self.hop_length  # 151 frames by default

    @property
    def contour_frames(self) -> int:
        """Descriptor frames a window holds (``contours``), else 0: 300 for 3 s."""
        return round(self.window_s * CONTOUR_RATE) if self.contours else 0

    @property
    def n_bins(self) -> int:
        return {"logmel": self.n_mels, "mfcc": self.n_mfcc, "egemaps": N_EGEMAPS + 1}[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "cnn"  # a name from ser.models.archs.ARCHITECTURES
    epochs: int = 30  # upper bound; early stopping may end sooner
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 8  # epochs without validation improvement before stopping
    val_fraction: float = 0.15  # share of the training clips held out for early stopping
    seed: int = 0  # one seed for splits, initialisation and augmentation
    augment: bool = True  # voice-changing augmentation (VTLP) for the architectures that use it
    mixup_alpha: float = 0.2  # Beta(a, a) mixing of clip pairs and their labels; 0 turns it off
    average_momentum: float = 0.99  # weights are scored and kept as this moving average; 0: raw weights

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, not {getattr(self, name)!r}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), not {self.val_fraction!r}")
        if self.learning_rate <= 0 or self.patience < 1:
            raise ConfigError(f"learning_rate must be > 0 and patience >= 1, not {self.learning_rate}, {self.patience}")
        if self.mixup_alpha < 0 or not 0 <= self.average_momentum < 1:
            raise ConfigError(
                f"mixup_alpha must be >= 0 and average_momentum in [0, 1), not {self.mixup_alpha}, "
                f"{self.average_momentum}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class EpochLog:
    epoch: int  # 1-based
    n_epochs: int  # the upper bound (early stopping may end sooner)
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    elapsed_s: float
    fold: str = ""  # the split being fitted, e.g. "speaker-independent: train OAF, test YAF"
    fold_index: int = 1  # 1-based, among n_folds fits of this run (each with its own epochs)
    n_folds: int = 1


EpochCallback = Callable[[EpochLog], None]


ProgressFn = Callable[[int, int], None]  # (done, total): clips whose features are ready


@dataclass(frozen=True)
class RunHooks:
    """How a caller observes and steers a long run (training, adaptation, evaluation): none of it
    changes the result, so none of it is recorded in a card."""

    cache_dir: Path | None = None  # feature cache; None: ser.features.windows.default_cache_dir()
    progress: ProgressFn | None = None  # called as each clip's features are ready
    on_epoch: EpochCallback | None = None  # called with each EpochLog
    on_fit: Callable[[str, int, int], None] | None = None  # as each fit of a run starts: (its split, index, n_fits)
    on_step: Callable[[int, int, float], None] | None = None  # batch-counted fits: (step, n_steps, loss)
    should_stop: Callable[[], bool] | None = None  # polled between batches; True ends the run
    strategy: str | None = None  # tf.distribute strategy name (ser.models.network.fit.make_strategy)

    def stopped(self) -> bool:
        return self.should_stop is not None and self.should_stop()
