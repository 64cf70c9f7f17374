"""The plain reference: one RBF support-vector machine on the eGeMAPS functionals of a whole clip.

The figure every default must beat, built by the field's usual recipe and nothing more: the clip's
eGeMAPS v02 functionals (its speech, one window of up to 30 s), scikit-learn's ``StandardScaler``
fitted on the training vectors, and ``SVC(C=1, gamma="scale", class_weight="balanced")`` with
Platt-scaled probabilities. Two classifiers, one for each road: zero-shot, on the vectors as they
are; per speaker, on each speaker's vectors z-normalised by that speaker's own mean and spread (a
voice profile, unshrunk). No sample weights, speed copies, smoothing, fusion or known voices.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.config import EpochLog, FeatureConfig, RunHooks, TrainConfig
from ser.errors import ModelError
from ser.models.base import Answer, Model
from ser.voice.profile import ProfileBuilder, VoiceProfile, feature_space

if TYPE_CHECKING:
    from ser.features.corpus import CorpusFeatures
    from ser.store.card import ModelCard

MODEL_FILE = "model.skops"  # both roads' scalers and classifiers
ZERO_SHOT = "zero-shot (no voice profile)"
C = 1.0
NO_CAP = np.inf  # the speaker's z-scores are not capped


class PlainModel(Model):
    """Two scaler + SVC pairs: for clips of an unknown speaker, and for clips in their speaker's terms."""

    takes_profiles = True
    early_stopped = False
    balance = "classes balanced by the SVM's class weights; every clip one vector"

    def __init__(self, roads: dict[str, list[Any]], labels: Sequence[str], feature_config: FeatureConfig) -> None:
        self.roads = roads  # "zero_shot" and "per_speaker": [StandardScaler, SVC] each
        self.labels = tuple(labels)
        self.feature_config = feature_config

    @classmethod
    def fit(
        cls, train: CorpusFeatures, val: CorpusFeatures, labels: Sequence[str], feature_config: FeatureConfig,
        config: TrainConfig, *, hooks: RunHooks = RunHooks(),
    ) -> tuple[PlainModel, list[EpochLog]]:  # fmt: skip
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        rows = train.rows
        vectors = train.centre[rows].reshape(len(rows), -1).astype(np.float64)
        y, speakers = train.y_rows, np.array([train.clips[i].speaker_id for i in train.clip_of[rows]])
        if len(np.unique(y)) < 2:
            raise ModelError("the plain reference needs at least two emotions in its training data")
        model = cls({}, labels, feature_config)
        normalised = np.empty_like(vectors)
        for speaker in np.unique(speakers):
            mine = speakers == speaker
            builder = model.profile_builder(f"training speaker {speaker}")
            builder.add(vectors[mine], speech_s=float(mine.sum()))
            normalised[mine] = builder.profile().normalise(vectors[mine], NO_CAP)
        for road, X in (("zero_shot", vectors), ("per_speaker", normalised)):
            scaler = StandardScaler().fit(X)
            svc = SVC(C=C, gamma="scale", class_weight="balanced", random_state=config.seed)
            # Probabilities by Platt scaling on cross-validated folds; the final SVM is fitted on everything.
            fewest = int(np.bincount(y)[np.unique(y)].min())
            if fewest < 2:
                raise ModelError("the plain reference needs at least 2 training clips of every emotion; add clips")
            calibrated = CalibratedClassifierCV(svc, cv=min(3, fewest), ensemble=False)
            model.roads[road] = [scaler, calibrated.fit(scaler.transform(X), y)]
        return model, []

    def save(self, folder: Path) -> None:
        from ser.models.svm.pooled import save_skops

        save_skops(self.roads, Path(folder) / MODEL_FILE)

    @classmethod
    def load(cls, folder: Path, card: ModelCard) -> PlainModel:
        from ser.models.svm.pooled import load_skops

        roads = load_skops(Path(folder) / MODEL_FILE)
        if not isinstance(roads, dict) or set(roads) != {"zero_shot", "per_speaker"}:
            raise ModelError(f"{Path(folder) / MODEL_FILE} is not a plain reference's pair of classifiers")
        for scaler, svc in roads.values():
            if scaler.n_features_in_ != card.feature_config.n_bins or max(svc.classes_) >= len(card.labels):
                raise ModelError(f"the model in {folder} does not fit its card's features and labels")
        return cls(roads, card.labels, card.feature_config)

    def answer(
        self, features: np.ndarray, *, contours: np.ndarray | None = None, profile: VoiceProfile | None = None
    ) -> Answer:
        vectors = features.reshape(len(features), -1).astype(np.float64)
        if profile is not None:
            if profile.space != self.profile_space:
                raise ModelError(f"the voice profile is of feature space {profile.space!r}, not {self.profile_space!r}")
            vectors = profile.normalise(vectors, NO_CAP)
        scaler, svc = self.roads["per_speaker" if profile is not None else "zero_shot"]
        scaled = scaler.transform(vectors).astype(np.float32)
        probs = np.zeros((len(vectors), len(self.labels)), dtype=np.float32)
        if len(vectors):
            probs[:, svc.classes_] = svc.predict_proba(scaled)
        return Answer(probs, scaled)

    def clip_profile(
        self, features: np.ndarray, speech: np.ndarray, speech_s: float, profile: VoiceProfile | None
    ) -> tuple[VoiceProfile | None, str]:
        if profile is None:
            return None, ZERO_SHOT
        return profile, f"voice profile ({profile.source or 'given'}, {profile.speech_s:.0f} s of speech)"

    @property
    def profile_space(self) -> str:
        config = self.feature_config
        return feature_space(config.kind, config.n_bins, config.window_s)

    def profile_builder(self, source: str = "") -> ProfileBuilder:
        return ProfileBuilder(self.profile_space, self.feature_config.n_bins, source=source)

    @property
    def zero_shot_how(self) -> str:
        return "zero-shot: each clip alone, its functionals as they are"


KIND = PlainModel
