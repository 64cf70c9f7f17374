"""The speaker-normalised SVM (ser.models.svm): balanced, normalised per speaker, trained on a pool,
served with a profile."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import lfilter

from ser.config import RunHooks, TrainConfig
from ser.corpora.datasets import discover, pool
from ser.features.functionals import egemaps
from ser.models.bundle import load_bundle
from ser.models.svm.pooled import COPY_NEUTRAL_SHARE, balance_weights, fit_svm, neutral_weights
from ser.serving.predict import Predictor, classify
from ser.training.evaluation import evaluate_bundle
from ser.training.train import train
from ser.voice.profile import ProfileBuilder, VoiceProfile
from tests.conftest import BUNDLED_SVM, ROOT, spoken, tiny_manifest, voiced

EMODB_LETTERS = "WEAFTN"  # anger, disgust, fear, happiness, sadness, neutral: no surprise, as in EmoDB


def test_balance_gives_each_corpus_speaker_and_emotion_equal_weight():
    corpora = np.array(["big"] * 100 + ["small"] * 10)
    speakers = np.array(["a"] * 80 + ["b"] * 20 + ["c"] * 10)
    y = np.array([0] * 60 + [1] * 20 + [0] * 10 + [1] * 10 + [0] * 5 + [1] * 5)
    w = balance_weights(corpora, speakers, y)
    assert w.mean() == pytest.approx(1.0)
    assert w[corpora == "big"].sum() == pytest.approx(w[corpora == "small"].sum())
    assert w[speakers == "a"].sum() == pytest.approx(w[speakers == "b"].sum())
    assert w[(speakers == "a") & (y == 0)].sum() == pytest.approx(w[(speakers == "a") & (y == 1)].sum())


def test_the_fallback_weighs_each_corpus_the_same():
    """A corpus of many windows does not pull the zero-shot fall-back to itself: its mean sits
    half-way between two corpora of 100 and 10 windows, as the training weights put them."""
    rng = np.random.default_rng(0)
    corpora = np.array(["big"] * 100 + ["small"] * 10)
    speakers = np.array(["a"] * 100 + ["b"] * 10)
    y = np.tile([0, 1], 55)
    vectors = rng.normal(size=(110, 3)) + (corpora == "small")[:, None] * 10.0
    _, normalisation, _ = fit_svm(vectors, y, speakers, corpora, space="s", seed=0)
    big, small = vectors[:100].mean(axis=0), vectors[100:].mean(axis=0)
    np.testing.assert_allclose(normalisation.fallback.mean, (big + small) / 2, atol=1e-6)
    assert normalisation.fallback.n_vectors == 110


def test_speaker_normalisation_takes_out_a_gain_and_an_eq_change():
    """One speaker's clips through another microphone (-10 dB, a first-order low-pass) give, each
    normalised by its own recordings' profile, the same normalised features."""
    clips = [voiced(1.5, f0=f0, seed=i) for i, f0 in enumerate(np.linspace(120, 260, 12))]
    quieter = [0.3 * clip for clip in clips]
    muffled = [lfilter([0.5, 0.5], [1.0], clip).astype(np.float32) for clip in quieter]
    raw, soft, other = (np.stack([egemaps(c) for c in group]) for group in (clips, quieter, muffled))

    def own_terms(vectors: np.ndarray) -> np.ndarray:
        builder = ProfileBuilder("s", vectors.shape[1])
        builder.add(vectors, speech_s=18.0)
        return builder.profile().normalise(vectors)

    # A gain alone moves only the level, and the speaker's own level takes it out entirely.
    assert np.abs(raw[:, -1] - soft[:, -1]).min() > 1.0
    np.testing.assert_allclose(own_terms(raw), own_terms(soft), atol=0.02)
    # An EQ moves the spectral features; normalised per speaker, most of that shift is gone.
    moved = np.abs(raw - other).mean(axis=0) / (raw.std(axis=0) + 1e-6)
    after = np.abs(own_terms(raw) - own_terms(other)).mean(axis=0)
    assert np.median(after) < 0.5 * np.median(moved) and np.median(after) < 0.35


def test_each_speed_copy_is_normalised_by_its_own_profile():
    """A copy of a speaker's windows under another scale and offset (as a voice at another speed
    shifts its pitch and formants) says nothing new once in its own terms: the SVM fitted with it
    answers as the one fitted with an exact copy."""
    rng = np.random.default_rng(0)
    speakers = np.repeat(["a", "b", "c"], 40)
    y = np.tile(np.repeat([0, 1], 20), 3)
    vectors = rng.normal(size=(120, 6)) + y[:, None] * 0.8 + (speakers == "b")[:, None] * 3.0
    moved = vectors * 1.7 + 2.0 + (speakers == "c")[:, None] * 5.0
    probe = rng.normal(size=(30, 6))

    def answers(copy: np.ndarray) -> np.ndarray:
        clf, _, _ = fit_svm(vectors, y, speakers, ["x"] * 120, space="s", seed=0, copies=[copy])
        return clf.calibrated_classifiers_[0].estimator.decision_function(probe)

    np.testing.assert_allclose(answers(moved), answers(vectors), atol=1e-4)
    # A copy that is not just rescaled changes the model.
    assert np.abs(answers(vectors + rng.normal(size=vectors.shape)) - answers(vectors)).max() > 0.01


def test_neutral_weighs_its_share_of_each_speakers_copy_statistics():
    speakers = np.array(["a"] * 40 + ["b"] * 12 + ["c"] * 5)
    y = np.array([0] * 10 + [1] * 20 + [2] * 10 + [0] * 6 + [3] * 6 + [1] * 5)
    w = neutral_weights(y, speakers, 0, 0.3)
    for speaker in ("a", "b"):
        mine = speakers == speaker
        assert w[mine & (y == 0)].sum() / w[mine].sum() == pytest.approx(0.3)
        others = mine & (y != 0)
        assert len(set(np.round(w[others], 9))) == 1  # the other emotions keep their proportions
    np.testing.assert_array_equal(w[speakers == "c"], 1.0)  # no neutral window: plain statistics
    np.testing.assert_array_equal(neutral_weights(y, speakers, None, 0.3), 1.0)


def test_the_speed_copies_meet_profiles_of_more_neutral_speech():
    """Each speed copy of a speaker is normalised by statistics in which its neutral windows weigh
    COPY_NEUTRAL_SHARE (more than the 1/5 they are here), as a profile of mostly neutral speech would
    be; the speaker's own windows, and so the fall-back, keep their plain statistics."""
    rng = np.random.default_rng(1)
    speakers = np.repeat(["a", "b", "c"], 60)
    y = np.tile(np.repeat([0, 1, 2, 3, 4], 12), 3)
    vectors = rng.normal(size=(180, 5)) + y[:, None] * 1.5 + (speakers == "b")[:, None] * 3.0
    copy = vectors * 1.1 + 0.5
    probe = rng.normal(size=(30, 5)) * 2
    fits = {neutral: fit_svm(vectors, y, speakers, ["x"] * 180, space="s", seed=0, copies=[copy], neutral=neutral)
            for neutral in (None, 0, 7)}  # fmt: skip
    decisions = {k: fit[0].calibrated_classifiers_[0].estimator.decision_function(probe) for k, fit in fits.items()}
    assert COPY_NEUTRAL_SHARE > 1 / 5
    assert np.abs(decisions[0] - decisions[None]).max() > 0.01
    np.testing.assert_allclose(decisions[7], decisions[None])  # a label no window has: plain statistics
    for _, normalisation, _ in fits.values():
        np.testing.assert_allclose(normalisation.fallback.mean, fits[None][1].fallback.mean)


def test_one_wild_coefficient_of_variation_does_not_take_over_the_answer():
    """eGeMAPS' spread relative to a mean near 0 can reach 10^6 on real audio (a RAVDESS clip's MFCC 2
    at 0.9x speed); capped at 10 standard deviations, it moves the bundled SVM's answer a little,
    where uncapped it turned a clip's happy into disgust at 0.85."""
    from ser.features.functionals import feature_names

    bundle = load_bundle(BUNDLED_SVM)
    vector = egemaps(spoken(2.0))
    wild = vector.copy()
    wild[feature_names().index("mfcc2_sma3_stddevNorm")] = 1e6
    before, after = (bundle.model.answer(v[None, :, None]).probs for v in (vector, wild))
    assert np.abs(before - after).sum() < 0.1 and before.argmax() == after.argmax()


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    """The demo corpus's EF1 and EM1 plus a corpus in EmoDB's layout (of its EF2 and EM2) whose speaker
    names clash with nothing but each other's corpus ("03", "08"), lacking surprise."""
    folder = tmp_path_factory.mktemp("emodb")
    for s, speaker in enumerate(("03", "08")):
        for t, text in enumerate(("a01", "a02", "a04", "a05")):
            for e, letter in enumerate(EMODB_LETTERS):
                wave = spoken(1.2 + 0.1 * t, voice=("EF2", "EM2")[s], seed=10 * t + e)
                sf.write(folder / f"{speaker}{text}{letter}a.wav", wave * (0.2 + 0.1 * e), 16_000)
    return pool([tiny_manifest(n_words=4), discover(folder)])


RUN: dict[str, list] = {"fits": [], "steps": []}  # what svm_bundle's run reported as it went


@pytest.fixture(scope="module")
def svm_bundle(pooled, tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    cache = tmp_path_factory.mktemp("cache")
    hooks = RunHooks(
        cache_dir=cache, on_fit=lambda *fit: RUN["fits"].append(fit),
        on_step=lambda step, n_steps, loss: RUN["steps"].append((len(RUN["fits"]), step, n_steps, loss)),
    )  # fmt: skip
    path, card = train(
        pooled, split="corpus", config=TrainConfig(arch="egemaps-svm"), models_dir=models, name="pool",
        command="pytest pooled svm", hooks=hooks,
    )  # fmt: skip
    return path, card


def test_a_pooled_svm_run_reports_each_fit_and_its_networks_steps(svm_bundle):
    """An SVM has no epochs: its run says which fit is under way and how far its contour networks are."""
    from ser.models.svm.contours import EPOCHS, N_NETS

    _path, card = svm_bundle
    folds = [f["split"] for f in card.evaluation["corpus"]["folds"]]
    assert RUN["fits"] == [(fold, i, len(folds)) for i, fold in enumerate(folds, start=1)]
    for fit in range(1, len(folds) + 1):
        steps = [(step, n_steps) for f, step, n_steps, _loss in RUN["steps"] if f == fit]
        n_steps = steps[0][1]
        assert [step for step, _ in steps] == list(range(1, n_steps + 1))  # every batch, counted over the networks
        assert n_steps % (N_NETS * EPOCHS) == 0 and n_steps // (N_NETS * EPOCHS) >= 1
    assert all(np.isfinite(loss) and loss > 0 for *_, loss in RUN["steps"])


def test_a_pooled_svm_records_both_modes_per_corpus(pooled, svm_bundle):
    path, card = svm_bundle
    assert sorted(pooled.corpora) == ["emodb", "tess"] and len(pooled.speakers) == 4
    corpus = card.evaluation["corpus"]
    assert len(corpus["folds"]) == 2 and corpus["normalisation"].startswith("zero-shot")
    assert "contour networks" in corpus["normalisation"] and "normalisation" not in corpus["folds"][0]
    assert "transductive" in corpus["per_speaker"]["normalisation"] and len(corpus["per_speaker"]["folds"]) == 2
    assert all(0 <= f["uar"] <= 1 for f in corpus["folds"])
    assert card.normalisation["space"] == "egemaps-89-w3s" and card.data["balance"].startswith("corpus")
    assert (path / "model.skops").is_file() and not (path / "model.keras").exists()
    # Every training speaker is heard at 0.9x and 1.1x speed too: the SVM saw three voices of each window.
    svc = load_bundle(path).model.pooled.calibrated_classifiers_[0].estimator
    assert card.train_config["augment"] and "speed" in card.data["balance"]
    assert svc.n_support_.sum() > card.data["n_train"]


def test_the_svm_bundle_serves_zero_shot_with_a_profile_and_per_speaker(pooled, svm_bundle):
    path, _ = svm_bundle
    predictor = Predictor(load_bundle(path))
    clips = [c for c in pooled.clips if c.speaker_id == "emodb/08"]
    alone = classify(clips[0].path, predictor).prediction
    assert alone.normalised_by.startswith("zero-shot") and sum(alone.probabilities.values()) == pytest.approx(1)
    profile = predictor.build_profile([sf.read(c.path, dtype="float32")[0] for c in clips], "emodb 08")
    known = classify(clips[0].path, predictor, profile=profile).prediction
    assert "voice profile" in known.normalised_by and known.probabilities != alone.probabilities
    report = evaluate_bundle(predictor.bundle, pooled, per_speaker=True)
    assert report["transductive"] and "per speaker" in report["normalisation"]


def ser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ser", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_same_speaker_and_per_speaker_through_the_cli(pooled, svm_bundle, tmp_path):
    path, _ = svm_bundle
    files = [str(c.path) for c in pooled.clips if c.speaker_id == "emodb/03"][:8]
    profile_file = tmp_path / "voice.json"
    done = ser("predict", *files, "--model", str(path), "--same-speaker", "--save-profile", str(profile_file), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 8 and all("8 files marked as one speaker" in r["normalisation"] for r in rows)
    assert all("smoothed over the 8 clips of this speaker" in r["normalisation"] for r in rows)
    # The same files with the saved profile: the same answers, smoothed the same way.
    again = ser("predict", *files, "--model", str(path), "--profile", str(profile_file), "--json")
    again_rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert [r["probabilities"] for r in again_rows] == [pytest.approx(r["probabilities"], abs=1e-6) for r in rows]
    # One file alone with the profile is that file's own answer, which the smoothing started from.
    predictor = Predictor(load_bundle(path))
    profile = VoiceProfile.from_json(profile_file.read_text(), space=predictor.profile_space)
    own = [classify(f, predictor, profile=profile).prediction for f in files]
    single = json.loads(ser("predict", files[0], "--model", str(path), "--profile", str(profile_file), "--json").stdout)
    assert single["probabilities"] == pytest.approx(own[0].probabilities, abs=1e-6)
    assert "smoothed" not in single["normalisation"]
    smoothed = predictor.smooth(own)
    assert [p.probabilities for p in smoothed] == [pytest.approx(r["probabilities"], abs=1e-6) for r in rows]
    plain = ser("predict", files[0], "--model", str(path))
    assert "zero-shot" in plain.stdout
    profile_file.write_text(profile_file.read_text().replace('"mean": [', '"mean": ["x", '))
    bad = ser("predict", files[0], "--model", str(path), "--profile", str(profile_file))
    assert bad.returncode == 1 and "finite numbers" in bad.stderr and "Traceback" not in bad.stderr
    folder = str(pooled.clips[-1].path.parent)
    report = ser("evaluate", folder, "--model", str(path), "--per-speaker", "--json")
    assert report.returncode == 0, report.stderr[-2000:]
    data = json.loads(report.stdout)
    assert (
        data["transductive"] is True and "per speaker" in data["normalisation"] and "smoothed" in data["normalisation"]
    )


def test_evaluate_per_speaker_scores_what_predict_answers_a_speakers_clips(pooled, svm_bundle):
    """Per speaker, evaluate smooths each speaker's answers over their clips exactly as predict does
    for the same clips given as one speaker (their profile, then Predictor.smooth)."""
    from ser.features.corpus import prepare
    from ser.training.evaluation import clip_scores

    path, _ = svm_bundle
    predictor = Predictor(load_bundle(path))
    bundle = predictor.bundle
    clips = [c for c in pooled.clips if c.speaker_id == "emodb/08"]
    data = prepare(clips, bundle.labels, bundle.feature_config, augment=False, audio_config=bundle.card.audio_config)
    scored = clip_scores(bundle.model, data, per_speaker=True)
    plain = bundle.model.with_normalisation(dataclasses.replace(bundle.model.normalisation, smoothing=None))
    unsmoothed = clip_scores(plain, data, per_speaker=True)
    assert np.abs(scored - unsmoothed).max() > 0.01  # the smoothing did something
    profile = predictor.build_profile([sf.read(c.path, dtype="float32")[0] for c in data.clips], "emodb 08")
    answers = predictor.smooth([classify(c.path, predictor, profile=profile).prediction for c in data.clips])
    served = np.array([[p.probabilities[label] for label in bundle.labels] for p in answers])
    np.testing.assert_allclose(served, scored, atol=2e-3)


def test_a_recording_counts_each_second_of_its_speech_once():
    """A recording's windows overlap (3 s every 1 s), but its seconds of speech are its own length:
    10 s of speech stay zero-shot, and only 20 s (the card's self_profile_s) or more are normalised by themselves."""
    predictor = Predictor.from_path(BUNDLED_SVM)
    self_profile_s = predictor.model.settings.self_profile_s
    short, long = spoken(10.0, voice="EM1"), spoken(24.0, voice="EM1")
    assert predictor.build_profile([short]).speech_s == pytest.approx(10.0, abs=0.5)
    assert predictor.build_profile([short, short]).speech_s == pytest.approx(20.0, abs=1.0)  # two recordings
    assert predictor.predict(short).normalised_by.startswith("zero-shot") and self_profile_s > 10.5
    own = predictor.predict(long).normalised_by
    assert own.startswith("normalised by its own") and int(own.split()[4]) in (23, 24), own
    # Past 64 windows a recording's features come in chunks, whose windows overlap at the seams.
    eighty_s = spoken(80.0, voice="EM1")
    assert predictor.build_profile([eighty_s]).speech_s == pytest.approx(80.0, abs=1.0)


def test_evaluate_normalises_a_long_clip_by_itself_as_predict_does(tmp_path):
    """Zero-shot, a clip with 20 s of speech or more is answered with its own profile by predict,
    and evaluate scores that same answer (a short clip stays zero-shot in both)."""
    from ser.features.corpus import prepare
    from ser.training.evaluation import clip_scores

    for name, seconds in (("03a01Wa.wav", 24.0), ("03a02Ta.wav", 2.5)):
        sf.write(tmp_path / name, spoken(seconds, voice="EF2", seed=3), 16_000)
    predictor = Predictor.from_path(BUNDLED_SVM)
    bundle = predictor.bundle
    clips = discover(tmp_path).clips
    data = prepare(clips, bundle.labels, bundle.feature_config, augment=False, audio_config=bundle.card.audio_config)
    assert data.speech_s[0] == pytest.approx(24.0, abs=0.5) and data.speech_s[1] < 3
    scored = clip_scores(bundle.model, data)
    answers = [classify(c.path, predictor).prediction for c in clips]
    assert answers[0].normalised_by.startswith("normalised by its own") and answers[1].normalised_by.startswith("zero")
    served = np.array([[p.probabilities[label] for label in bundle.labels] for p in answers])
    np.testing.assert_allclose(served, scored, atol=2e-3)
    # Scored with the fall-back instead, the long clip's answer would be another one.
    fallback = clip_scores(bundle.model, dataclasses.replace(data, speech_s=np.zeros(2)))
    assert np.abs(fallback[0] - scored[0]).max() > 0.01 and np.allclose(fallback[1], scored[1])


def test_loading_the_bundled_svm_imports_only_what_it_is_made_of(tmp_path):
    """skops' scan of every scikit-learn estimator (and pytest with it) is kept out of loading the
    model, and a model of a type load_skops does not name is still refused."""
    from sklearn.linear_model import LogisticRegression

    from ser.errors import ModelError
    from ser.models.svm import SVMModel
    from ser.models.svm.pooled import _skops_io
    from ser.store.card import read_card

    code = (
        "import sys; from ser.models.bundle import load_bundle; load_bundle(sys.argv[1]); "
        "print(sorted(m for m in ('pytest', 'sklearn.utils._testing') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(BUNDLED_SVM)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]
    foreign = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    _skops_io().dump(foreign, tmp_path / "model.skops")
    with pytest.raises(ModelError, match=r"cannot be loaded .*LogisticRegression"):
        SVMModel.load(tmp_path, read_card(BUNDLED_SVM))


def test_the_classify_page_smooths_the_clips_of_one_voice(pooled, svm_bundle):
    """What the Classify page shows of clips marked as one speaker: each answer smoothed as the CLI
    smooths such a batch, the charts untouched; a batch too small to smooth is left as it is."""
    from ser.app.results import classify_source, smooth_together

    path, _ = svm_bundle
    predictor = Predictor(load_bundle(path))
    clips = [c for c in pooled.clips if c.speaker_id == "emodb/03"][:6]
    profile = predictor.build_profile([sf.read(c.path, dtype="float32")[0] for c in clips], "6 clips")
    results = [classify_source(c.path.name, c.path, predictor, profile) for c in clips]
    shown = smooth_together(results, predictor)
    expected = predictor.smooth([r.prediction for r in results])
    assert [r.prediction for r in shown] == expected
    assert all("smoothed over the 6 clips" in r.prediction.normalised_by for r in shown)
    assert all(a.waveform_chart is b.waveform_chart for a, b in zip(shown, results, strict=True))
    assert [r.prediction for r in smooth_together(results[:2], predictor)] == [r.prediction for r in results[:2]]


def test_the_classify_page_answers_clips_of_my_voice_together():
    """With a "my voice" profile, the page's clips are that voice's: each answer smoothed over the
    others, and the session's table keeps one row a clip, its latest answer, as clips join."""
    from streamlit.testing.v1 import AppTest

    from ser.app.cache import example_clips
    from ser.audio.load import load_audio
    from ser.config import EMOTIONS

    predictor = Predictor.from_path()  # the bundled model (this session's copy of models/)
    examples = example_clips()
    profile = predictor.build_profile([load_audio(p) for p in examples.values()], "the example voice")
    app = AppTest.from_file(str(ROOT / "pages" / "classify.py"), default_timeout=120)
    app.session_state["voice_profile"] = profile.to_json()
    app.run()
    for n, emotion in enumerate(EMOTIONS[:4], start=1):
        app.selectbox(key="example_emotion").set_value(emotion)
        next(b for b in app.button if b.label == "Try an example").click().run()
        assert not app.exception and not app.error
        assert len(app.dataframe[0].value) == n  # one row a clip
    captions = [c.value for c in app.caption if c.value.startswith("Speaker normalisation")]
    assert captions and all("smoothed over the 4 clips of this speaker" in c for c in captions)


def test_the_contour_networks_answer_beside_the_svm_zero_shot_only(pooled, svm_bundle):
    """Without a profile, an answer is the SVM's and the contour networks' (the card's fusion share), and
    evaluate's zero-shot scores are those answers; with one, the SVM answers alone. Served without
    TensorFlow."""
    from ser.features.corpus import prepare
    from ser.features.windows import extract_features
    from ser.models.svm.contours import N_NETS
    from ser.training.evaluation import clip_scores

    path, _ = svm_bundle
    predictor = Predictor(load_bundle(path))
    bundle = predictor.bundle
    model = bundle.model
    nets, share = model.nets, model.settings.fusion
    assert nets is not None and len(nets.weights) == N_NETS and share == 0.5
    clips = [c for c in pooled.clips if c.speaker_id == "emodb/03"]
    waveform = sf.read(clips[0].path, dtype="float32")[0]
    windows = extract_features(waveform, bundle.feature_config, bundle.card.audio_config)
    features = windows.features[:, 0].reshape(len(windows.speech), -1)
    svm_alone = model.pooled.predict_proba(model.normalisation.apply(features, None))
    expected = ((1 - share) * svm_alone + share * nets.proba(windows.contours[:, 0]))[windows.speech].mean(axis=0)
    answer = predictor.predict(waveform)
    assert answer.normalised_by.startswith("zero-shot")
    np.testing.assert_allclose([answer.probabilities[label] for label in bundle.labels], expected, atol=1e-5)
    assert np.abs(expected - svm_alone[windows.speech].mean(axis=0)).max() > 1e-3  # the networks moved it
    data = prepare(clips, bundle.labels, bundle.feature_config, augment=False, audio_config=bundle.card.audio_config)
    scored = clip_scores(bundle.model, data)
    np.testing.assert_allclose(scored[0], expected, atol=1e-3)  # the feature cache keeps contours in float16
    profile = predictor.build_profile([sf.read(c.path, dtype="float32")[0] for c in clips], "emodb 03")
    with_profile = predictor.predict(waveform, profile=profile)
    vectors = model.normalisation.apply(features, profile)
    voice = model.known_voice(profile)
    probs = model.pooled.predict_proba(vectors)
    if voice is not None:
        probs = model.voices.answer(voice, probs, vectors, model.normalisation.voices)
    np.testing.assert_allclose(
        [with_profile.probabilities[label] for label in bundle.labels], probs[windows.speech].mean(axis=0), atol=1e-5
    )
    code = (
        "import sys, soundfile; from ser.serving.predict import Predictor; "
        "p = Predictor.from_path(sys.argv[1]); p.predict(soundfile.read(sys.argv[2], dtype='float32')[0]); "
        "print('tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(clips[0].path)], cwd=ROOT, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
