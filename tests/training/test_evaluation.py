"""Scoring (ser.training.evaluation) is what predict answers: per clip, windows and pauses and all."""

from __future__ import annotations

import numpy as np
import pytest

from ser.corpora.datasets import Clip, Manifest
from ser.features.corpus import prepare
from ser.models.bundle import load_bundle
from ser.serving.predict import Predictor, classify
from ser.training.evaluation import clip_scores, compute_metrics, evaluate_bundle, summarise
from tests.conftest import clip_with_a_pause


def test_evaluate_scores_exactly_what_predict_answers_for_a_7_s_clip(tiny_bundle, tmp_path):
    """A 7 s clip has several windows and, here, a pause: evaluate must average the same speech
    windows predict does, not a centre crop of the clip."""
    path = clip_with_a_pause(tmp_path)
    bundle = load_bundle(tiny_bundle)
    answered = classify(path, Predictor(bundle)).prediction
    assert answered.n_windows > 1
    clip = Clip(path, "csv", "EF1", "long", "angry")
    data = prepare([clip], bundle.labels, bundle.feature_config, augment=False, audio_config=bundle.card.audio_config)
    scored = clip_scores(bundle.model, data)[0]
    np.testing.assert_allclose(scored, list(answered.probabilities.values()), rtol=1e-5, atol=1e-6)
    report = evaluate_bundle(bundle, Manifest([clip], tmp_path, []))
    predicted = bundle.labels[int(np.argmax(report["confusion"][bundle.labels.index("angry")]))]
    assert predicted == answered.label and report["policy"] == bundle.card.evaluation_policy


def test_metrics_count_only_the_classes_present():
    labels = ["neutral", "happy", "sad"]
    y_true, y_pred = np.array([0, 0, 2, 2]), np.array([0, 2, 2, 2])
    m = compute_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == 0.75 and m["per_class"]["happy"]["support"] == 0
    assert m["uar"] == pytest.approx((0.5 + 1.0) / 2)  # happy is absent: not averaged in
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["confusion"] == [[1, 0, 1], [0, 0, 0], [0, 0, 2]]


def test_summarise_averages_folds_and_keeps_each():
    folds = [
        ("a", {"accuracy": 0.5, "macro_f1": 0.4, "uar": 0.45}),
        ("b", {"accuracy": 1.0, "macro_f1": 0.8, "uar": 0.9}),
    ]
    summary = summarise(folds)
    assert summary["accuracy"] == 0.75 and summary["uar"] == pytest.approx(0.675)
    assert [f["split"] for f in summary["folds"]] == ["a", "b"] and summarise([]) == {}
