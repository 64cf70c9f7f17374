"""ser.models.network.fit: one network fitted on a fold's training windows, early-stopped on its validation windows."""

from __future__ import annotations

import numpy as np
import pytest

from ser.config import TrainConfig
from ser.corpora.splits import make_splits
from ser.errors import ConfigError, TrainingError
from ser.features.corpus import prepare
from ser.models.archs import ARCHITECTURES
from ser.models.network.fit import fit, make_strategy
from ser.models.network.layers import network_proba
from tests.conftest import tiny_manifest


def _features():
    return ARCHITECTURES["cnn"].features


def test_training_is_reproducible_with_a_seed():
    manifest = tiny_manifest(n_words=2)
    split = make_splits(manifest, "none")[0]
    labels = sorted({c.emotion for c in manifest.clips})
    config = TrainConfig(epochs=1, batch_size=8, seed=3)
    train_data = prepare(split.train, labels, _features(), augment=True)
    val_data = prepare(split.val, labels, _features(), augment=True)
    runs = [fit(train_data, val_data, labels, _features(), config)[0] for _ in range(2)]
    X = val_data.X[:, val_data.X.shape[1] // 2].astype(np.float32)
    np.testing.assert_allclose(network_proba(runs[0], X), network_proba(runs[1], X), atol=1e-6)


def test_an_empty_part_is_refused_before_any_network_is_built():
    manifest = tiny_manifest(n_words=1)
    labels = sorted({c.emotion for c in manifest.clips})
    data = prepare(manifest.clips, labels, _features(), augment=False)
    empty = data.subset([])
    with pytest.raises(TrainingError, match="nothing to train on"):
        fit(data, empty, labels, _features(), TrainConfig(epochs=1))


def test_unknown_strategy_is_refused():
    with pytest.raises(ConfigError, match="unknown distribution strategy"):
        make_strategy("quantum")
