"""The model bundle: the model file and ``card.json`` in one folder, loaded and saved whole.

A bundle carries everything needed to serve it (label order, feature and audio config, the
speaker normalisation and its fall-back), so prediction reads nothing from defaults. Bundles are
written to a temporary folder and renamed into place. Loading a speaker-normalised SVM needs no
TensorFlow: ``ser.model`` is imported only for a network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser.archs import get_architecture
from ser.config import FeatureConfig
from ser.errors import ModelError, SERError
from ser.profile import Normalisation, VoiceProfile
from ser.recovery import remove_stale_bundles, temp_bundle_prefix
from ser.registry import CARD_FILE, MODEL_FILE, ModelCard, fsync_path, new_bundle_path, read_card, write_card
from ser.svm import load_svm, save_svm, svm_proba

Model = Any  # a keras.Model (ser.model), or the speaker-normalised SVM (ser.svm): both are served here


def predict_proba(
    model: Any, X: np.ndarray, *, normalisation: Normalisation | None = None, profile: VoiceProfile | None = None,
    batch_size: int = 64,
) -> np.ndarray:  # fmt: skip
    """Class probabilities, the one way every caller runs a model (serving, evaluation, early
    stopping, adaptation). A speaker-normalised model's features are first put in the speaker's
    terms: by ``profile``, else by the normalisation's fall-back (zero-shot).
    X [shape=(n, n_bins, n_frames)] -> [shape=(n, n_classes)]"""
    if not hasattr(model, "predict_on_batch"):  # scikit-learn: one vector per window
        vectors = X.reshape(len(X), -1)
        if normalisation is not None:
            vectors = normalisation.apply(vectors, profile)
        return svm_proba(model, vectors)
    from ser.model import network_proba

    return network_proba(model, X, batch_size=batch_size)


@dataclass
class Bundle:
    path: Path
    model: Any  # a keras.Model (ser.model), or the speaker-normalised SVM (ser.svm)
    card: ModelCard

    @property
    def normalisation(self) -> Normalisation | None:
        """How features are put in the speaker's terms, for a speaker-normalised model; else None."""
        return None if self.card.normalisation is None else Normalisation.from_dict(self.card.normalisation)

    @property
    def labels(self) -> list[str]:
        return list(self.card.labels)

    @property
    def feature_config(self) -> FeatureConfig:
        return self.card.feature_config

    @property
    def name(self) -> str:
        return self.path.name


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder (safe mode: no arbitrary code from the file) and check it against its card."""
    path = Path(path)
    if path.is_file():  # --model DIR/model.keras: the bundle is the folder
        raise ModelError(f"{path} is a file, not a model bundle: give the folder with {MODEL_FILE} and {CARD_FILE}")
    if not path.is_dir():
        raise ModelError(f"model bundle not found: {path}")
    card = read_card(path)
    if get_architecture(card.architecture).family == "svm":
        return _svm_bundle(path, card)
    from ser.model import load_network  # TensorFlow: only for a network

    return Bundle(path, load_network(path, card.feature_config, len(card.labels)), card)


def _svm_bundle(path: Path, card: ModelCard) -> Bundle:
    model = load_svm(path)
    if card.normalisation is None:
        raise ModelError(f"the card of {path} lacks the normalisation its speaker-normalised model needs")
    try:
        bundle = Bundle(path, model, card)
        space = bundle.normalisation.space
    except (KeyError, TypeError, ValueError, SERError) as e:
        raise ModelError(f"the card of {path} has a damaged normalisation ({e})") from e
    n_labels = getattr(model, "n_labels_", None)
    if model.n_features_in_ != card.feature_config.n_bins or n_labels != len(card.labels):
        raise ModelError(
            f"the model in {path} takes {model.n_features_in_} features -> {n_labels} labels but its "
            f"card says {card.feature_config.n_bins} ({space}) -> {len(card.labels)}; the bundle is inconsistent"
        )
    return bundle


def save_bundle(model: Any, card: ModelCard, models_dir: Path, name: str) -> Path:
    """Write ``models_dir/name`` completely in a temporary folder, then rename it into place."""
    target = new_bundle_path(models_dir, name)
    models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_bundles(models_dir)  # what earlier runs that were killed while saving left
    tmp = Path(tempfile.mkdtemp(prefix=temp_bundle_prefix(name), suffix=".tmp", dir=models_dir))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
        if hasattr(model, "predict_on_batch"):
            from ser.model import save_network

            save_network(model, tmp)
        else:
            save_svm(model, tmp)
        write_card(card, tmp)
        for path in [*tmp.iterdir(), tmp]:
            fsync_path(path)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_path(models_dir)
    return target
