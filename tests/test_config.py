"""Settings are checked where they are made, with an SERError naming the bad value."""

from __future__ import annotations

import dataclasses

import pytest

from ser.config import FeatureConfig, RunHooks, TrainConfig
from ser.errors import ConfigError, SERError
from ser.models.archs import ARCHITECTURES, get_architecture


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 0}, "epochs must be a whole number of at least 1, not 0"),
        ({"epochs": -3}, "not -3"),
        ({"batch_size": 0}, "batch_size"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"average_momentum": 1.0}, "average_momentum"),
    ],
)
def test_train_config_refuses_bad_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


@pytest.mark.parametrize("changes", [{"kind": "cqt"}, {"normalize": "max"}])
def test_feature_config_refuses_bad_values(changes):
    with pytest.raises(SERError):
        FeatureConfig(**changes)


def test_derived_feature_sizes():
    config = FeatureConfig()
    assert (config.n_samples, config.n_frames, config.n_bins) == (48_000, 151, 40)
    assert dataclasses.replace(config, kind="mfcc", n_mfcc=13).n_bins == 13
    assert FeatureConfig.from_dict({**config.to_dict(), "unknown": 1}) == config


def test_configs_round_trip():
    config = TrainConfig(epochs=3, seed=2)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_every_architecture_names_its_kind_and_unknown_ones_are_config_errors():
    from ser.models import Model, kind_of

    for name, spec in ARCHITECTURES.items():
        assert spec.description and issubclass(kind_of(name), Model), name
    with pytest.raises(ConfigError, match="unknown architecture 'resnet'"):
        get_architecture("resnet")


def test_run_hooks_stop_only_when_asked():
    assert not RunHooks().stopped()
    assert RunHooks(should_stop=lambda: True).stopped()
