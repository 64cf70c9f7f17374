"""ser.models.bundle: a model saved as a bundle folder loads back answering the same, is never
overwritten, and a damaged bundle (or a bundle's file given for its folder) is a ModelError; the
bundles that ship in models/ load whole."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.errors import ModelError
from ser.models.archs import ARCHITECTURES
from ser.models.bundle import load_bundle, save_bundle
from ser.models.network import NetworkModel
from ser.models.network.layers import build_model
from ser.store.card import read_card
from ser.store.registry import MODELS_DIR, active_path
from tests.conftest import lstm_card


def test_bundle_round_trip_gives_identical_predictions(tmp_path, rng):
    config = ARCHITECTURES["seed-lstm"].features
    X = rng.standard_normal((4, config.n_bins, config.n_frames)).astype(np.float32)
    model = build_model("seed-lstm", config, 2, X)
    path = save_bundle(NetworkModel(model, ("angry", "sad"), config), lstm_card(config), tmp_path, "m1")
    bundle = load_bundle(path)
    assert bundle.labels == ["angry", "sad"] and bundle.feature_config == config
    np.testing.assert_array_equal(np.asarray(model(X)), bundle.model.answer(X).probs)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_save_refuses_to_overwrite(tmp_path):
    config = ARCHITECTURES["seed-lstm"].features
    model = NetworkModel(build_model("seed-lstm", config, 2), ("angry", "sad"), config)
    save_bundle(model, lstm_card(config), tmp_path, "m1")
    with pytest.raises(ModelError, match="already exists"):
        save_bundle(model, lstm_card(config), tmp_path, "m1")


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
                json.dumps(lstm_card(FeatureConfig(), labels=("a", "b", "c")).to_dict())
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
