"""The interface every kind of model implements, and the answer it gives for a clip's windows.

A kind is fitted on a fold's features, saved to and loaded from a bundle folder, and answers the
windows of a clip: the probabilities of each window, given the speaker's voice profile or none,
and how it read them. Serving (``ser.serving``), scoring (``ser.training.evaluation``) and the live
stream all ask the kind through this interface, so what a card scores is what a user is answered.
A kind that takes voice profiles also decides when a recording is normalised by its own speech
(``clip_profile``) and how the answers to several clips of one speaker lean on each other
(``smooth``). Every setting that changes an answer is written to the card (``card_fields``) and
read back by ``load``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ser.config import EpochLog, FeatureConfig, RunHooks, TrainConfig
from ser.errors import ModelError
from ser.voice.profile import ProfileBuilder, VoiceProfile

if TYPE_CHECKING:
    from ser.features.corpus import CorpusFeatures
    from ser.store.card import ModelCard

StepCallback = Callable[[int, int, float], None]  # (step, n_steps, loss)
SELF_NORMALISED = "each window normalised by itself"


@dataclass(frozen=True)
class Answer:
    """A kind's answer to windows of one speaker (or of no known speaker)."""

    probs: np.ndarray  # [shape=(n_windows, n_labels)], float32, in the card's label order
    # [shape=(n_windows, n_dims)]: the windows as the classifier read them (a kind that takes voice
    # profiles; what smoothing compares clips by), else None
    vectors: np.ndarray | None = None
    known_voice: str = ""  # the training voice the profile was taken for, else ""


class Model(ABC):
    """A trained model of one kind, with everything it needs to answer (its card's settings)."""

    takes_profiles: ClassVar[bool] = False  # normalises a speaker's features by their voice profile
    # fitted epoch by epoch and early-stopped on a validation part; False: fitted in one go, so the
    # validation clips train it too
    early_stopped: ClassVar[bool] = True
    adaptable: ClassVar[bool] = False  # ``adapt`` fine-tunes it to one speaker's labelled clips
    # how training weighs its windows, in words, for the card
    balance: ClassVar[str] = "none (every clip counts once)"

    labels: tuple[str, ...]
    feature_config: FeatureConfig

    @classmethod
    @abstractmethod
    def fit(
        cls, train: CorpusFeatures, val: CorpusFeatures, labels: Sequence[str], feature_config: FeatureConfig,
        config: TrainConfig, *, hooks: RunHooks = RunHooks(),
    ) -> tuple[Model, list[EpochLog]]:  # fmt: skip
        """A model fitted on ``train`` (validated on ``val`` when ``early_stopped``), and its epochs."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the model's files into ``folder`` (its card is written beside them by ``ser.models.bundle``)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, card: ModelCard) -> Model:
        """The model of a bundle folder, with the settings of its ``card``. Raises ModelError."""

    @abstractmethod
    def answer(
        self, features: np.ndarray, *, contours: np.ndarray | None = None, profile: VoiceProfile | None = None
    ) -> Answer:
        """The answer to windows of one speaker: features [shape=(n, n_bins, n_frames)], their
        eGeMAPS contours [shape=(n, n_frames, N_CONTOUR)] where the config has them, and the
        speaker's ``profile`` (None: nothing is known of the speaker, zero-shot)."""

    def card_fields(self) -> dict[str, Any]:
        """The card fields this model's answers depend on (``ser.store.card.ModelCard``)."""
        return {}

    # --- voice profiles: a kind that takes them overrides these -----------------------------------

    @property
    def profile_space(self) -> str:
        """The feature space of the voice profiles this model reads."""
        raise ModelError("this model normalises each clip by itself and takes no voice profile")

    def profile_builder(self, source: str = "") -> ProfileBuilder:
        """An empty voice profile of this model's feature space."""
        raise ModelError("this model normalises each clip by itself and takes no voice profile")

    def clip_profile(
        self, features: np.ndarray, speech: np.ndarray, speech_s: float, profile: VoiceProfile | None
    ) -> tuple[VoiceProfile | None, str]:
        """The profile a clip's windows are answered with, and how, in words: the speaker's ``profile``
        when given, else whatever the kind makes of the clip itself. ``features`` [shape=(n, n_bins,
        n_frames)], ``speech`` [shape=(n,)] bool, ``speech_s``: seconds of speech they cover."""
        return None, SELF_NORMALISED

    @property
    def zero_shot_how(self) -> str:
        """What the answer to a clip without a voice profile is made of, in words (evaluation's reports)."""
        return "zero-shot: each clip alone"

    @property
    def smooths(self) -> bool:
        """Whether ``smooth`` changes the answers to several clips of one speaker."""
        return False

    def smooth(self, probs: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """One speaker's clip probabilities [shape=(n, n_labels)], each leaning on the clips that read
        most like it (``vectors`` [shape=(n, n_dims)]: each clip's mean ``Answer.vectors``)."""
        return probs

    # --- adaptation: a kind that fine-tunes overrides this ----------------------------------------

    def adapt(
        self, labelled: CorpusFeatures, config: Any, *, unlabelled: np.ndarray | None = None,
        on_step: StepCallback | None = None,
    ) -> tuple[Model, dict[str, Any]]:  # fmt: skip
        """A copy of this model adapted to one speaker's ``labelled`` clips (``ser.training.adapt``), and what
        was done, for the card; this model is not changed."""
        raise ModelError(
            "this model is not adapted by fine-tuning: it takes the speaker's voice profile instead "
            "(predict --same-speaker or --profile, evaluate --per-speaker, or 'one speaker' on the Classify page)"
        )
