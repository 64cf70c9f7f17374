"""Adapting a network to one speaker: AdaBN, then a short fine-tune on k labelled clips per emotion.

``adapt_model`` re-estimates every BatchNorm layer's statistics on the speaker's clips (AdaBN: the
speaker's voice, not the training speakers', sets each channel's mean and scale) and fine-tunes every
layer but the BatchNorms on the labelled clips with a small learning rate for a fixed number of
steps, with the training-time voice warps (VTLP). There is no validation set at k clips per emotion,
so nothing is early-stopped or tuned on the speaker's data. The whole run (choosing the clips,
scoring before and after, the card) is ``ser.training.adapt``'s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import layers

from ser.config import TrainConfig
from ser.errors import ConfigError, TrainingError
from ser.models.network.fit import AugmentedBatches
from ser.models.network.layers import StepReport

if TYPE_CHECKING:
    from ser.features.corpus import CorpusFeatures

ADABN_BATCH = 128  # clips per forward pass while BatchNorm statistics are gathered
TRAINABLE = ("head", "last", "all")  # see AdaptConfig.trainable

StepCallback = Callable[[int, int, float], None]  # (step, n_steps, loss)


@dataclass(frozen=True)
class AdaptConfig:
    shots: int = 5  # labelled clips per emotion; 0: AdaBN on unlabelled clips only
    adabn: bool = True  # re-estimate BatchNorm statistics on the speaker's clips first
    # Fine-tuned part: "head" (classifier), "last" (last conv block + head), "all" (every layer but the
    # BatchNorms). "all" scored highest on TESS at k = 1, 3 and 5, both directions; the head alone
    # barely moves from AdaBN's score (docs/model.md, "Adapting a network to one speaker").
    trainable: str = "all"
    n_steps: int = 40  # optimiser steps on the labelled clips (a fixed budget: there is no validation set)
    # Most clips per step: up to 64 (k = 9) every step sees every clip; more are split into equal
    # batches, since a small batch's noisy steps would count as much as the full ones (docs/model.md,
    # "Adapting a network to one speaker").
    batch_size: int = 64
    learning_rate: float = 3e-4  # Adam, small: a few clips must nudge the model, not retrain it
    augment: bool = True  # a random voice warp (VTLP) per clip and step, as in training
    mixup_alpha: float = 0.0  # Beta(a, a) mixing of clip pairs; 0 turns it off
    seed: int = 0  # picks the adaptation clips and drives the augmentation

    def __post_init__(self) -> None:
        if self.shots < 0:
            raise ConfigError(f"--shots must be 0 (no labels: AdaBN alone) or more, not {self.shots}")
        if self.trainable not in TRAINABLE:
            raise ConfigError(f"AdaptConfig.trainable must be one of {TRAINABLE}, not {self.trainable!r}")

    @property
    def method(self) -> str:
        """A short name, e.g. "AdaBN + fine-tune last block + head, 40 steps"."""
        parts = ["AdaBN"] if self.adabn else []
        if self.shots > 0 and self.n_steps > 0:
            part = {"head": "head", "last": "last block + head", "all": "all layers"}[self.trainable]
            parts.append(f"fine-tune {part}, {self.n_steps} steps")
        return " + ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def adapt_batchnorm(model: keras.Model, X: np.ndarray) -> int:
    """AdaBN: set each BatchNorm layer's moving mean and variance to the statistics of its input over
    ``X`` [shape=(n, n_bins, n_frames)], layer by layer (each sees the layers before it already
    adapted). Returns the number of BatchNorm layers (0 for an architecture without them)."""
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    for norm in norms:
        upto = keras.Model(model.input, norm.input)
        total = total_sq = 0.0
        n = 0
        for i in range(0, len(X), ADABN_BATCH):
            h = np.asarray(upto(X[i : i + ADABN_BATCH], training=False), dtype=np.float64)
            axes = tuple(a for a in range(h.ndim) if a != norm.axis % h.ndim)  # all but the channels
            total = total + h.sum(axis=axes)
            total_sq = total_sq + (h**2).sum(axis=axes)
            n += h.size // h.shape[norm.axis]
        mean = total / n
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(np.maximum(total_sq / n - mean**2, 0.0).astype(np.float32))
    return len(norms)


def _set_trainable(model: keras.Model, part: str) -> None:
    """Freeze all but ``part``; BatchNorm layers stay frozen (inference mode: a handful of clips
    would make noisy batch statistics) and keep the AdaBN estimates."""
    convs = [i for i, layer in enumerate(model.layers) if isinstance(layer, layers.Conv2D | layers.Conv1D)]
    dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, layers.Dense)]
    first = {"all": 0, "last": convs[-1] if convs else dense[-1], "head": dense[-1]}[part]
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= first and not isinstance(layer, layers.BatchNormalization)


def fine_tune(
    model: keras.Model, data: CorpusFeatures, config: AdaptConfig, *, on_step: StepCallback | None = None
) -> list[float]:
    """Fit the part ``config.trainable`` of ``model`` on ``data`` for ``config.n_steps`` steps.
    Returns the training loss of each pass over the clips."""
    n_classes, rows = model.output_shape[-1], data.rows
    batch_size = equal_batch_size(len(rows), config.batch_size)
    train_config = TrainConfig(batch_size=batch_size, mixup_alpha=config.mixup_alpha, seed=config.seed)
    batches = AugmentedBatches(data.X[rows], data.y_rows, n_classes, train_config, augment=config.augment)
    n_epochs = math.ceil(config.n_steps / len(batches))
    keras.utils.set_random_seed(config.seed)
    _set_trainable(model, config.trainable)
    try:
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="categorical_crossentropy")
        report = StepReport(on_step, len(batches) * n_epochs)
        history = model.fit(batches, epochs=n_epochs, callbacks=[report], verbose=0)
    finally:
        for layer in model.layers:
            layer.trainable = True
    return [float(v) for v in history.history["loss"]]


def equal_batch_size(n_clips: int, most: int) -> int:
    """The batch size that splits ``n_clips`` into as few batches of at most ``most`` as possible,
    all of (nearly) the same size: 35 clips, at most 32 -> 18 (batches of 18 and 17, not 32 and 3)."""
    n_batches = max(1, math.ceil(n_clips / most))
    return max(1, math.ceil(n_clips / n_batches))


def copy_model(model: keras.Model, *, seed: int = 0) -> keras.Model:
    """A copy of ``model`` with the same weights, to adapt while the original keeps serving."""
    keras.utils.set_random_seed(seed)  # before cloning: the dropout layers' seeds come from it
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def adapt_model(
    model: keras.Model,
    labelled: CorpusFeatures,
    config: AdaptConfig,
    *,
    unlabelled: np.ndarray | None = None,
    on_step: StepCallback | None = None,
) -> dict[str, Any]:
    """Adapt ``model`` in place: AdaBN on the labelled clips' audio (and ``unlabelled``
    [shape=(n, n_bins, n_frames)], the speaker's clips without labels, when given), then fine-tune
    on ``labelled`` (a ``CorpusFeatures`` with the training warps). Returns what was done, for the card."""
    X_stats = labelled.centre
    if unlabelled is not None and len(unlabelled):
        X_stats = np.concatenate([X_stats, unlabelled.astype(np.float32)])
    if len(X_stats) == 0:
        raise TrainingError("nothing to adapt on: no clips of the speaker, labelled or not")
    n_norms = adapt_batchnorm(model, X_stats) if config.adabn else 0
    losses: list[float] = []
    if config.shots > 0 and config.n_steps > 0 and len(labelled.y):
        losses = fine_tune(model, labelled, config, on_step=on_step)
    return {"n_batchnorm_layers": n_norms, "n_statistics_clips": len(X_stats), "loss_per_pass": losses}
