"""Training and evaluation: manifest -> features -> fitted model -> metrics -> bundle.

``train`` reads top to bottom: split, features (cached), fit with early stopping on a
validation part carved from the training side, test on the held-out part, save the
bundle with its card. Progress goes to a plain callable, so the command line and the
app observe the same run. Nothing here imports Streamlit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ser import __version__
from ser.config import EMOTIONS, FeatureConfig, TrainConfig
from ser.datasets import Clip, Manifest, Split, make_splits
from ser.errors import TrainingError
from ser.features import extract_corpus
from ser.model import MODELS_DIR, Bundle, build_model, get_architecture, new_bundle_path, save_bundle

# Vocal-tract-length perturbation factors used as augmentation: +-20 % in frequency,
# about the gap between an older and a younger adult voice.
WARPS = tuple(float(w) for w in np.round(np.exp(np.linspace(np.log(0.8), np.log(1.25), 9)), 4))


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


@dataclass
class Features:
    """Features of a list of clips: X [shape=(n, n_warps, n_bins, n_frames)] float16 and labels y [shape=(n,)]."""

    X: np.ndarray
    y: np.ndarray
    clips: list[Clip]
    errors: list[str] = field(default_factory=list)


EpochCallback = Callable[[EpochLog], None]
ProgressFn = Callable[[int, int], None]


def prepare(
    clips: Sequence[Clip],
    labels: Sequence[str],
    config: FeatureConfig,
    *,
    augment: bool,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> Features:
    """Features for clips whose emotion is in ``labels``; files that fail to decode are reported."""
    usable = [c for c in clips if c.emotion in labels]
    warps = WARPS if augment else (1.0,)
    X, ok, errors = extract_corpus(
        [c.path for c in usable], config, warps=warps, cache_dir=cache_dir, progress=progress
    )
    kept = [c for c, good in zip(usable, ok, strict=True) if good]
    y = np.array([labels.index(c.emotion) for c in kept], dtype=np.int64)
    return Features(X, y, kept, errors)


class AugmentedBatches(keras.utils.PyDataset):
    """Batches that draw a random frequency warp per clip each epoch (VTLP), plus mixup."""

    def __init__(self, data: Features, n_classes: int, config: TrainConfig, *, augment: bool) -> None:
        super().__init__()
        self.data, self.n_classes, self.batch_size = data, n_classes, config.batch_size
        self.augment = augment and data.X.shape[1] > 1
        self.mixup_alpha = config.mixup_alpha if augment else 0.0
        self.rng = np.random.default_rng(config.seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.data.y) / self.batch_size)

    def on_epoch_end(self) -> None:
        n, n_warps = self.data.X.shape[:2]
        self.order = self.rng.permutation(n)
        self.warp = self.rng.integers(0, n_warps, n) if self.augment else np.full(n, n_warps // 2)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        X = self.data.X[rows, self.warp[rows]].astype(np.float32)
        Y = np.eye(self.n_classes, dtype=np.float32)[self.data.y[rows]]
        if self.mixup_alpha > 0:
            # Mixup: blends of two clips with blended labels, so no single voice's detail is memorised.
            lam = self.rng.beta(self.mixup_alpha, self.mixup_alpha, len(rows)).astype(np.float32)
            partner = self.rng.permutation(len(rows))
            X = lam[:, None, None] * X + (1 - lam[:, None, None]) * X[partner]
            Y = lam[:, None] * Y + (1 - lam[:, None]) * Y[partner]
        return X, Y


def center_view(data: Features) -> np.ndarray:
    """The unwarped features. Returns np.ndarray [shape=(n, n_bins, n_frames)] float32"""
    return data.X[:, data.X.shape[1] // 2].astype(np.float32)


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
    def __init__(self, on_epoch: EpochCallback | None, should_stop: Callable[[], bool] | None, n_epochs: int):
        super().__init__()
        self.on_epoch, self.should_stop, self.n_epochs = on_epoch, should_stop, n_epochs
        self.history: list[EpochLog] = []
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        entry = EpochLog(
            epoch + 1,
            self.n_epochs,
            float(logs.get("loss", math.nan)),
            float(logs.get("accuracy", math.nan)),
            float(logs.get("val_loss", math.nan)),
            float(logs.get("val_accuracy", math.nan)),
            time.perf_counter() - self.start,
        )
        self.history.append(entry)
        if self.on_epoch is not None:
            self.on_epoch(entry)
        if self.should_stop is not None and self.should_stop():
            self.model.stop_training = True


def make_strategy(name: str | None):
    """``None``/"default": one device; "mirrored": all local GPUs (or logical CPUs);
    "multi-worker": the cluster described by the TF_CONFIG environment variable."""
    import tensorflow as tf

    if name in (None, "", "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError("the multi-worker strategy needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingError(f"unknown distribution strategy {name!r}; use default, mirrored or multi-worker")


def fit(
    train_data: Features,
    val_data: Features,
    labels: Sequence[str],
    feature_config: FeatureConfig,
    config: TrainConfig,
    *,
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    strategy: str | None = None,
) -> tuple[keras.Model, list[EpochLog]]:
    """Fit one model with early stopping on the validation features; the best epoch's weights are kept."""
    if len(train_data.y) == 0 or len(val_data.y) == 0:
        raise TrainingError("nothing to train on: the training or validation part is empty")
    keras.utils.set_random_seed(config.seed)
    arch = get_architecture(config.arch)
    augment = config.augment and arch.augment
    with make_strategy(strategy).scope():
        model = build_model(config.arch, feature_config, len(labels), center_view(train_data))
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
    report = _Report(on_epoch, should_stop, config.epochs)
    stopper = AveragedEarlyStopping(
        center_view(val_data), val_data.y, momentum=config.average_momentum, patience=config.patience
    )
    model.fit(
        AugmentedBatches(train_data, len(labels), config, augment=augment),
        epochs=config.epochs,
        callbacks=[stopper, report],  # the stopper first: it adds the validation scores to the logs
        verbose=0,
    )
    return model, report.history


def predict_proba(model: keras.Model, X: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities. X [shape=(n, n_bins, n_frames)] -> [shape=(n, n_classes)]"""
    if len(X) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.concatenate(
        [np.asarray(model(X[i : i + batch_size], training=False)) for i in range(0, len(X), batch_size)]
    )


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix (rows: true)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    index = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=index, zero_division=0)
    present = support > 0
    return {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else math.nan,
        "macro_f1": float(np.mean(f1[present])) if present.any() else math.nan,
        "n_clips": len(y_true),
        "labels": list(labels),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=index).tolist(),
    }


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


def run_fold(
    split: Split,
    labels: Sequence[str],
    feature_config: FeatureConfig,
    config: TrainConfig,
    *,
    cache_dir: Path | None = None,
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: ProgressFn | None = None,
    strategy: str | None = None,
) -> FoldResult:
    """Features, fit and test for one split."""
    augment = config.augment and get_architecture(config.arch).augment
    train_data = prepare(split.train, labels, feature_config, augment=augment, cache_dir=cache_dir, progress=progress)
    val_data = prepare(split.val, labels, feature_config, augment=augment, cache_dir=cache_dir)
    model, history = fit(
        train_data, val_data, labels, feature_config, config,
        on_epoch=on_epoch, should_stop=should_stop, strategy=strategy,
    )  # fmt: skip
    metrics = None
    if split.test:
        # Same warps as training, so another fold that trains on these clips finds them cached.
        test_data = prepare(split.test, labels, feature_config, augment=augment, cache_dir=cache_dir)
        y_pred = predict_proba(model, center_view(test_data)).argmax(axis=1)
        metrics = compute_metrics(test_data.y, y_pred, labels)
    return FoldResult(split, model, history, metrics, len(train_data.y), len(val_data.y))


def summarise_folds(folds: Sequence[FoldResult]) -> dict[str, Any]:
    """Mean accuracy and macro-F1 over folds, with each fold's metrics."""
    scored = [f for f in folds if f.metrics is not None]
    if not scored:
        return {}
    return {
        "accuracy": float(np.mean([f.metrics["accuracy"] for f in scored])),
        "macro_f1": float(np.mean([f.metrics["macro_f1"] for f in scored])),
        "folds": [{"split": f.split.description, **f.metrics} for f in scored],
    }


def library_versions() -> dict[str, str]:
    import librosa
    import tensorflow as tf

    return {
        "ser": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "librosa": librosa.__version__,
        "numpy": np.__version__,
    }


def make_card(
    *,
    arch: str,
    labels: Sequence[str],
    feature_config: FeatureConfig,
    config: TrainConfig,
    manifest: Manifest,
    split_kind: str,
    fold: FoldResult,
    evaluation: dict[str, Any],
    command: str,
    train_time_s: float,
) -> dict[str, Any]:
    """Everything a reader (or the predictor) needs to know about a bundle."""
    return {
        "architecture": arch,
        "description": get_architecture(arch).description,
        "labels": list(labels),
        "feature_config": feature_config.to_dict(),
        "train_config": config.to_dict(),
        "data": {
            **manifest.summary(),
            "root": manifest.root.name,  # no local absolute paths in a card that may be shared
            "clips_per_speaker": dict(sorted(Counter(c.speaker for c in manifest.clips).items())),
            "split": split_kind,
            "trained_on": fold.split.description,
            "n_train": fold.n_train,
            "n_val": fold.n_val,
        },
        "history": [dataclasses.asdict(e) for e in fold.history],
        "best_epoch": int(np.argmin([e.val_loss for e in fold.history])) + 1 if fold.history else None,
        "evaluation": evaluation,
        "train_time_s": round(train_time_s, 1),
        "versions": library_versions(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
    }


def bundle_name(arch: str) -> str:
    return f"{arch}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


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
    cache_dir: Path | None = None,
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: ProgressFn | None = None,
    strategy: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train on ``manifest`` under a split protocol and save a bundle; returns (bundle path, card).

    ``split`` is "none" (every clip trains the saved model, a validation part aside), "speaker",
    "random" or "words" (the saved model is the first fold's; test metrics are reported).
    ``evaluate_protocols`` are further protocols to measure and record in the card, each training
    its own throw-away models (the bundled model records "speaker" and "random" this way).
    """
    start = time.perf_counter()
    name = name or bundle_name(config.arch)
    new_bundle_path(models_dir, name)  # a taken name is refused now, not after the whole run
    feature_config = feature_config or get_architecture(config.arch).features
    labels = model_labels(manifest)
    protocols = [split] + [p for p in evaluate_protocols if p != split]
    plan = [(protocol, s) for protocol in protocols for s in make_splits(manifest, protocol, seed=config.seed)]
    run = dict(cache_dir=cache_dir, should_stop=should_stop, progress=progress, strategy=strategy)
    results: dict[str, list[FoldResult]] = {protocol: [] for protocol in protocols}
    for i, (protocol, s) in enumerate(plan, start=1):
        fold_on_epoch = _in_fold(on_epoch, s.description, i, len(plan))
        results[protocol].append(run_fold(s, labels, feature_config, config, on_epoch=fold_on_epoch, **run))
        if should_stop is not None and should_stop():
            raise TrainingError("training was stopped before it finished; the active model is unchanged")
    folds = results[split]
    evaluation = {p: summarise_folds(results[p]) for p in protocols if p != "none"}
    card = make_card(
        arch=config.arch, labels=labels, feature_config=feature_config, config=config, manifest=manifest,
        split_kind=split, fold=folds[0], evaluation=evaluation, command=command,
        train_time_s=time.perf_counter() - start,
    )  # fmt: skip
    path = save_bundle(folds[0].model, card, models_dir, name)
    return path, card


def _in_fold(on_epoch: EpochCallback | None, fold: str, index: int, n_folds: int) -> EpochCallback | None:
    """``on_epoch`` with each entry labelled by the fit it belongs to."""
    if on_epoch is None:
        return None
    return lambda entry: on_epoch(dataclasses.replace(entry, fold=fold, fold_index=index, n_folds=n_folds))


def evaluate_bundle(bundle: Bundle, manifest: Manifest, *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Score a bundle on every clip of a corpus whose emotion it knows; report what was skipped and why."""
    labels = bundle.labels
    unknown = Counter(c.emotion for c in manifest.clips if c.emotion not in labels)
    data = prepare(manifest.clips, labels, bundle.feature_config, augment=False, progress=progress)
    reasons = {f"emotion '{e}' is not one the model knows": n for e, n in sorted(unknown.items())}
    if data.errors:
        reasons["could not be decoded or used"] = len(data.errors)
    if manifest.unmatched:
        reasons["file name matched no corpus layout"] = len(manifest.unmatched)
    if len(data.y) == 0:
        why = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
        example = f" (e.g. {data.errors[0]})" if data.errors else ""
        raise TrainingError(
            f"none of the {len(manifest)} clips could be scored by {bundle.name} (labels {labels}): {why}{example}"
        )
    y_pred = predict_proba(bundle.model, center_view(data)).argmax(axis=1)
    return {
        "model": bundle.name,
        **compute_metrics(data.y, y_pred, labels),
        "skipped": {"n": sum(reasons.values()), "reasons": reasons, "examples": data.errors[:5]},
    }
