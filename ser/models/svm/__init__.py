"""The speaker-normalised eGeMAPS SVM as a kind of model, with its parts and its answer policy.

Its state is typed and each part is a file of the bundle: the pooled SVM (``model.skops``, fitted
by ``pooled``), the training voices' own classifiers (``voices.skops``, ``known_voices``), the
contour networks (``contours.npz``, ``contours``); the normalisation and the answer settings are in the
card. How it answers a clip's windows:

- with the speaker's voice profile: the windows normalised by it; when the profile is one of the
  training voices, mostly that voice's own classifier;
- without one: a recording with ``AnswerSettings.self_profile_s`` of speech or more is normalised by
  its own speech windows; a shorter one by the fall-back statistics (zero-shot), its answer averaged
  with the contour networks' (``AnswerSettings.fusion`` theirs);
- several clips of one speaker, each with the speaker's profile: each answer smoothed over the clips
  nearest it (``ser.voice.smoothing``), except for a training voice, which its own classifier answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.config import EpochLog, FeatureConfig, RunHooks, TrainConfig
from ser.errors import ModelError, SERError
from ser.models.base import Answer, Model
from ser.models.svm.contours import FUSION, ContourNets, fuse
from ser.models.svm.known_voices import KnownVoices, from_file, from_legacy, stripped, to_file
from ser.models.svm.pooled import BALANCE, load_skops, save_skops, svm_proba
from ser.voice.profile import Normalisation, ProfileBuilder, VoiceProfile, feature_space

if TYPE_CHECKING:
    from ser.features.corpus import CorpusFeatures
    from ser.store.card import ModelCard

MODEL_FILE = "model.skops"  # the pooled SVM
VOICES_FILE = "voices.skops"  # the training voices' classifiers
CONTOURS_FILE = "contours.npz"  # the contour networks' arrays
ZERO_SHOT = "zero-shot (no voice profile)"


@dataclass(frozen=True)
class AnswerSettings:
    """The settings of the answer policy that are not the normalisation's (the card's ``settings``)."""

    fusion: float = FUSION  # the contour networks' share of a zero-shot answer; the SVM's is the rest
    self_profile_s: float = 20.0  # seconds of speech after which a recording is normalised by its own windows

    def __post_init__(self) -> None:
        if not (0.0 <= self.fusion <= 1.0 and self.self_profile_s > 0):
            raise ModelError(f"answer settings out of range: {self}")

    @classmethod
    def from_card(cls, card: ModelCard) -> AnswerSettings:
        """The card's settings; a card of schema 2 or earlier has none, and its bundles were all served
        with the values above."""
        data = card.settings or {}
        try:
            return cls(float(data.get("fusion", FUSION)), float(data.get("self_profile_s", 20.0)))
        except (TypeError, ValueError) as e:
            raise ModelError(f"the card's answer settings are damaged ({e})") from e


class SVMModel(Model):
    """The pooled SVM on speaker-normalised eGeMAPS functionals, with its known voices and contour networks."""

    takes_profiles = True
    early_stopped = False
    balance = BALANCE

    def __init__(
        self, pooled: Any, normalisation: Normalisation, labels: Sequence[str], feature_config: FeatureConfig, *,
        voices: KnownVoices | None = None, nets: ContourNets | None = None, settings: AnswerSettings = AnswerSettings(),
    ) -> None:  # fmt: skip
        self.pooled = pooled  # sklearn CalibratedClassifierCV over an RBF SVC
        self.normalisation = normalisation
        self.labels = tuple(labels)
        self.feature_config = feature_config
        self.voices = voices if normalisation.voices is not None else None
        self.nets = nets
        self.settings = settings

    def with_normalisation(self, normalisation: Normalisation) -> SVMModel:
        """This model under other normalisation settings (its smoothing or known voices changed, say)."""
        return SVMModel(self.pooled, normalisation, self.labels, self.feature_config, voices=self.voices,
                        nets=self.nets, settings=self.settings)  # fmt: skip

    # --- fit, save, load ----------------------------------------------------------------------------

    @classmethod
    def fit(
        cls, train: CorpusFeatures, val: CorpusFeatures, labels: Sequence[str], feature_config: FeatureConfig,
        config: TrainConfig, *, hooks: RunHooks = RunHooks(),
    ) -> tuple[SVMModel, list[EpochLog]]:  # fmt: skip
        """The SVM on ``train``'s windows, with their copies at the other training speeds when the
        features were prepared with them; and, with the windows' contours, the contour networks.
        Not early-stopped: ``val`` is not read (the caller lets its clips train too)."""
        from ser.models.svm.pooled import balance_weights, fit_svm

        rows = train.rows
        clips = [train.clips[i] for i in train.clip_of[rows]]
        speakers, corpora = [c.speaker_id for c in clips], [c.corpus for c in clips]
        space = feature_space(feature_config.kind, feature_config.n_bins, feature_config.window_s)
        heard = train.X[rows].reshape(len(rows), train.X.shape[1], -1).astype(np.float32)  # every speed of each
        centre = heard.shape[1] // 2
        copies = [heard[:, k] for k in range(heard.shape[1]) if k != centre]
        neutral = list(labels).index("neutral") if "neutral" in labels else None
        pooled, normalisation, voices = fit_svm(heard[:, centre], train.y_rows, speakers, corpora, space=space,
                                                seed=config.seed, copies=copies, neutral=neutral)  # fmt: skip
        nets = None
        if train.contours is not None:
            from ser.models.svm.contours import fit_contour_nets

            balance = balance_weights(corpora, speakers, train.y_rows)
            nets = fit_contour_nets(train.contours[rows], train.y_rows, speakers, balance, n_labels=len(labels),
                                    seed=config.seed, should_stop=hooks.should_stop, on_step=hooks.on_step)  # fmt: skip
        return cls(pooled, normalisation, labels, feature_config, voices=voices, nets=nets), []

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        save_skops(self.pooled, folder / MODEL_FILE)
        if self.voices is not None:
            contents = to_file(self.voices, self.pooled)
            with stripped(self.voices):
                save_skops(contents, folder / VOICES_FILE)
        if self.nets is not None:
            np.savez_compressed(folder / CONTOURS_FILE, **self.nets.to_arrays())

    @classmethod
    def load(cls, folder: Path, card: ModelCard) -> SVMModel:
        folder = Path(folder)
        normalisation = _normalisation(folder, card)
        pooled = load_skops(folder / MODEL_FILE)
        from sklearn.calibration import CalibratedClassifierCV

        if not isinstance(pooled, CalibratedClassifierCV):
            raise ModelError(f"{folder / MODEL_FILE} holds a {type(pooled).__name__}, not the SVM its card names")
        # A bundle of card schema 2 or earlier kept its voices and networks as attributes of the SVM.
        voices, nets = from_legacy(pooled), _legacy_nets(pooled)
        if (folder / VOICES_FILE).is_file():
            voices = from_file(load_skops(folder / VOICES_FILE), pooled)
        if (folder / CONTOURS_FILE).is_file():
            nets = _load_nets(folder / CONTOURS_FILE)
        with contextlib.suppress(AttributeError):  # the older format's label count: the card's labels say it
            del pooled.n_labels_
        n_labels = int(max(pooled.classes_) + 1) if len(pooled.classes_) else 0
        if pooled.n_features_in_ != card.feature_config.n_bins or n_labels > len(card.labels):
            raise ModelError(
                f"the model in {folder} takes {pooled.n_features_in_} features -> {n_labels} labels but its card "
                f"says {card.feature_config.n_bins} ({normalisation.space}) -> {len(card.labels)}; the bundle is "
                "inconsistent"
            )
        settings = AnswerSettings.from_card(card)
        return cls(pooled, normalisation, card.labels, card.feature_config, voices=voices, nets=nets, settings=settings)

    def card_fields(self) -> dict[str, Any]:
        return {"normalisation": self.normalisation.to_dict(), "settings": dataclasses.asdict(self.settings)}

    # --- the answer policy --------------------------------------------------------------------------

    def answer(
        self, features: np.ndarray, *, contours: np.ndarray | None = None, profile: VoiceProfile | None = None
    ) -> Answer:
        vectors = self.normalisation.apply(features.reshape(len(features), -1), profile)
        probs = svm_proba(self.pooled, vectors, len(self.labels))
        voice = self.known_voice(profile)
        if voice is not None:
            probs = self.voices.answer(voice, probs, vectors, self.normalisation.voices)
        elif profile is None and self.nets is not None and contours is not None:
            probs = fuse(probs, self.nets.proba(contours), self.settings.fusion)
        return Answer(probs, vectors, self.voices.names[voice] if voice is not None else "")

    def known_voice(self, profile: VoiceProfile | None) -> int | None:
        """The index of the training voice ``profile`` is taken for (``ser.models.svm.known_voices``), or None."""
        if self.voices is None:
            return None
        return self.voices.match(profile, self.normalisation.voices)

    def clip_profile(
        self, features: np.ndarray, speech: np.ndarray, speech_s: float, profile: VoiceProfile | None
    ) -> tuple[VoiceProfile | None, str]:
        if profile is not None:
            return profile, f"voice profile ({profile.source or 'given'}, {profile.speech_s:.0f} s of speech)"
        if speech_s < self.settings.self_profile_s:
            return None, ZERO_SHOT
        own = self.profile_builder("the recording's own speech")
        own.add(features[speech].reshape(int(np.sum(speech)), -1), speech_s=speech_s)
        return own.profile(), f"normalised by its own {speech_s:.0f} s of speech"

    @property
    def profile_space(self) -> str:
        return self.normalisation.space

    def profile_builder(self, source: str = "") -> ProfileBuilder:
        n_dims = self.feature_config.n_bins * self.feature_config.n_frames
        return ProfileBuilder(self.profile_space, n_dims, source=source)

    @property
    def smooths(self) -> bool:
        return self.normalisation.smoothing is not None

    def smooth(self, probs: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        if self.normalisation.smoothing is None:
            return probs
        return self.normalisation.smoothing.apply(probs, vectors)

    @property
    def zero_shot_how(self) -> str:
        """What a zero-shot answer is made of, in words (evaluation's reports)."""
        how = "zero-shot: each clip alone, normalised by the model's fall-back statistics"
        how += (
            f" (a clip with {self.settings.self_profile_s:.0f} s of speech or more by its own, as predict answers it)"
        )
        if self.nets is not None:
            share = self.settings.fusion
            mix = "half and half" if share == 0.5 else f"{1 - share:.0%} / {share:.0%}"
            how += f"; the SVM's answer averaged {mix} with its contour networks'"
        return how


def _normalisation(folder: Path, card: ModelCard) -> Normalisation:
    if card.normalisation is None:
        raise ModelError(f"the card of {folder} lacks the normalisation its speaker-normalised model needs")
    try:
        return Normalisation.from_dict(card.normalisation)
    except (KeyError, TypeError, ValueError, SERError) as e:
        raise ModelError(f"the card of {folder} has a damaged normalisation ({e})") from e


def _load_nets(path: Path) -> ContourNets:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return ContourNets.from_arrays({name: arrays[name] for name in arrays.files})
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"the contour networks in {path.parent} cannot be loaded ({e})") from e


def _legacy_nets(pooled: Any) -> ContourNets | None:
    arrays = getattr(pooled, "contour_nets_", None)
    if arrays is None:
        return None
    del pooled.contour_nets_
    try:
        return ContourNets.from_arrays(arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"the model's contour networks are damaged ({e})") from e


KIND = SVMModel
