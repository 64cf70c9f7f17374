"""Voice profiles (ser.voice.profile): statistics of one speaker's unlabelled audio, saved and loaded safely."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser.errors import ProfileError
from ser.voice.profile import MIN_STD, Z_LIMIT, ProfileBuilder, VoiceProfile


def _profile(rng, n_dims=4) -> VoiceProfile:
    builder = ProfileBuilder("space-a", n_dims, source="test")
    builder.add(rng.normal(3.0, 2.0, (500, n_dims)), speech_s=10.0)
    return builder.profile()


def test_builder_statistics_are_exact_and_order_free(rng):
    vectors = rng.normal(size=(300, 5))
    one, two = ProfileBuilder("s", 5), ProfileBuilder("s", 5)
    one.add(vectors, 6.0)
    two.add(vectors[200:], 2.0)
    two.add(vectors[:200], 4.0)
    a, b = one.profile(), two.profile()
    np.testing.assert_allclose(a.mean, vectors.mean(axis=0))
    np.testing.assert_allclose(a.std, vectors.std(axis=0))
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.std, b.std)
    assert a.speech_s == b.speech_s == 6.0 and a.n_vectors == 300
    assert ProfileBuilder("s", 5).profile() is None


def test_weighted_statistics_count_each_vector_by_its_weight(rng):
    """Weight 3 on a vector is that vector added three times; weight 0 leaves it out."""
    vectors = rng.normal(size=(40, 3))
    weights = rng.integers(0, 4, size=40).astype(float)
    weighted, repeated = ProfileBuilder("s", 3), ProfileBuilder("s", 3)
    weighted.add(vectors, 4.0, weights=weights)
    repeated.add(np.repeat(vectors, weights.astype(int), axis=0), 4.0)
    a, b = weighted.profile(), repeated.profile()
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.std, b.std)
    assert a.n_vectors == 40


def test_normalise_takes_out_the_speakers_offset_and_scale(rng):
    profile = _profile(rng)
    z = profile.normalise(rng.normal(3.0, 2.0, (2000, 4)))
    assert np.abs(z.mean(axis=0)).max() < 0.1 and np.abs(z.std(axis=0) - 1).max() < 0.1


def test_normalised_values_are_capped(rng):
    profile = _profile(rng)
    sds = np.array([0.0, 1e6, -1e9, Z_LIMIT - 1])  # standard deviations from the speaker's mean
    z = profile.normalise((profile.mean + sds * profile.std)[None])
    np.testing.assert_allclose(z[0], [0.0, Z_LIMIT, -Z_LIMIT, Z_LIMIT - 1], atol=1e-4)


def test_a_constant_dimension_is_not_divided_by_zero():
    builder = ProfileBuilder("s", 2)
    builder.add(np.array([[1.0, 5.0], [3.0, 5.0]]), 1.0)
    assert builder.profile().std[1] == MIN_STD


def test_profile_round_trips_through_json(rng):
    profile = _profile(rng)
    loaded = VoiceProfile.from_json(profile.to_json(), space="space-a")
    np.testing.assert_allclose(loaded.mean, profile.mean)
    np.testing.assert_allclose(loaded.std, profile.std)
    assert (loaded.space, loaded.speech_s, loaded.n_vectors, loaded.source) == ("space-a", 10.0, 500, "test")


def _edited(profile: VoiceProfile, **changes) -> str:
    data = json.loads(profile.to_json())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: "", "not valid JSON"),
        (lambda p: "\x89PNG\r\n\x1a\n....", "not valid JSON"),
        (lambda p: "[1, 2, 3]", "not an object"),
        (lambda p: json.dumps({"model": "cnn"}), "not a SER Studio voice profile"),
        (lambda p: _edited(p, version=99), "version"),
        (lambda p: _edited(p, space="another-model"), "made for another model"),
        (lambda p: _edited(p, mean=[1.0, 2.0]), "differ in length"),
        (lambda p: _edited(p, std=[1.0, 0.0, 1.0, 1.0]), "below"),
        (lambda p: _edited(p, mean=["a", 1, 2, 3]), "finite numbers"),
        (lambda p: _edited(p, mean=None), "finite numbers"),
        (lambda p: p.to_json().replace('"std": [', '"std": [NaN, '), "finite numbers"),
        (lambda p: _edited(p, speech_s=-1), "positive"),
        (lambda p: _edited(p, n_vectors=0), "positive"),
        (lambda p: " " * (2 << 20), "small JSON file"),
    ],
)
def test_a_damaged_foreign_or_edited_profile_is_refused(rng, make, message):
    with pytest.raises(ProfileError, match=message):
        VoiceProfile.from_json(make(_profile(rng)), space="space-a")
