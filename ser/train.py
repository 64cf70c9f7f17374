"""Training: a manifest -> split -> corpus features -> fitted model -> scores -> a bundle with its card.

``train`` reads top to bottom: the protocol's splits, each fold's features (``ser.prepare``,
cached), a fit with early stopping on a validation part carved from the training side, the
test part scored as ``predict`` answers (``ser.evaluation``), then the bundle and its card.
Progress goes to plain callables (``RunHooks``), so the command line and the app observe the
same run. Nothing here imports Streamlit.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ser.archs import get_architecture
from ser.bundle import Model, predict_proba, save_bundle
from ser.config import EMOTIONS, STRATEGIES, AudioConfig, FeatureConfig, RunHooks, TrainConfig
from ser.datasets import Manifest
from ser.errors import ConfigError, TrainingError
from ser.evaluation import score, summarise
from ser.model import build_model
from ser.prepare import Features, prepare
from ser.profile import Normalisation, feature_space
from ser.registry import MODELS_DIR, ModelCard, bundle_name, library_versions, new_bundle_path, utc_now
from ser.splits import PROTOCOLS, Split, make_splits
from ser.svm import BALANCE, fit_svm


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
        probs = predict_proba(self.model, self.X_val)
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
    train_data: Features, val_data: Features, labels: Sequence[str], feature_config: FeatureConfig,
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


def model_labels(manifest: Manifest) -> list[str]:
    """The modelled emotions present in a corpus, in the canonical order."""
    present = {c.emotion for c in manifest.clips}
    labels = [e for e in EMOTIONS if e in present]
    if len(labels) < 2:
        raise TrainingError(f"need at least two of {', '.join(EMOTIONS)} to train; found {labels or 'none'}")
    return labels


@dataclass
class FoldResult:
    split: Split
    model: keras.Model
    history: list[EpochLog]
    metrics: dict[str, Any] | None  # on the test part; None when the split has no test part
    n_train: int
    n_val: int
    normalisation: Normalisation | None = None  # of a speaker-normalised model


def run_fold(
    split: Split, labels: Sequence[str], feature_config: FeatureConfig, config: TrainConfig, *,
    audio_config: AudioConfig = AudioConfig(), hooks: RunHooks = RunHooks(),
) -> FoldResult:  # fmt: skip
    """Features, fit and test for one split."""
    augment = config.augment and get_architecture(config.arch).augment
    svm = get_architecture(config.arch).family == "svm"
    # An SVM is not early-stopped, so its validation clips train it too.
    parts = ([*split.train, *split.val], [], split.test) if svm else (split.train, split.val, split.test)
    # The test part gets the training warps too, so another fold that trains on its clips finds them cached.
    train_data, val_data, test_data = (
        prepare(part, labels, feature_config, augment=augment, audio_config=audio_config, hooks=hooks,
                progress=i == 0)
        for i, part in enumerate(parts)
    )  # fmt: skip
    if svm:
        model, normalisation, history = *fit_speaker_svm(train_data, feature_config, config, labels), []
    else:
        model, history = fit(train_data, val_data, labels, feature_config, config, hooks=hooks)
        normalisation = None
    metrics = None
    if split.test:
        metrics = score(model, test_data, labels, normalisation)
        if normalisation is not None:
            metrics["per_speaker"] = score(model, test_data, labels, normalisation, per_speaker=True)
    return FoldResult(split, model, history, metrics, len(train_data.y), len(val_data.y), normalisation)


def fit_speaker_svm(
    data: Features, feature_config: FeatureConfig, config: TrainConfig, labels: Sequence[str]
) -> tuple[Model, Normalisation]:
    """The speaker-normalised SVM on the training windows (``ser.svm``); validation is not needed."""
    rows = data.rows
    clips = [data.clips[i] for i in data.clip_of[rows]]
    space = feature_space(feature_config.kind, feature_config.n_bins, feature_config.window_s)
    vectors = data.centre[rows].reshape(len(rows), -1)
    return fit_svm(vectors, data.y_rows, [c.speaker_id for c in clips], [c.corpus for c in clips], space=space,
                   seed=config.seed, n_labels=len(labels))  # fmt: skip


def build_card(
    manifest: Manifest, labels: Sequence[str], feature_config: FeatureConfig, config: TrainConfig, *,
    split_kind: str, fold: FoldResult, evaluation: dict[str, Any], command: str, train_time_s: float,
) -> ModelCard:  # fmt: skip
    """The one place a trained model's card is made (an adapted card is derived from it)."""
    data = {
        **manifest.summary(),
        "root": manifest.root.name,  # no local absolute paths in a card that may be shared
        "clips_per_speaker": manifest.clips_per_speaker(),
        "split": split_kind,
        "trained_on": fold.split.description
        + (
            "; an SVM is not early-stopped, so the validation clips train it too"
            if get_architecture(config.arch).family == "svm"
            else ""
        ),
        "n_train": fold.n_train,
        "n_val": fold.n_val,
        "balance": BALANCE if get_architecture(config.arch).family == "svm" else "none (every clip counts once)",
    }
    history = tuple(dataclasses.asdict(e) for e in fold.history)
    return ModelCard(
        architecture=config.arch, labels=tuple(labels), feature_config=feature_config,
        description=get_architecture(config.arch).description, train_config=config.to_dict(), data=data,
        history=history, best_epoch=int(np.argmin([e.val_loss for e in fold.history])) + 1 if history else None,
        evaluation=evaluation, train_time_s=round(train_time_s, 1), versions=library_versions(),
        created_at=utc_now(), command=command,
        normalisation=None if fold.normalisation is None else fold.normalisation.to_dict(),
    )  # fmt: skip


def train(
    manifest: Manifest,
    *,
    split: str = "none",
    config: TrainConfig = TrainConfig(),
    feature_config: FeatureConfig | None = None,
    evaluate_protocols: Sequence[str] = (),
    models_dir: Path = MODELS_DIR,
    name: str | None = None,
    command: str = "",
    hooks: RunHooks = RunHooks(),
) -> tuple[Path, ModelCard]:
    """Train on ``manifest`` under a split protocol and save a bundle; returns (bundle path, card).

    ``split`` is one of ``ser.datasets.PROTOCOLS``: "none" (every clip trains the saved model, a
    validation part aside), or a protocol with test parts (the saved model is the first fold's;
    test metrics are reported). ``evaluate_protocols`` are further protocols to measure and record
    in the card, each training its own throw-away models.
    """
    start = time.perf_counter()
    for protocol in (split, *evaluate_protocols):
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    name = name or bundle_name(config.arch)
    new_bundle_path(models_dir, name)  # a taken name is refused now, not after the whole run
    feature_config = feature_config or get_architecture(config.arch).features
    labels = model_labels(manifest)
    protocols = [split] + [p for p in evaluate_protocols if p != split]
    plan = [
        (p, s) for p in protocols for s in make_splits(manifest, p, seed=config.seed, val_fraction=config.val_fraction)
    ]
    results: dict[str, list[FoldResult]] = {protocol: [] for protocol in protocols}
    for i, (protocol, s) in enumerate(plan, start=1):
        fold_hooks = dataclasses.replace(hooks, on_epoch=_in_fold(hooks.on_epoch, s.description, i, len(plan)))
        results[protocol].append(run_fold(s, labels, feature_config, config, hooks=fold_hooks))
        if hooks.stopped():
            raise TrainingError("training was stopped before it finished; the active model is unchanged")
    evaluation = {
        p: summarise([(f.split.description, f.metrics) for f in results[p] if f.metrics is not None])
        for p in protocols if p != "none"
    }  # fmt: skip
    folds = results[split]
    card = build_card(
        manifest, labels, feature_config, config, split_kind=split, fold=folds[0], evaluation=evaluation,
        command=command, train_time_s=time.perf_counter() - start,
    )  # fmt: skip
    return save_bundle(folds[0].model, card, models_dir, name), card


def _in_fold(on_epoch: EpochCallback | None, fold: str, index: int, n_folds: int) -> EpochCallback | None:
    """``on_epoch`` with each entry labelled by the fit it belongs to."""
    if on_epoch is None:
        return None
    return lambda entry: on_epoch(dataclasses.replace(entry, fold=fold, fold_index=index, n_folds=n_folds))
