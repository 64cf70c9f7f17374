"""Smoothing over one speaker's clips (ser.voice.smoothing): what it corrects, what it leaves alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser.errors import ModelError
from ser.voice.profile import Normalisation, VoiceProfile
from ser.voice.smoothing import MIN_CLIPS, Smoothing


def two_emotions(rng: np.random.Generator, n: int = 200, wrong: float = 0.2):
    """One speaker's clips of two emotions, two clear clusters of normalised features, and a classifier
    that gets ``wrong`` of them wrong (at random), by a small margin, as a hesitant model does."""
    y = np.repeat([0, 1], n // 2)
    vectors = rng.normal(size=(n, 5)) + 4.0 * y[:, None]
    answer = np.where(rng.random(n) < wrong, 1 - y, y)
    probs = np.full((n, 3), 0.0)
    probs[np.arange(n), answer] = 0.55
    probs[np.arange(n), 1 - answer] = 0.45  # label 2 is one no clip gets
    return vectors, probs, y


def test_clips_of_one_cluster_pull_a_hesitant_wrong_answer_to_theirs(rng):
    vectors, probs, y = two_emotions(rng)
    before = np.mean(probs.argmax(axis=1) == y)
    smoothed = Smoothing().apply(probs, vectors)
    after = np.mean(smoothed.argmax(axis=1) == y)
    assert before <= 0.9 and after >= max(0.95, before + 0.08), (before, after)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(smoothed[:, 2] == 0)  # nothing appears that no clip gave


def test_a_confident_answer_outside_any_cluster_is_kept(rng):
    """Alpha < 1: a clip keeps part of its own answer, so one far from every other clip is not
    overruled by its (distant) neighbours."""
    vectors, probs, _ = two_emotions(rng, wrong=0.0)
    vectors = np.vstack([vectors, np.full(5, 40.0)])
    probs = np.vstack([probs, [0.0, 0.0, 1.0]])
    smoothed = Smoothing().apply(probs, vectors)
    assert smoothed[-1].argmax() == 2


def test_too_few_clips_or_no_alpha_change_nothing(rng):
    vectors, probs, _ = two_emotions(rng)
    few = probs[: MIN_CLIPS - 1]
    np.testing.assert_array_equal(Smoothing().apply(few, vectors[: MIN_CLIPS - 1]), few.astype(np.float32))
    np.testing.assert_array_equal(Smoothing(alpha=0.0).apply(probs, vectors), probs.astype(np.float32))


def test_identical_clips_do_not_divide_by_zero():
    probs = np.array([[0.6, 0.4], [0.4, 0.6], [0.7, 0.3], [0.8, 0.2]])
    smoothed = Smoothing(shrink_clips=0).apply(probs, np.zeros((4, 3)))
    assert np.all(np.isfinite(smoothed)) and np.allclose(smoothed.sum(axis=1), 1.0)
    assert np.abs(smoothed - probs).max() > 0.05  # every neighbour at distance 0 weighs fully


def test_the_neighbours_and_their_weight_grow_with_the_speakers_clips():
    assert [Smoothing().neighbours(n) for n in (3, 50, 200, 1400)] == [2, 2, 4, 28]
    assert [round(Smoothing().strength(n), 3) for n in (3, 10, 50, 1400)] == [0.185, 0.4, 0.667, 0.794]


def test_a_few_clips_of_different_emotions_keep_their_own_answers(rng):
    """Three clips of one speaker, each a different emotion and each answered right, but near each
    other (a subtle speaker): their neighbours hold nothing of their emotions, and they stay right."""
    vectors = rng.normal(size=(3, 5)) * 0.1
    probs = np.array([[0.5, 0.3, 0.2], [0.3, 0.45, 0.25], [0.3, 0.3, 0.4]])
    assert list(Smoothing().apply(probs, vectors).argmax(axis=1)) == [0, 1, 2]
    assert list(Smoothing(shrink_clips=0).apply(probs, vectors).argmax(axis=1)) != [0, 1, 2]  # unshrunk, they merge


def test_settings_travel_with_the_normalisation_and_damage_is_refused():
    fallback = VoiceProfile("s", np.zeros(3), np.ones(3), speech_s=1.0, n_vectors=1)
    normalisation = Normalisation("s", fallback, (2,), Smoothing(alpha=0.5))
    again = Normalisation.from_dict(json.loads(json.dumps(normalisation.to_dict())))
    assert again.smoothing == Smoothing(alpha=0.5) and again.unknown_dims == (2,)
    older = normalisation.to_dict()
    del older["smoothing"]  # a bundle made before smoothing: its answers stay each clip's own
    assert Normalisation.from_dict(older).smoothing is None
    with pytest.raises(ModelError, match="smoothing settings are damaged"):
        Normalisation.from_dict({**older, "smoothing": {"alpha": "much"}})
    with pytest.raises(ModelError, match="out of range"):
        Smoothing(alpha=1.0)
