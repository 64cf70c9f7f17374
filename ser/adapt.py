"""Speaker adaptation: a bundle -> a bundle for one speaker, from k labelled clips per emotion (or none).

``choose_clips`` (``ser.fewshot``) takes k clips per emotion of the speaker (chosen by a seed) and leaves the rest
of that speaker's clips, minus every word the chosen clips say, as the held-out test clips.
``adapt_model`` then re-estimates every BatchNorm layer's statistics on the speaker's clips
(AdaBN: the speaker's voice, not the training speakers', sets each channel's mean and scale) and
fine-tunes every layer but the BatchNorms on the labelled clips with a small learning rate for a
fixed number of steps, with the training-time voice warps (VTLP). There is no validation set at k clips per
emotion, so nothing is early-stopped or tuned on the speaker's data. ``adapt`` does the whole
run: before/after metrics on the held-out clips, a card, and a bundle saved like any other.

With k = 0 no label is used: AdaBN alone on every clip of the speaker, scored on those same clips
(transductive, as a user with a folder of one speaker's recordings would use it).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from ser.bundle import Bundle, save_bundle
from ser.config import RunHooks, TrainConfig
from ser.datasets import Manifest
from ser.errors import ConfigError, DatasetError, ModelError, TrainingError
from ser.evaluation import score
from ser.fewshot import AdaptationClips, choose_clips
from ser.fit import AugmentedBatches
from ser.model import StepReport
from ser.models import Model
from ser.prepare import Features, prepare
from ser.registry import MODELS_DIR, SCHEMA_VERSION, ModelCard, adapted_name, library_versions, new_bundle_path, utc_now

ADABN_BATCH = 128  # clips per forward pass while BatchNorm statistics are gathered
TRAINABLE = ("head", "last", "all")  # see AdaptConfig.trainable
ADAPTED = "speaker-adapted"  # the protocol an adapted card's evaluation is recorded under

StepCallback = Callable[[int, int, float], None]  # (step, n_steps, loss)


@dataclass(frozen=True)
class AdaptConfig:
    shots: int = 5  # labelled clips per emotion; 0: AdaBN on unlabelled clips only
    adabn: bool = True  # re-estimate BatchNorm statistics on the speaker's clips first
    # Fine-tuned part: "head" (classifier), "last" (last conv block + head), "all" (every layer but the
    # BatchNorms). "all" won on cached TESS features, k = 1, 3, 5, both directions: 0.93 mean against
    # 0.89 for "last" and 0.76 for the head alone, which barely moves from AdaBN's 0.75.
    trainable: str = "all"
    n_steps: int = 40  # optimiser steps on the labelled clips (a fixed budget: there is no validation set)
    # Most clips per step: up to 64 (k = 9) every step sees every clip; more are split into equal
    # batches. Steps of 32 and then 3 clips (k = 5) lost 0.14 accuracy on TESS: the small batch's
    # noisy steps count as much as the full ones.
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


# --- the adaptation itself -------------------------------------------------------------------------


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
    model: keras.Model, data: Features, config: AdaptConfig, *, on_step: StepCallback | None = None
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
    labelled: Features,
    config: AdaptConfig,
    *,
    unlabelled: np.ndarray | None = None,
    on_step: StepCallback | None = None,
) -> dict[str, Any]:
    """Adapt ``model`` in place: AdaBN on the labelled clips' audio (and ``unlabelled``
    [shape=(n, n_bins, n_frames)], the speaker's clips without labels, when given), then fine-tune
    on ``labelled`` (a ``Features`` with the training warps). Returns what was done, for the card."""
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


# --- a whole run: clips -> before/after -> bundle -----------------------------------------------------


def adapt(
    bundle: Bundle,
    manifest: Manifest,
    speaker: str,
    config: AdaptConfig = AdaptConfig(),
    *,
    models_dir: Path = MODELS_DIR,
    name: str | None = None,
    command: str = "",
    hooks: RunHooks = RunHooks(),
    save: bool = True,
) -> tuple[Path | None, ModelCard, Model]:
    """Adapt ``bundle`` to ``speaker`` of ``manifest`` and save it as a new bundle.

    Scores the base and the adapted model on the speaker's held-out clips (``choose_clips``), whose
    labels serve for scoring only. Returns (bundle path or None when ``save`` is False, card, model).
    The base bundle's model is not changed.
    """
    if not bundle.model.adaptable:
        raise ModelError(
            f"{bundle.name} is not adapted by fine-tuning: it takes the speaker's voice profile instead "
            "(predict --same-speaker or --profile, evaluate --per-speaker, or 'one speaker' on the Classify page)"
        )
    start = time.perf_counter()
    name = name or adapted_name(bundle.name, speaker)
    if save:
        new_bundle_path(models_dir, name)  # a taken or unusable name fails now, not after the work
    clips, labelled, test = _speaker_features(bundle, manifest, speaker, config, hooks)
    labels = bundle.labels
    before = score(bundle.model, test, labels)
    # shots = 0: unsupervised, AdaBN on all the speaker's clips; their labels only score the result
    unlabelled = test.centre if config.shots == 0 else None
    model, done = bundle.model.adapt(labelled, config, unlabelled=unlabelled, on_step=hooks.on_step)
    after = score(model, test, labels)
    record = adaptation_record(bundle, manifest, clips, config, before=before, after=after, done=done)
    card = adapted_card(bundle, record, command=command, adapt_time_s=time.perf_counter() - start)
    path = save_bundle(model, card, models_dir, name) if save else None
    return path, card, model


def _speaker_features(
    bundle: Bundle, manifest: Manifest, speaker: str, config: AdaptConfig, hooks: RunHooks
) -> tuple[AdaptationClips, Features, Features]:
    """The speaker's adaptation and test clips (``choose_clips``), and their features by the
    bundle's recipe (the adaptation clips with the training warps). Raises DatasetError."""
    labels, feature_config, audio_config = bundle.labels, bundle.feature_config, bundle.card.audio_config
    clips = choose_clips(manifest, speaker, labels, shots=config.shots, seed=config.seed)
    labelled, test = (
        prepare(part, labels, feature_config, augment=augment, audio_config=audio_config, hooks=hooks)
        for part, augment in ((clips.labelled, True), (clips.test, False))
    )
    if labelled.errors or test.errors:
        raise DatasetError(f"some clips of {speaker} cannot be used: {(labelled.errors + test.errors)[0]}")
    return clips, labelled, test


def adaptation_record(
    bundle: Bundle, manifest: Manifest, clips: AdaptationClips, config: AdaptConfig, *,
    before: dict[str, Any], after: dict[str, Any], done: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """What the adaptation did and how it scored on the speaker's held-out clips, for the card."""
    root = manifest.root.parent if manifest.root.suffix.lower() == ".csv" else manifest.root
    if config.shots == 0:
        test_note = (
            f"all {len(clips.test)} clips of {clips.speaker}, the same clips whose audio (not labels) set the "
            "BatchNorm statistics: transductive"
        )
    else:
        test_note = (
            f"{speaker_clips(manifest, clips.speaker)} clips of {clips.speaker} minus the {len(clips.labelled)} "
            f"adaptation clips and every clip of their {len(clips.excluded_words)} words"
        )
    return {
        "base_model": bundle.name,
        "base_created_at": bundle.card.created_at,
        "speaker": clips.speaker,
        "shots": config.shots,
        "seed": config.seed,
        "method": config.method,
        "config": config.to_dict(),
        "data_root": manifest.root.name,  # clip paths below are relative to it (no local absolute paths)
        "clips": [{"path": _relative(c.path, root), "emotion": c.emotion, "word": c.text} for c in clips.labelled],
        "excluded_words": clips.excluded_words,
        "test": test_note,
        "before": before,
        "after": after,
        **done,
    }


def adapted_card(bundle: Bundle, record: dict[str, Any], *, command: str, adapt_time_s: float) -> ModelCard:
    """The base card, derived: what the adaptation did, and its score as the card's evaluation."""
    base, speaker, after, before = bundle.card, record["speaker"], record["after"], record["before"]
    if record["shots"] == 0:
        tested_on = f"{speaker}'s clips, after AdaBN on them without their labels"
    else:
        tested_on = f"{speaker}'s held-out clips, after adapting on {record['shots']} per emotion"
    evaluation = {
        "accuracy": after["accuracy"],
        "macro_f1": after["macro_f1"],
        "before": {"accuracy": before["accuracy"], "macro_f1": before["macro_f1"]},
        "description": tested_on,
    }
    return dataclasses.replace(
        base,
        description=f"{base.description}; adapted to speaker {speaker} ({record['method']})",
        base_evaluation=base.evaluation,
        evaluation={ADAPTED: evaluation},
        adaptation={**record, "adapt_time_s": round(adapt_time_s, 1)},
        versions=library_versions(),
        created_at=utc_now(),
        command=command,
        schema_version=SCHEMA_VERSION,  # written by this version, whatever its base's
    )


def speaker_clips(manifest: Manifest, speaker: str) -> int:
    return sum(1 for c in manifest.clips if manifest.speaker_of(c) == speaker)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
