"""Scoring: a model on a corpus, clip by clip, exactly as ``predict`` answers each clip.

A clip's answer is ``ser.serving.predict.clip_probabilities`` of its windows (the mean over its speech
windows), so the numbers in a card, in ``evaluate`` and on the Train page are the numbers a user
of ``predict`` would see.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ser.config import RunHooks
from ser.corpora.datasets import Manifest
from ser.errors import TrainingError
from ser.features.corpus import CorpusFeatures, prepare
from ser.models import Model
from ser.models.bundle import Bundle
from ser.serving.predict import clip_probabilities
from ser.voice.profile import VoiceProfile

PER_SPEAKER = "per speaker: each speaker's clips normalised by that speaker's own unlabelled clips (transductive)"
PER_SPEAKER_SMOOTHED = (
    "per speaker: each speaker's clips normalised by that speaker's own unlabelled clips, and each answer "
    "smoothed over the speaker's clips nearest it (transductive)"
)
NO_PROFILE = "each clip normalised by itself (this model takes no voice profile)"


def speaker_profiles(model: Model, data: CorpusFeatures) -> dict[str, VoiceProfile]:
    """Each speaker's voice profile from their speech windows in ``data`` (unlabelled: transductive)."""
    speakers = np.array([data.clips[i].speaker_id for i in data.clip_of])
    rows = data.rows
    vectors = data.centre[rows].reshape(len(rows), -1)
    profiles = {}
    for speaker in np.unique(speakers[rows]):
        mine = speakers[rows] == speaker
        builder = model.profile_builder(f"training speaker {speaker}")
        builder.add(vectors[mine], speech_s=float(mine.sum()))
        profiles[str(speaker)] = builder.profile()
    return profiles


def _contours(data: CorpusFeatures, windows: np.ndarray | slice = slice(None)) -> np.ndarray | None:
    """The unchanged speed's contours of ``windows`` of ``data``, where it has them."""
    return None if data.contours is None else data.contours[windows, data.contours.shape[1] // 2]


def clip_scores(model: Model, data: CorpusFeatures, *, per_speaker: bool = False) -> np.ndarray:
    """Each clip's probabilities, as ``predict`` answers it: zero-shot, or (``per_speaker``) with its
    speaker's voice profile from the speaker's clips, smoothed over them where the model smooths.
    Returns np.ndarray [shape=(n_clips, n_labels)]"""
    if per_speaker and model.takes_profiles:
        return _per_speaker_scores(model, data)
    centre = data.centre  # a copy of the unchanged speed's windows: made once, not per clip
    probs = _per_clip(data, model.answer(centre, contours=_contours(data)).probs)
    if not model.takes_profiles:
        return probs
    for clip, rows in enumerate(_clip_rows(data)):  # a clip its kind answers with a profile of its own
        windows, speech = centre[rows], data.speech[rows]
        profile, _ = model.clip_profile(windows, speech, float(data.speech_s[clip]), None)
        if profile is not None:
            probs[clip] = clip_probabilities(model.answer(windows, profile=profile).probs, speech)
    return probs


def _per_speaker_scores(model: Model, data: CorpusFeatures) -> np.ndarray:
    profiles = speaker_profiles(model, data)
    window_speakers = np.array([data.clips[i].speaker_id for i in data.clip_of])
    window_probs = np.zeros((len(data.clip_of), len(model.labels)), dtype=np.float32)
    centre, vectors = data.centre, None
    known = set()
    for speaker, profile in profiles.items():
        mine = window_speakers == speaker
        answer = model.answer(centre[mine], profile=profile)
        window_probs[mine] = answer.probs
        if vectors is None:
            vectors = np.zeros((len(data.clip_of), answer.vectors.shape[1]), dtype=np.float32)
        vectors[mine] = answer.vectors
        if answer.known_voice:  # a voice it was trained on: its own classifier answers, unsmoothed
            known.add(speaker)
    probs = _per_clip(data, window_probs)
    if model.smooths and vectors is not None:
        clip_vectors = _per_clip(data, vectors)
        speakers = np.array([clip.speaker_id for clip in data.clips])
        for speaker in set(np.unique(speakers)) - known:
            mine = speakers == speaker
            probs[mine] = model.smooth(probs[mine], clip_vectors[mine])
    return probs


def _clip_rows(data: CorpusFeatures) -> list[np.ndarray]:
    """Each clip's window rows, in order, found in one sort rather than a search per clip."""
    order = np.argsort(data.clip_of, kind="stable")
    bounds = np.searchsorted(data.clip_of[order], np.arange(len(data.y) + 1))
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def _per_clip(data: CorpusFeatures, per_window: np.ndarray) -> np.ndarray:
    """Each clip's row from its windows' rows, as ``predict`` takes them (``clip_probabilities``):
    [shape=(n_windows, k)] -> [shape=(n_clips, k)]"""
    rows = [clip_probabilities(per_window[mine], data.speech[mine]) for mine in _clip_rows(data)]
    return np.array(rows, dtype=np.float32).reshape(len(data.y), per_window.shape[1])


def score(model: Model, data: CorpusFeatures, labels: Sequence[str], *, per_speaker: bool = False) -> dict[str, Any]:
    """``compute_metrics`` of ``model`` on the clips of ``data``, each answered as ``predict`` would:
    zero-shot, or (``per_speaker``) each speaker normalised by their own unlabelled clips."""
    probs = clip_scores(model, data, per_speaker=per_speaker)
    metrics = compute_metrics(data.y, probs.argmax(axis=1), labels)
    if model.takes_profiles:
        metrics["normalisation"] = normalisation_used(model, per_speaker)
    return metrics


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
    """Mean accuracy, macro-F1 and UAR over folds, with each fold's metrics under its description.
    Folds scored per speaker too (a speaker-normalised model) get the same summary of those under
    "per_speaker"; the top level is zero-shot."""
    if not fold_metrics:
        return {}
    plain = [(d, {k: v for k, v in m.items() if k not in ("per_speaker", "normalisation")}) for d, m in fold_metrics]
    mean = {key: float(np.mean([m[key] for _, m in plain])) for key in ("accuracy", "macro_f1", "uar")}
    summary = {**mean, "folds": [{"split": description, **m} for description, m in plain]}
    if all("per_speaker" in m for _, m in fold_metrics):
        summary["normalisation"] = fold_metrics[0][1].get("normalisation", "zero-shot")
        summary["per_speaker"] = {
            **summarise([(d, m["per_speaker"]) for d, m in fold_metrics]),
            "normalisation": fold_metrics[0][1]["per_speaker"].get("normalisation", PER_SPEAKER),
        }
    return summary


def normalisation_used(model: Model, per_speaker: bool) -> str:
    """How ``evaluate`` normalised the clips, in words (the ``normalisation`` key of its report)."""
    if not model.takes_profiles:
        return NO_PROFILE
    if per_speaker:
        return PER_SPEAKER_SMOOTHED if model.smooths else PER_SPEAKER
    return model.zero_shot_how


def evaluate_bundle(
    bundle: Bundle, manifest: Manifest, *, per_speaker: bool = False, hooks: RunHooks = RunHooks()
) -> dict[str, Any]:
    """Score a bundle on every clip of a corpus whose emotion it knows, zero-shot or (``per_speaker``)
    with each of the manifest's speakers normalised by their own clips; report what was skipped and why."""
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
        **score(bundle.model, data, labels, per_speaker=per_speaker),
        "policy": bundle.card.evaluation_policy,
        "normalisation": normalisation_used(bundle.model, per_speaker),
        "transductive": per_speaker and bundle.model.takes_profiles,
        "skipped": {"n": sum(reasons.values()), "reasons": reasons, "examples": data.errors[:5]},
    }


def _skip_reasons(manifest: Manifest, labels: Sequence[str], data: CorpusFeatures) -> dict[str, int]:
    unknown = Counter(c.emotion for c in manifest.clips if c.emotion not in labels)
    reasons = {f"emotion '{e}' is not one the model knows": n for e, n in sorted(unknown.items())}
    if data.errors:
        reasons["could not be decoded or used"] = len(data.errors)
    if manifest.unmatched:
        reasons["file name matched no corpus layout"] = len(manifest.unmatched)
    return reasons
