"""ser.models.network.layers: every network architecture builds for its features and answers
probabilities, an unknown one is named, and ``network_proba`` gives one answer for any batch size."""

from __future__ import annotations

import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.errors import ConfigError
from ser.models.archs import ARCHITECTURES
from ser.models.network.layers import build_model, network_proba


@pytest.mark.parametrize("name", [n for n, a in ARCHITECTURES.items() if a.kind == "network"])
def test_every_network_builds_for_its_features(name, rng):
    config = ARCHITECTURES[name].features
    X = rng.standard_normal((6, config.n_bins, config.n_frames)).astype(np.float32)
    model = build_model(name, config, 7, X)
    probs = np.asarray(model(X, training=False))
    assert probs.shape == (6, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_architecture_is_named():
    with pytest.raises(ConfigError, match=r"unknown architecture 'resnet'.*cnn"):
        build_model("resnet", FeatureConfig(), 7)


def test_network_proba_is_one_road_for_any_batch_size(rng):
    """Chunked probabilities equal one call, and an empty batch gives an empty (0, n_classes) array."""
    config = ARCHITECTURES["cnn"].features
    model = build_model("cnn", config, 3)
    X = rng.standard_normal((70, config.n_bins, config.n_frames)).astype(np.float32)
    np.testing.assert_allclose(network_proba(model, X, batch_size=16), network_proba(model, X), rtol=1e-4, atol=1e-6)
    assert network_proba(model, X[:0]).shape == (0, 3)
