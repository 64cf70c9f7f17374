"""The networks (Keras): architectures by name, built, run, saved and loaded.

Only what builds or runs a network imports this module (it loads TensorFlow); a bundle of
another kind, and everything that only reads cards, never does (``ser.models.bundle``, ``ser.store.registry``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ser.config import FeatureConfig
from ser.errors import ModelError
from ser.models.archs import ARCHITECTURES, get_architecture
from ser.process import native_stderr_silenced, serialise_ast_parse
from ser.store.registry import MODEL_FILE

serialise_ast_parse()
with native_stderr_silenced():
    import keras
    import tensorflow  # noqa: F401  (loaded here so its native logs are silenced too)
from keras import layers  # noqa: E402


class StepReport(keras.callbacks.Callback):
    """Counts the batches of one or more ``fit`` calls (the same instance serves each), reports each to
    ``on_step`` as (step, n_steps, loss), and ends a fit when ``should_stop`` says so."""

    def __init__(
        self, on_step: Callable[[int, int, float], None] | None, n_steps: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.on_step, self.n_steps, self.should_stop, self.step = on_step, n_steps, should_stop, 0

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        self.step += 1
        if self.on_step is not None:
            self.on_step(self.step, self.n_steps, float((logs or {}).get("loss", math.nan)))
        if self.should_stop is not None and self.should_stop():
            self.model.stop_training = True


# --- architectures ------------------------------------------------------------------------------


def _normalizer(features: np.ndarray | None, axis: int | None) -> layers.Layer:
    """A Normalization layer holding the training features' statistics, so the saved model
    z-scores its own input."""
    norm = layers.Normalization(axis=axis)
    if features is not None:
        norm.adapt(features.astype(np.float32))
    return norm


def build_cnn(n_bins: int, n_frames: int, n_classes: int, features: np.ndarray | None) -> keras.Model:
    """The default model: a BatchNorm CNN on per-utterance-normalised log-mel, pooled globally so
    it looks at how the bands move rather than where one speaker's energy sits."""
    inputs = keras.Input((n_bins, n_frames), name="features")
    x = layers.Reshape((n_bins, n_frames, 1))(inputs)
    for width in (16, 32, 64, 64):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        # A short memory for the batch statistics: with ~60 steps an epoch the default 0.99
        # leaves inference statistics far from the training ones for the first ten epochs.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_seed_mfcc_cnn2d(n_bins: int, n_frames: int, n_classes: int, features: np.ndarray | None) -> keras.Model:
    """Seed project: two Conv2D+MaxPool blocks, Flatten, Dense 128, Dense 64, on MFCC frames."""
    inputs = keras.Input((n_bins, n_frames), name="features")
    x = _normalizer(features, axis=None)(inputs)
    x = layers.Reshape((n_bins, n_frames, 1))(x)
    for width in (32, 64):
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_mfcc_cnn2d")


def build_seed_mel_conv1d(n_bins: int, n_frames: int, n_classes: int, features: np.ndarray | None) -> keras.Model:
    """Seed project: four Conv1D+MaxPool+Dropout blocks over time on z-scored mel bands,
    Flatten, two Dense+Dropout."""
    inputs = keras.Input((n_bins, n_frames), name="features")
    x = _normalizer(features, axis=1)(inputs)
    x = layers.Permute((2, 1))(x)  # (time, mel bands): bands are the channels
    for width in (64, 128, 128, 256):
        x = layers.Conv1D(width, 5, padding="same", activation="relu")(x)
        x = layers.MaxPooling1D(2)(x)
        x = layers.Dropout(0.2)(x)
    x = layers.Flatten()(x)
    for width in (128, 64):
        x = layers.Dense(width, activation="relu")(x)
        x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_mel_conv1d")


def build_seed_lstm(n_bins: int, n_frames: int, n_classes: int, features: np.ndarray | None) -> keras.Model:
    """Seed project: LSTM 256 over the 40 time-averaged MFCCs read as a sequence, Dense 128, Dense 64."""
    inputs = keras.Input((n_bins, n_frames), name="features")
    x = layers.GlobalAveragePooling1D(data_format="channels_first")(inputs)  # mean over time: (n_bins,)
    x = _normalizer(None if features is None else features.mean(axis=2), axis=None)(x)
    x = layers.Reshape((n_bins, 1))(x)
    x = layers.LSTM(256)(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_lstm")


BUILDERS: dict[str, Callable[[int, int, int, np.ndarray | None], keras.Model]] = {
    "cnn": build_cnn,
    "seed-mfcc-cnn2d": build_seed_mfcc_cnn2d,
    "seed-mel-conv1d": build_seed_mel_conv1d,
    "seed-lstm": build_seed_lstm,
}
assert set(BUILDERS) == {n for n, a in ARCHITECTURES.items() if a.kind == "network"}, "a builder per network"


def build_model(
    name: str, feature_config: FeatureConfig, n_classes: int, features: np.ndarray | None = None
) -> keras.Model:
    """Build architecture ``name`` for inputs [shape=(n_bins, n_frames)]; ``features`` [shape=(n, n_bins,
    n_frames)] are the training features that in-model normalisation layers adapt to."""
    get_architecture(name)  # an unknown name: ConfigError naming the known ones
    return BUILDERS[name](feature_config.n_bins, feature_config.n_frames, n_classes, features)


def network_proba(model: keras.Model, X: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """A network's class probabilities. ``predict_on_batch`` runs a compiled graph: about 1.5 ms for
    one window against 10 ms for an eager call on 2 cores. X [shape=(n, n_bins, n_frames)] -> [shape=(n, n_classes)]"""
    if len(X) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    X = X.astype(np.float32, copy=False)
    return np.concatenate([_batch_proba(model, X[i : i + batch_size]) for i in range(0, len(X), batch_size)])


def _batch_proba(model: keras.Model, X: np.ndarray) -> np.ndarray:
    probs = np.asarray(model.predict_on_batch(X))
    if len(probs) != len(X):  # a model built under a mirrored strategy answers once per replica
        probs = np.asarray(model(X, training=False))
    return probs


def load_network(path: Path, config: FeatureConfig, n_labels: int) -> keras.Model:
    """The network of a bundle folder (safe mode: no code from the file), checked against its card."""
    try:
        model = keras.saving.load_model(path / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a damaged or foreign file
        raise ModelError(f"the model in {path} cannot be loaded ({type(e).__name__}: {e})") from e
    expected = (None, config.n_bins, config.n_frames)
    if tuple(model.input_shape) != expected or model.output_shape[-1] != n_labels:
        raise ModelError(
            f"the model in {path} takes {model.input_shape} -> {model.output_shape} but its card says "
            f"{expected} -> {n_labels} labels; the bundle is inconsistent"
        )
    return model


def save_network(model: keras.Model, folder: Path) -> None:
    model.save(Path(folder) / MODEL_FILE)
