from __future__ import annotations

import json

import numpy as np
import pytest

from ser.archs import ARCHITECTURES
from ser.bundle import load_bundle, save_bundle
from ser.config import FeatureConfig
from ser.errors import ConfigError, ModelError
from ser.model import build_model, network_proba
from ser.models.network import NetworkModel
from ser.registry import MODELS_DIR, ModelCard, active_path, read_card


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


def _card(config: FeatureConfig, labels=("angry", "sad")) -> ModelCard:
    return ModelCard(architecture="seed-lstm", labels=tuple(labels), feature_config=config)


def test_bundle_round_trip_gives_identical_predictions(tmp_path, rng):
    config = ARCHITECTURES["seed-lstm"].features
    X = rng.standard_normal((4, config.n_bins, config.n_frames)).astype(np.float32)
    model = build_model("seed-lstm", config, 2, X)
    path = save_bundle(NetworkModel(model, ("angry", "sad"), config), _card(config), tmp_path, "m1")
    bundle = load_bundle(path)
    assert bundle.labels == ["angry", "sad"] and bundle.feature_config == config
    np.testing.assert_array_equal(np.asarray(model(X)), bundle.model.answer(X).probs)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_save_refuses_to_overwrite(tmp_path):
    config = ARCHITECTURES["seed-lstm"].features
    model = NetworkModel(build_model("seed-lstm", config, 2), ("angry", "sad"), config)
    save_bundle(model, _card(config), tmp_path, "m1")
    with pytest.raises(ModelError, match="already exists"):
        save_bundle(model, _card(config), tmp_path, "m1")


@pytest.fixture
def saved(tmp_path):
    config = ARCHITECTURES["seed-lstm"].features
    model = NetworkModel(build_model("seed-lstm", config, 2), ("angry", "sad"), config)
    path = save_bundle(model, _card(config), tmp_path, "good")
    return tmp_path, path


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "card.json").unlink(), "card.json is missing"),
        (lambda p: (p / "card.json").write_text("{not json"), "damaged"),
        (lambda p: (p / "card.json").write_text(json.dumps({"labels": ["a"]})), "lacks"),
        (lambda p: (p / "model.keras").write_bytes(b"PK\x03\x04 half a zip"), "cannot be loaded"),
        (lambda p: (p / "model.keras").unlink(), "cannot be loaded"),
        (
            lambda p: (p / "card.json").write_text(
                json.dumps(_card(FeatureConfig(), labels=("a", "b", "c")).to_dict())
            ),
            "inconsistent",
        ),
    ],
)
def test_damaged_bundles_raise_model_error(saved, damage, message):
    _, path = saved
    damage(path)
    with pytest.raises(ModelError, match=message):
        load_bundle(path)


def test_a_bundle_file_instead_of_its_folder_is_named_as_such(saved):
    _, path = saved
    with pytest.raises(ModelError, match=r"model\.keras is a file, not a model bundle: give the folder"):
        load_bundle(path / "model.keras")


def test_the_bundled_model_is_complete_small_and_never_heard_the_example_voice():
    path = active_path(MODELS_DIR)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size <= 5 * 1024 * 1024
    card = read_card(path)
    assert card.architecture == "egemaps-svm" and card.normalisation is not None
    assert card.data["corpora"] == ["emodb", "ravdess", "tess"] and len(card.data["speakers"]) == 27
    assert "ravdess/A16" not in card.data["speakers"] and "--leave-out ravdess/A16" in card.command
    assert card.command.startswith("python -m ser train")
    for protocol in ("corpus", "speaker"):
        zero_shot, per_speaker = card.evaluation[protocol], card.evaluation[protocol]["per_speaker"]
        assert 0 < zero_shot["macro_f1"] < per_speaker["macro_f1"] <= 1
    bundle = load_bundle(path)
    assert bundle.labels == list(card.labels) and bundle.model.profile_space == "egemaps-89-w3s"


def test_the_tess_cnn_still_ships_for_adaptation():
    bundle = load_bundle(MODELS_DIR / "cnn-tess-v1")
    assert bundle.card.architecture == "cnn" and set(bundle.card.data["speakers"]) == {"OAF", "YAF"}


def test_network_proba_is_one_road_for_any_batch_size(rng):
    """Chunked probabilities equal one call, and an empty batch gives an empty (0, n_classes) array."""
    config = ARCHITECTURES["cnn"].features
    model = build_model("cnn", config, 3)
    X = rng.standard_normal((70, config.n_bins, config.n_frames)).astype(np.float32)
    np.testing.assert_allclose(network_proba(model, X, batch_size=16), network_proba(model, X), rtol=1e-4, atol=1e-6)
    assert network_proba(model, X[:0]).shape == (0, 3)
