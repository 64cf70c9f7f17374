"""ser.store.registry: the models folder: its active pointer, its bundles listed and deleted, and
model cards read, written and compared."""

from __future__ import annotations

import json
import shutil

import pytest

from ser.config import AudioConfig, FeatureConfig
from ser.errors import ModelError
from ser.store.card import SCHEMA_VERSION, ModelCard, read_card
from ser.store.registry import MODELS_DIR, active_name, active_path, list_bundles, set_active


def test_active_pointer_is_atomic_and_checked(saved):
    models_dir, path = saved
    with pytest.raises(ModelError, match="no active model"):
        active_name(models_dir)
    set_active("good", models_dir)
    assert active_path(models_dir) == path
    with pytest.raises(ModelError):
        set_active("missing", models_dir)
    assert active_name(models_dir) == "good"  # a refused switch leaves the pointer alone
    (models_dir / "active.json").write_text("garbage")
    with pytest.raises(ModelError, match="damaged"):
        active_name(models_dir)


def test_list_bundles_reports_broken_ones(saved):
    models_dir, path = saved
    shutil.copytree(path, models_dir / "broken")
    (models_dir / "broken" / "card.json").unlink()
    listed = dict(list_bundles(models_dir))
    assert isinstance(listed[path], ModelCard)
    assert isinstance(listed[models_dir / "broken"], ModelError)


def test_a_card_round_trips_through_its_dict():
    card = ModelCard(
        architecture="cnn", labels=("sad", "angry"), feature_config=FeatureConfig(n_mels=32),
        audio_config=AudioConfig(trim_top_db=25.0), evaluation={"speaker": {"accuracy": 0.5}},
        history=({"epoch": 1},), command="python -m ser train x",
    )  # fmt: skip
    data = json.loads(json.dumps(card.to_dict()))
    assert ModelCard.from_dict(data) == card and data["schema_version"] == SCHEMA_VERSION
    assert data["audio_config"]["trim_top_db"] == 25.0 and "adaptation" not in data


def test_the_shipped_schema_1_card_still_loads():
    """The first bundles wrote an untyped dict without schema_version or audio_config."""
    raw = json.loads((MODELS_DIR / "cnn-tess-v1" / "card.json").read_text())
    card = read_card(MODELS_DIR / "cnn-tess-v1")
    assert "schema_version" not in raw and card.schema_version == 1 and card.audio_config == AudioConfig()
    assert card.labels == tuple(raw["labels"]) and card.feature_config == FeatureConfig.from_dict(raw["feature_config"])


def test_headline_prefers_voices_never_heard():
    base = ModelCard(architecture="cnn", labels=("a", "b"), feature_config=FeatureConfig())
    both = {"random": {"accuracy": 0.99}, "speaker": {"accuracy": 0.7}}
    assert ModelCard.headline(base) is None
    assert ModelCard(**{**base.__dict__, "evaluation": both}).headline()[0] == "speaker"
    assert ModelCard(**{**base.__dict__, "evaluation": {"random": {"accuracy": 1.0}}}).headline()[0] == "random"
    with_corpus = {**both, "corpus": {"accuracy": 0.5}}
    assert ModelCard(**{**base.__dict__, "evaluation": with_corpus}).headline() == ("corpus", {"accuracy": 0.5})


@pytest.mark.parametrize(
    "text",
    ["[1, 2]", '"card"', json.dumps({"labels": ["a"], "feature_config": {}, "architecture": "cnn", "history": 5})],
)
def test_a_malformed_card_is_a_model_error(tmp_path, text):
    (tmp_path / "card.json").write_text(text)
    with pytest.raises(ModelError, match="card"):
        read_card(tmp_path)


def test_cards_compare_on_one_protocol():
    from ser.store.card import compare_on_protocol

    config = FeatureConfig()
    new = ModelCard("cnn", ("a",), config, evaluation={"speaker": {"accuracy": 0.8, "macro_f1": 0.7}},
                    data={"root": "tess", "speakers": ["OAF", "YAF"], "n_clips": 2240})  # fmt: skip
    old = ModelCard("seed-lstm", ("a",), config, evaluation={"random": {"accuracy": 0.99}}, data={"root": "demo"})
    rows = compare_on_protocol({"new": new, "old": old}, "speaker")
    assert rows[0] == {
        "model": "new", "architecture": "cnn", "accuracy": 0.8, "macro_f1": 0.7,
        "corpus": "tess", "speakers": "OAF, YAF", "clips": 2240,
    }  # fmt: skip
    assert rows[1]["model"] == "old" and rows[1]["accuracy"] is None and rows[1]["corpus"] == "demo"


def test_delete_bundle_removes_one_bundle_folder_and_nothing_else(tmp_path):
    from ser.store.registry import delete_bundle, list_bundles

    models = tmp_path / "models"
    for name in ("keep", "old"):
        shutil.copytree(MODELS_DIR / "cnn-tess-v1", models / name)
    assert delete_bundle("old", models) == models / "old"
    assert [p.name for p, _ in list_bundles(models)] == ["keep"]
    assert sorted(p.name for p in models.iterdir()) == ["keep"]  # nothing set aside is left


@pytest.mark.parametrize("name", ["", ".", "..", "../models", "keep/card.json", "/etc", ".hidden", "missing", "link",
                                  "notes.txt", "empty"])  # fmt: skip
def test_delete_bundle_refuses_what_is_not_a_bundle_folder_in_the_models_folder(tmp_path, name):
    from ser.store.registry import delete_bundle

    models, elsewhere = tmp_path / "models", tmp_path / "elsewhere"
    shutil.copytree(MODELS_DIR / "cnn-tess-v1", models / "keep")
    shutil.copytree(MODELS_DIR / "cnn-tess-v1", elsewhere)
    shutil.copytree(MODELS_DIR / "cnn-tess-v1", models / ".hidden")
    (models / "link").symlink_to(elsewhere)
    (models / "notes.txt").write_text("not a bundle")
    (models / "empty").mkdir()
    before = sorted(p.name for p in models.iterdir())
    with pytest.raises(ModelError, match="nothing was deleted"):
        delete_bundle(name, models)
    assert sorted(p.name for p in models.iterdir()) == before
    assert (elsewhere / "card.json").is_file() and (models / "keep" / "card.json").is_file()
