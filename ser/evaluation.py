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

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ser import svm
from ser.bundle import Bundle, Model, predict_proba
from ser.config import RunHooks
from ser.contours import contour_nets, fuse
from ser.datasets import Manifest
from ser.errors import TrainingError
from ser.predict import SELF_PROFILE_S, clip_probabilities
from ser.prepare import Features, prepare
from ser.profile import Normalisation, ProfileBuilder, VoiceProfile
from ser.voices import KnownVoices, known_voices

ZERO_SHOT = (
    "zero-shot: each clip alone, normalised by the model's fall-back statistics (a clip with "
    f"{SELF_PROFILE_S:.0f} s of speech or more by its own, as predict answers it)"
)
ZERO_SHOT_WITH_NETS = f"{ZERO_SHOT}; the SVM's answer averaged half and half with its contour networks'"
PER_SPEAKER = "per speaker: each speaker's clips normalised by that speaker's own unlabelled clips (transductive)"
PER_SPEAKER_SMOOTHED = (
    "per speaker: each speaker's clips normalised by that speaker's own unlabelled clips, and each answer "
    "smoothed over the speaker's clips nearest it (transductive)"
)
SELF_NORMALISED = "each clip normalised by itself (this model takes no voice profile)"


def speaker_profiles(data: Features, space: str) -> dict[str, VoiceProfile]:
    """Each speaker's voice profile from their speech windows in ``data`` (unlabelled: transductive)."""
    speakers = np.array([data.clips[i].speaker_id for i in data.clip_of])
    rows = data.rows
    return svm.speaker_profiles(data.centre[rows].reshape(len(rows), -1), speakers[rows], space)


def clip_scores(
    model: Model, data: Features, normalisation: Normalisation | None = None, *, per_speaker: bool = False
) -> np.ndarray:
    """Each clip's probabilities, as ``predict`` answers it. Returns np.ndarray [shape=(n_clips, n_labels)]"""
    if normalisation is None or not per_speaker:
        window_probs = predict_proba(model, data.centre, normalisation=normalisation)
        nets = contour_nets(model) if normalisation is not None else None
        if nets is not None and data.contours is not None:  # zero-shot: the contour networks beside the SVM
            window_probs = fuse(window_probs, nets.proba(data.contours[:, data.contours.shape[1] // 2]))
        probs = _per_clip(data, window_probs)
        if normalisation is not None:  # a long clip is normalised by its own speech, as predict does
            for clip in np.flatnonzero(data.speech_s >= SELF_PROFILE_S):
                probs[clip] = _self_normalised(model, data, normalisation, clip)
        return probs
    profiles = speaker_profiles(data, normalisation.space)
    vectors = speaker_vectors(data, normalisation, profiles)  # each window in its speaker's terms, once
    window_probs = predict_proba(model, vectors)
    window_speakers = np.array([data.clips[i].speaker_id for i in data.clip_of])
    voices = known_voices(model) if normalisation.voices is not None else None
    known = set()
    for speaker, profile in profiles.items():
        mine = window_speakers == speaker
        answer = _as_known_voice(voices, normalisation, profile, window_probs[mine], vectors[mine])
        if answer is not None:  # a voice it was trained on: mostly its own classifier, as predict answers it
            window_probs[mine] = answer
            known.add(speaker)
    probs = _per_clip(data, window_probs)
    if normalisation.smoothing is not None:
        vectors = _per_clip(data, vectors)
        speakers = np.array([clip.speaker_id for clip in data.clips])
        for speaker in set(np.unique(speakers)) - known:
            mine = speakers == speaker
            probs[mine] = normalisation.smoothing.apply(probs[mine], vectors[mine])
    return probs


def _self_normalised(model: Model, data: Features, normalisation: Normalisation, clip: int) -> np.ndarray:
    """The answer to one clip of ``data`` normalised by the profile of its own speech windows, as
    ``Predictor.answer`` takes a recording with ``SELF_PROFILE_S`` of speech and no profile.
    Returns np.ndarray [shape=(n_labels,)]"""
    rows = np.flatnonzero(data.clip_of == clip)
    windows, speech = data.centre[rows], data.speech[rows]
    own = ProfileBuilder(normalisation.space, windows[0].size, source="the recording's own speech")
    own.add(windows[speech].reshape(int(speech.sum()), -1), speech_s=float(data.speech_s[clip]))
    profile = own.profile()
    vectors = normalisation.apply(windows.reshape(len(windows), -1), profile)
    probs = predict_proba(model, vectors)
    voices = known_voices(model) if normalisation.voices is not None else None
    known = _as_known_voice(voices, normalisation, profile, probs, vectors)
    return clip_probabilities(probs if known is None else known, speech)


def _as_known_voice(
    voices: KnownVoices | None, normalisation: Normalisation, profile: VoiceProfile | None, probs: np.ndarray,
    vectors: np.ndarray,
) -> np.ndarray | None:  # fmt: skip
    """The windows' probabilities as a known voice's (``Predictor.known_voice``) when ``profile`` is
    one of the model's training ``voices``, else None."""
    voice = voices.match(profile, normalisation.voices) if voices is not None else None
    return None if voice is None else voices.answer(voice, probs, vectors, normalisation.voices)


def speaker_vectors(data: Features, normalisation: Normalisation, profiles: dict[str, VoiceProfile]) -> np.ndarray:
    """Each window's features as the classifier reads them, normalised by its speaker's own profile
    (``speaker_profiles`` of ``data``). Returns np.ndarray [shape=(n_windows, n_dims)]"""
    flat = data.centre.reshape(len(data.clip_of), -1)
    vectors = np.zeros(flat.shape, dtype=np.float32)
    speakers = np.array([data.clips[i].speaker_id for i in data.clip_of])
    for speaker, profile in profiles.items():
        mine = speakers == speaker
        vectors[mine] = normalisation.apply(flat[mine], profile)
    return vectors


def _per_clip(data: Features, per_window: np.ndarray) -> np.ndarray:
    """Each clip's row from its windows' rows, as ``predict`` takes them (``clip_probabilities``):
    [shape=(n_windows, k)] -> [shape=(n_clips, k)]"""
    order = np.argsort(data.clip_of, kind="stable")
    bounds = np.searchsorted(data.clip_of[order], np.arange(len(data.y) + 1))
    rows = [clip_probabilities(per_window[order[a:b]], data.speech[order[a:b]]) for a, b in itertools.pairwise(bounds)]
    return np.array(rows, dtype=np.float32).reshape(len(data.y), per_window.shape[1])


def score(
    model: Model, data: Features, labels: Sequence[str], normalisation: Normalisation | None = None, *,
    per_speaker: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """``compute_metrics`` of ``model`` on the clips of ``data``, each answered as ``predict`` would:
    zero-shot, or (``per_speaker``) each speaker normalised by their own unlabelled clips."""
    probs = clip_scores(model, data, normalisation, per_speaker=per_speaker)
    metrics = compute_metrics(data.y, probs.argmax(axis=1), labels)
    if normalisation is not None:
        metrics["normalisation"] = per_speaker_how(normalisation) if per_speaker else zero_shot_how(model)
    return metrics


def zero_shot_how(model: Model) -> str:
    """What "zero-shot" does with a clip for a speaker-normalised ``model``, in words."""
    return ZERO_SHOT_WITH_NETS if contour_nets(model) is not None else ZERO_SHOT


def per_speaker_how(normalisation: Normalisation) -> str:
    """What "per speaker" does with a speaker's clips under ``normalisation``, in words."""
    return PER_SPEAKER if normalisation.smoothing is None else PER_SPEAKER_SMOOTHED


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
        summary["normalisation"] = fold_metrics[0][1].get("normalisation", ZERO_SHOT)
        summary["per_speaker"] = {
            **summarise([(d, m["per_speaker"]) for d, m in fold_metrics]),
            "normalisation": fold_metrics[0][1]["per_speaker"].get("normalisation", PER_SPEAKER),
        }
    return summary


def normalisation_used(bundle: Bundle, per_speaker: bool) -> str:
    """How ``evaluate`` normalised the clips, in words (the ``normalisation`` key of its report)."""
    if bundle.normalisation is None:
        return SELF_NORMALISED
    return per_speaker_how(bundle.normalisation) if per_speaker else zero_shot_how(bundle.model)


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
        **score(bundle.model, data, labels, bundle.normalisation, per_speaker=per_speaker),
        "policy": bundle.card.evaluation_policy,
        "normalisation": normalisation_used(bundle, per_speaker),
        "transductive": per_speaker and bundle.normalisation is not None,
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
