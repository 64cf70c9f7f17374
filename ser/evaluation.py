"""Scoring: a model on a corpus, clip by clip, exactly as ``predict`` answers each clip.

A clip's answer is ``ser.predict.clip_probabilities`` of its windows (the mean over its speech
windows), so the numbers in a card, in ``evaluate`` and on the Train page are the numbers a user
of ``predict`` would see.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ser.config import RunHooks
from ser.datasets import Manifest
from ser.errors import TrainingError
from ser.model import Bundle, predict_proba
from ser.predict import clip_probabilities
from ser.prepare import Features, prepare


def clip_scores(model: keras.Model, data: Features) -> np.ndarray:
    """Each clip's probabilities. Returns np.ndarray [shape=(n_clips, n_labels)]"""
    window_probs = predict_proba(model, data.centre)
    order = np.argsort(data.clip_of, kind="stable")
    bounds = np.searchsorted(data.clip_of[order], np.arange(len(data.y) + 1))
    return np.array(
        [clip_probabilities(window_probs[order[a:b]], data.speech[order[a:b]]) for a, b in itertools.pairwise(bounds)]
    ).reshape(len(data.y), model.output_shape[-1])


def score(model: keras.Model, data: Features, labels: Sequence[str]) -> dict[str, Any]:
    """``compute_metrics`` of ``model`` on the clips of ``data``, each answered as ``predict`` would."""
    return compute_metrics(data.y, clip_scores(model, data).argmax(axis=1), labels)


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and UAR (unweighted average recall) over the classes present, per-class
    precision/recall/F1/support, confusion matrix (rows: true)."""
    index = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=index, zero_division=0)
    present = support > 0
    return {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else math.nan,
        "macro_f1": float(np.mean(f1[present])) if present.any() else math.nan,
        "uar": float(np.mean(recall[present])) if present.any() else math.nan,
        "n_clips": len(y_true),
        "labels": list(labels),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=index).tolist(),
    }


def summarise(fold_metrics: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Mean accuracy, macro-F1 and UAR over folds, with each fold's metrics under its description."""
    if not fold_metrics:
        return {}
    mean = {key: float(np.mean([m[key] for _, m in fold_metrics])) for key in ("accuracy", "macro_f1", "uar")}
    return {**mean, "folds": [{"split": description, **m} for description, m in fold_metrics]}


def evaluate_bundle(bundle: Bundle, manifest: Manifest, *, hooks: RunHooks = RunHooks()) -> dict[str, Any]:
    """Score a bundle on every clip of a corpus whose emotion it knows; report what was skipped and why."""
    labels = bundle.labels
    data = prepare(manifest.clips, labels, bundle.feature_config, augment=False, audio_config=bundle.card.audio_config,
                   hooks=hooks)  # fmt: skip
    reasons = _skip_reasons(manifest, labels, data)
    if len(data.y) == 0:
        why = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
        example = f" (e.g. {data.errors[0]})" if data.errors else ""
        raise TrainingError(
            f"none of the {len(manifest)} clips could be scored by {bundle.name} (labels {labels}): {why}{example}"
        )
    return {
        "model": bundle.name,
        **score(bundle.model, data, labels),
        "policy": bundle.card.evaluation_policy,
        "skipped": {"n": sum(reasons.values()), "reasons": reasons, "examples": data.errors[:5]},
    }


def _skip_reasons(manifest: Manifest, labels: Sequence[str], data: Features) -> dict[str, int]:
    unknown = Counter(c.emotion for c in manifest.clips if c.emotion not in labels)
    reasons = {f"emotion '{e}' is not one the model knows": n for e, n in sorted(unknown.items())}
    if data.errors:
        reasons["could not be decoded or used"] = len(data.errors)
    if manifest.unmatched:
        reasons["file name matched no corpus layout"] = len(manifest.unmatched)
    return reasons
