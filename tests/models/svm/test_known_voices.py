"""Known voices (ser.models.svm.known_voices): a profile of a voice the model was trained on is answered mostly by that
voice's own classifier; every other profile, and every clip without one, as before."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from ser.audio.load import load_audio
from ser.config import TrainConfig
from ser.corpora.datasets import Manifest, discover
from ser.errors import ModelError
from ser.features.corpus import prepare
from ser.models.bundle import load_bundle
from ser.models.svm.known_voices import from_file, from_legacy, stripped, to_file
from ser.models.svm.pooled import fit_svm, load_skops, save_skops
from ser.serving.predict import Predictor, classify
from ser.training.evaluation import clip_scores, compute_metrics
from ser.training.train import train
from ser.voice.profile import Normalisation, ProfileBuilder, VoiceMatch
from tests.conftest import BUNDLED_SVM, DEMO_DIR, TESS_DIR, requires_tess

SPACE = "test-4"


def _speaker(rng: np.random.Generator, centre: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n vectors of one synthetic speaker in two emotions: the speaker's offset plus the emotion's."""
    y = np.arange(n) % 2
    return centre + np.outer(2 * y - 1, [1.0, -1.0, 0.5, 0.0]) + rng.normal(0, 0.5, (n, 4)), y


def _profile(vectors: np.ndarray):
    builder = ProfileBuilder(SPACE, vectors.shape[1])
    builder.add(vectors, speech_s=float(len(vectors)))
    return builder.profile()


@pytest.fixture(scope="module")
def fitted():
    """An SVM of three synthetic speakers (offsets 0, 3 and 6), each with a classifier of their own."""
    rng = np.random.default_rng(0)
    parts = [_speaker(rng, c, 120) for c in (0.0, 3.0, 6.0)]
    vectors, y = np.concatenate([v for v, _ in parts]), np.concatenate([t for _, t in parts])
    speakers = np.repeat(["a/1", "a/2", "b/1"], 120)
    return fit_svm(vectors, y, speakers, [s.split("/")[0] for s in speakers], space=SPACE, seed=0)


def test_a_voice_is_known_by_its_other_recordings_and_a_new_voice_is_not(fitted):
    _, normalisation, voices = fitted
    rule = normalisation.voices
    assert voices.names == ("a/1", "a/2", "b/1") and rule == VoiceMatch()
    rng = np.random.default_rng(1)
    same, _ = _speaker(rng, 3.0, 80)  # speaker a/2 again, other recordings
    assert voices.match(_profile(same), rule) == 1
    statistics = voices.match_statistics(_profile(same), rule.z2_cap)
    assert statistics[1] < rule.threshold < statistics[0]
    new, _ = _speaker(rng, 4.5, 80)  # between two training voices, neither of them
    assert voices.match(_profile(new), rule) is None
    few = same[: rule.min_vectors - 1]  # too little audio to tell a voice by
    assert voices.match(_profile(few), rule) is None and voices.match(None, rule) is None
    assert voices.match(_profile(same[:, :3]), rule) is None  # another feature space's profile


def test_a_known_voice_is_answered_mostly_by_its_own_classifier(fitted):
    _, normalisation, voices = fitted
    rule = normalisation.voices
    rng = np.random.default_rng(2)
    same, y = _speaker(rng, 3.0, 60)
    vectors = normalisation.apply(same, _profile(same))
    pooled = np.full((len(vectors), 2), 0.5, dtype=np.float32)
    answer = voices.answer(1, pooled, vectors, rule)
    own = voices.classifiers[1].predict_proba(vectors)
    np.testing.assert_allclose(answer, rule.weight * own + (1 - rule.weight) * 0.5, atol=1e-6)
    assert (answer.argmax(1) == y).mean() > 0.9


def test_damaged_known_voices_are_refused(fitted):
    _, _, voices = fitted
    with pytest.raises(ModelError, match="known-voice settings are damaged"):
        VoiceMatch.from_dict({"threshold": "x", "min_vectors": 50, "weight": 0.75})
    with pytest.raises(ModelError, match="out of range"):
        VoiceMatch(weight=1.5)
    clone = dataclasses.replace(voices)
    # the older format: attributes of the pooled classifier
    broken = type("Broken", (), {"voice_names_": list(clone.names), "voice_means_": clone.means[:1],
                                 "voice_stds_": clone.stds, "voice_counts_": clone.counts,
                                 "voice_classifiers_": list(clone.classifiers)})()  # fmt: skip
    with pytest.raises(ModelError, match="differ in number"):
        from_legacy(broken)
    assert from_legacy(object()) is None  # an SVM saved before known voices


def test_a_saved_model_keeps_its_voices_whole(fitted, tmp_path):
    """The voices' support vectors that the pooled SVM has too are saved as its row numbers: the
    file is smaller, the model in memory stays whole, and the loaded voices answer bit for bit."""
    clf, _, voices = fitted
    contents = to_file(voices, clf)
    with stripped(voices):
        save_skops(contents, tmp_path / "voices.skops")
    assert all(len(_svc(c).support_vectors_) for c in voices.classifiers)  # whole again in memory
    again = from_file(load_skops(tmp_path / "voices.skops"), clf)
    x = np.random.default_rng(3).normal(size=(50, 4))
    for a, b in zip(voices.classifiers, again.classifiers, strict=True):
        np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    rows = contents["rows"]
    assert sum((r >= 0).sum() for r in rows) > 0.5 * sum(len(r) for r in rows)  # most are shared
    damaged = load_skops(tmp_path / "voices.skops")
    damaged["rows"] = [r[:-1] for r in damaged["rows"]]  # a damaged file: a row number lost
    with pytest.raises(ModelError, match="known voices are damaged"):
        from_file(damaged, clf)


def _svc(calibrated):
    return calibrated.calibrated_classifiers_[0].estimator


def test_normalisation_keeps_its_known_voice_settings_in_the_card(fitted):
    _, normalisation, _ = fitted
    again = Normalisation.from_dict(normalisation.to_dict())
    assert again.voices == normalisation.voices == VoiceMatch()
    older = normalisation.to_dict()
    older.pop("voices")
    assert Normalisation.from_dict(older).voices is None  # a bundle made before known voices never matches


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    """A pooled SVM on three demo voices' first 8 words (EM2 never heard), and the 8 words after."""
    demo = discover(DEMO_DIR)
    words = sorted({c.text for c in demo.clips})
    trained = [c for c in demo.clips if c.speaker != "EM2" and c.text in words[:8]]
    path, _ = train(
        Manifest(clips=trained, root=DEMO_DIR, unmatched=[]), split="none", config=TrainConfig(arch="egemaps-svm"),
        models_dir=tmp_path_factory.mktemp("models"), name="voices", command="pytest known voices",
    )  # fmt: skip
    return Predictor(load_bundle(path)), [c for c in demo.clips if c.text in words[8:16]]


def test_evaluate_and_predict_answer_a_known_voice_alike(demo_bundle):
    predictor, later = demo_bundle
    bundle = predictor.bundle
    assert bundle.model.voices.names == ("tess/EF1", "tess/EF2", "tess/EM1")
    for speaker, known in (("tess/EF2", "tess/EF2"), ("tess/EM2", "")):
        clips = [c for c in later if c.speaker_id == speaker]
        waves = [sf.read(c.path, dtype="float32")[0] for c in clips]
        profile = predictor.build_profile(waves, "one speaker")
        assert (bundle.model.known_voice(profile) is not None) == bool(known)
        answers = predictor.smooth([classify(c.path, predictor, profile=profile).prediction for c in clips])
        assert all(a.known_voice == known for a in answers)
        assert all(("a voice it was trained on" in a.normalised_by) == bool(known) for a in answers)
        assert all(("smoothed" in a.normalised_by) != bool(known) for a in answers)
        config = bundle.card.audio_config
        data = prepare(clips, bundle.labels, bundle.feature_config, augment=False, audio_config=config)
        scored = clip_scores(bundle.model, data, per_speaker=True)
        served = np.array([[a.probabilities[label] for label in bundle.labels] for a in answers])
        np.testing.assert_allclose(served, scored, atol=2e-3)
        if known:  # the voice's own classifier knows its other words better than the pooled one does
            plain = bundle.model.with_normalisation(dataclasses.replace(bundle.model.normalisation, voices=None))
            pooled = clip_scores(plain, data, per_speaker=True)
            f1 = [compute_metrics(data.y, p.argmax(1), bundle.labels)["macro_f1"] for p in (scored, pooled)]
            assert f1[0] >= f1[1]


@requires_tess
def test_the_bundled_model_knows_a_tess_actress_and_not_the_example_voice():
    """OAF was trained on (her other words are kept aside from ../shared); RAVDESS actor 16, whose
    clips are the app's examples, never was. Nine clips of each emotion make each profile."""
    predictor = Predictor.from_path(BUNDLED_SVM)
    oaf = sorted(TESS_DIR.glob("*/OAF_*/*.*"))
    actor_16 = sorted((TESS_DIR.parent / "ravdess" / "Actor_16").iterdir())
    for files, known in ((oaf, "tess/OAF"), (actor_16, "")):
        picked = files[:: max(1, len(files) // 63)][:63]
        profile = predictor.build_profile([load_audio(f) for f in picked], "one speaker")
        voice = predictor.model.known_voice(profile)
        assert (predictor.model.voices.names[voice] if voice is not None else "") == known
