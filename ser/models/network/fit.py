"""Fit: one model on a fold's training windows, early-stopped on its validation windows.

The training windows come in ``AugmentedBatches`` (a random voice warp per window each epoch,
and mixup); ``AveragedEarlyStopping`` scores an average of the weights on the validation part
each epoch and keeps the best. Each epoch's scores go to ``RunHooks.on_epoch`` as an
``EpochLog``, and the run may be spread over devices by a ``tf.distribute`` strategy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ser.config import STRATEGIES, EpochCallback, EpochLog, FeatureConfig, RunHooks, TrainConfig
from ser.errors import ConfigError, TrainingError
from ser.features.corpus import CorpusFeatures
from ser.models.archs import get_architecture
from ser.models.network.layers import build_model, network_proba


class AugmentedBatches(keras.utils.PyDataset):
    """Batches of training windows that draw a random frequency warp per window each epoch
    (VTLP), plus mixup. X [shape=(n, n_warps, n_bins, n_frames)], y [shape=(n,)]"""

    def __init__(self, X: np.ndarray, y: np.ndarray, n_classes: int, config: TrainConfig, *, augment: bool) -> None:
        super().__init__()
        self.X, self.y, self.n_classes, self.batch_size = X, y, n_classes, config.batch_size
        self.augment = augment and X.shape[1] > 1
        self.mixup_alpha = config.mixup_alpha if augment else 0.0
        self.rng = np.random.default_rng(config.seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def on_epoch_end(self) -> None:
        n, n_warps = self.X.shape[:2]
        self.order = self.rng.permutation(n)
        self.warp = self.rng.integers(0, n_warps, n) if self.augment else np.full(n, n_warps // 2)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        X = self.X[rows, self.warp[rows]].astype(np.float32)
        Y = np.eye(self.n_classes, dtype=np.float32)[self.y[rows]]
        if self.mixup_alpha > 0:
            # Mixup: blends of two clips with blended labels, so no single voice's detail is memorised.
            lam = self.rng.beta(self.mixup_alpha, self.mixup_alpha, len(rows)).astype(np.float32)
            partner = self.rng.permutation(len(rows))
            X = lam[:, None, None] * X + (1 - lam[:, None, None]) * X[partner]
            Y = lam[:, None] * Y + (1 - lam[:, None]) * Y[partner]
        return X, Y


class AveragedEarlyStopping(keras.callbacks.Callback):
    """Early stopping on the validation loss of an exponential moving average of the weights.

    The average is steadier across speakers than any one epoch's weights; each epoch it is
    scored on the validation features, and the best-scoring average is restored at the end.
    With ``momentum`` 0 this is plain early stopping with the best epoch's weights restored.
    """

    def __init__(self, X_val: np.ndarray, y_val: np.ndarray, *, momentum: float, patience: int) -> None:
        super().__init__()
        self.X_val, self.y_val, self.momentum, self.patience = X_val, y_val, momentum, patience

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.average = [w.copy() for w in self.model.get_weights()]
        self.n_updates = 0
        self.best_loss, self.best_epoch, self.best_weights = math.inf, 0, self.average

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        if self.momentum > 0:
            self.n_updates += 1
            # Warm-up as in tf.train.ExponentialMovingAverage: early steps weigh more, so the
            # average does not drag the random initial weights along on a small corpus.
            m = min(self.momentum, (1 + self.n_updates) / (10 + self.n_updates))
            self.average = [m * a + (1 - m) * w for a, w in zip(self.average, self.model.get_weights(), strict=True)]

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        current = self.model.get_weights()
        scored = self.average if self.momentum > 0 else current
        self.model.set_weights(scored)
        probs = network_proba(self.model, self.X_val)
        self.model.set_weights(current)
        picked = probs[np.arange(len(self.y_val)), self.y_val]
        loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
        if logs is not None:
            logs.update(val_loss=loss, val_accuracy=float(np.mean(probs.argmax(axis=1) == self.y_val)))
        if loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_weights = loss, epoch, [w.copy() for w in scored]
        elif epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        self.model.set_weights(self.best_weights)


class _Report(keras.callbacks.Callback):
    """Each epoch's scores to ``on_epoch``; ``should_stop`` polled after every batch, so Stop ends
    a run within a batch rather than after one more epoch."""

    def __init__(self, on_epoch: EpochCallback | None, should_stop: Callable[[], bool] | None, n_epochs: int):
        super().__init__()
        self.on_epoch, self.should_stop, self.n_epochs = on_epoch, should_stop, n_epochs
        self.history: list[EpochLog] = []
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        if self.should_stop is not None and self.should_stop():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        values = [float(logs.get(k, math.nan)) for k in ("loss", "accuracy", "val_loss", "val_accuracy")]
        entry = EpochLog(epoch + 1, self.n_epochs, *values, time.perf_counter() - self.start)
        self.history.append(entry)
        if self.on_epoch is not None:
            self.on_epoch(entry)


def make_strategy(name: str | None):
    """``None``/"default": one device; "mirrored": all local GPUs (or logical CPUs);
    "multi-worker": the cluster described by the TF_CONFIG environment variable."""
    if name in (None, "", "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError("the multi-worker strategy needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown distribution strategy {name!r}; use one of {', '.join(STRATEGIES)}")


def fit(
    train_data: CorpusFeatures, val_data: CorpusFeatures, labels: Sequence[str], feature_config: FeatureConfig,
    config: TrainConfig, *, hooks: RunHooks = RunHooks(),
) -> tuple[keras.Model, list[EpochLog]]:  # fmt: skip
    """Fit one model on the training windows, early-stopped on the validation windows; the best
    epoch's (averaged) weights are kept."""
    if len(train_data.y) == 0 or len(val_data.y) == 0:
        raise TrainingError("nothing to train on: the training or validation part is empty")
    keras.utils.set_random_seed(config.seed)
    augment = config.augment and get_architecture(config.arch).augment
    rows = train_data.rows
    with make_strategy(hooks.strategy).scope():
        model = build_model(config.arch, feature_config, len(labels), train_data.centre[rows])
        model.compile(keras.optimizers.Adam(config.learning_rate), "categorical_crossentropy", metrics=["accuracy"])
    report = _Report(hooks.on_epoch, hooks.should_stop, config.epochs)
    val_rows = val_data.rows
    stopper = AveragedEarlyStopping(
        val_data.centre[val_rows], val_data.y_rows, momentum=config.average_momentum, patience=config.patience
    )
    model.fit(
        AugmentedBatches(train_data.X[rows], train_data.y_rows, len(labels), config, augment=augment),
        epochs=config.epochs,
        callbacks=[stopper, report],  # the stopper first: it adds the validation scores to the logs
        verbose=0,
    )
    return model, report.history
