"""The contract every kind of model keeps (ser.models): fitted by the same road, saved and loaded
whole, and answering a clip through predict exactly as evaluate scores it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ser.config import TrainConfig
from ser.corpora.datasets import Clip, Manifest
from ser.features.corpus import prepare
from ser.features.windows import extract_features
from ser.models import Model, kind_of
from ser.models.archs import ARCHITECTURES
from ser.models.bundle import load_bundle, save_bundle
from ser.serving.predict import Predictor, classify
from ser.training.evaluation import clip_scores
from ser.training.train import train
from tests.conftest import BUNDLED_SVM, ROOT, clip_with_a_pause, spoken, tiny_manifest

# The first architecture of each kind
FIRST_OF_KIND = {spec.kind: name for name, spec in reversed(ARCHITECTURES.items())}


@pytest.fixture(scope="module", params=sorted(FIRST_OF_KIND))
def fitted(request, tmp_path_factory):
    arch = FIRST_OF_KIND[request.param]
    config = TrainConfig(arch=arch, epochs=2, batch_size=16)
    models_dir = tmp_path_factory.mktemp("models")
    path, _ = train(tiny_manifest(), split="none", config=config, models_dir=models_dir, name=arch, command="pytest")
    return path


def _windows(bundle, seconds: float = 7.0):
    waveform = spoken(seconds, voice="EM2", seed=5)
    return extract_features(waveform, bundle.feature_config, bundle.card.audio_config)


def _answers(model: Model, windows, profile=None) -> np.ndarray:
    contours = None if windows.contours is None else windows.contours[:, 0]
    return model.answer(windows.features[:, 0], contours=contours, profile=profile).probs


def test_every_kind_is_a_model_and_records_what_its_answers_depend_on(fitted):
    bundle = load_bundle(fitted)
    kind = kind_of(bundle.card.architecture)
    assert isinstance(bundle.model, kind) and issubclass(kind, Model)
    recorded = bundle.card.to_dict()
    for field, value in bundle.model.card_fields().items():
        assert recorded[field] == value, field
    assert bundle.model.labels == bundle.card.labels


def test_save_and_load_give_identical_probabilities(fitted, tmp_path):
    bundle = load_bundle(fitted)
    again = load_bundle(save_bundle(bundle.model, bundle.card, tmp_path, "again"))
    windows = _windows(bundle)
    np.testing.assert_array_equal(_answers(bundle.model, windows), _answers(again.model, windows))
    if bundle.model.takes_profiles:
        profile = Predictor(bundle).build_profile([spoken(6.0, voice="EM2", seed=s) for s in (1, 2)], "test")
        np.testing.assert_array_equal(_answers(bundle.model, windows, profile), _answers(again.model, windows, profile))


def test_predict_equals_evaluate_on_a_7_s_clip_with_a_pause(fitted, tmp_path):
    path = clip_with_a_pause(tmp_path)
    bundle = load_bundle(fitted)
    answered = classify(path, Predictor(bundle)).prediction
    assert answered.n_windows > 1 or bundle.feature_config.window_s > 7  # one window a clip: the plain reference
    clip = Clip(path, "csv", "EF1", "long", "angry")
    data = prepare([clip], bundle.labels, bundle.feature_config, augment=False, audio_config=bundle.card.audio_config)
    np.testing.assert_allclose(clip_scores(bundle.model, data)[0], list(answered.probabilities.values()), atol=2e-3)
    evaluated = clip_scores(bundle.model, data, per_speaker=True)[0]
    if not bundle.model.takes_profiles:  # per speaker is zero-shot for a kind without profiles
        np.testing.assert_allclose(evaluated, list(answered.probabilities.values()), atol=2e-3)
    else:  # the clip's speaker profile is its own windows
        assert evaluated.sum() == pytest.approx(1.0, abs=1e-4)
    assert Manifest([clip], tmp_path, []).clips == [clip]


def test_a_bundle_of_the_older_format_loads_and_saves_in_the_new(tmp_path):
    """The bundled model was written with card schema 2, its voices and networks inside its SVM's
    file; it still loads, and saved again it keeps each part in a file of its own and answers the same."""
    bundle = load_bundle(BUNDLED_SVM)
    assert bundle.card.schema_version == 2 and not (BUNDLED_SVM / "voices.skops").exists()
    again = load_bundle(save_bundle(bundle.model, bundle.card, tmp_path, "v8-again"))
    assert {p.name for p in again.path.iterdir()} == {"card.json", "model.skops", "voices.skops", "contours.npz"}
    assert not any(name.startswith(("voice_", "contour_")) for name in vars(again.model.pooled))
    windows = _windows(bundle)
    np.testing.assert_array_equal(_answers(bundle.model, windows), _answers(again.model, windows))
    profile = Predictor(bundle).build_profile([spoken(8.0, voice="EF1", seed=s) for s in (1, 2, 3)], "test")
    np.testing.assert_array_equal(_answers(bundle.model, windows, profile), _answers(again.model, windows, profile))
    assert again.model.settings == bundle.model.settings
    assert again.model.normalisation.to_dict() == bundle.model.normalisation.to_dict()


def test_only_the_kinds_ask_what_type_a_model_is():
    """Training, evaluation, serving and the pages ask a model's kind (ser.models); none of them
    checks what type a model is or which family an architecture belongs to."""
    asks = re.compile(r"hasattr\((model|clf|bundle)|\bfamily\b|isinstance\([^)]*keras\.Model")
    outside = [p for p in [*ROOT.glob("ser/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]
               if "models" not in p.relative_to(ROOT).parts[1:2]]  # fmt: skip
    found = [f"{p.relative_to(ROOT)}:{i}" for p in outside for i, line in enumerate(p.read_text().splitlines(), 1)
             if asks.search(line)]  # fmt: skip
    assert outside and not found, found
