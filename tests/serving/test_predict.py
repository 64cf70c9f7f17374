"""ser.serving.predict: a clip's emotion from a bundle, per window and for the whole clip, with
pauses marked, and the voice a profile is learnt from."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ser.audio.load import load_audio
from ser.config import NO_SPEECH
from ser.errors import AudioContentError
from ser.models.bundle import load_bundle
from ser.serving.predict import Predictor, classify
from ser.serving.stream import StreamClassifier
from tests.conftest import DEMO_DIR, ROOT, TESS_DIR, requires_tess, tiny_manifest


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return Predictor(load_bundle(tiny_bundle))


@pytest.fixture(scope="module")
def clip():
    return load_audio(tiny_manifest().clips[0].path)


def test_prediction_is_a_distribution_in_card_order(predictor, clip):
    result = predictor.predict(clip)
    assert list(result.probabilities) == predictor.labels
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.label == max(result.probabilities, key=result.probabilities.get)
    assert result.n_windows == 1 and 0.5 < result.duration_s < 3


def test_file_bytes_and_waveform_agree(predictor):
    path = tiny_manifest().clips[3].path
    from_path = classify(path, predictor).prediction.probabilities
    from_bytes = classify(path.read_bytes(), predictor).prediction.probabilities
    from_wave = predictor.predict(load_audio(path)).probabilities
    assert from_path == from_bytes == from_wave


def test_long_clip_gives_a_timeline_and_a_mean(predictor):
    clips = [load_audio(c.path) for c in tiny_manifest().clips[:6]]
    long = np.concatenate([*clips, np.zeros(8000, np.float32)])
    result, timeline = predictor.analyse(long)
    window = predictor.feature_config.window_s
    assert len(timeline.starts_s) >= int(len(long) / 16_000 - window) + 1
    assert timeline.probabilities.shape == (len(timeline.starts_s), len(predictor.labels))
    assert len(timeline.winners) == len(timeline.starts_s)
    assert result.n_windows > 1 and result == predictor.predict(long)


def test_silence_is_refused(predictor):
    with pytest.raises(AudioContentError, match="silent"):
        predictor.predict(np.zeros(32_000, np.float32))


def test_threads_share_one_predictor(predictor):
    clips = [load_audio(c.path) for c in tiny_manifest().clips[:8]]
    sequential = [predictor.predict(c).probabilities for c in clips]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda c: predictor.predict(c).probabilities, clips))
    assert parallel == sequential


def test_stream_classifier_fills_then_classifies(predictor, clip):
    stream = StreamClassifier(predictor, min_s=1.0)
    assert stream.latest() is None and stream.level_dbfs() == pytest.approx(-120, abs=1)
    stereo_48k = np.repeat(np.interp(np.arange(len(clip) * 3) / 3, np.arange(len(clip)), clip)[:, None], 2, axis=1)
    for start in range(0, len(stereo_48k), 960):  # 20 ms WebRTC-sized frames
        stream.push(stereo_48k[start : start + 960].astype(np.float32), 48_000)
    result = stream.latest()
    assert result is not None and result.label in predictor.labels
    assert stream.level_dbfs() > -60
    # A stopped stream forgets its audio: the next one does not start from the old speech.
    stream.reset()
    assert stream.latest() is None and stream.level_dbfs() == pytest.approx(-120, abs=1)
    stream.push(stereo_48k[: 48_000 // 2], 48_000)  # 0.5 s: not yet enough to classify
    assert stream.latest() is None


def test_stream_readouts_make_a_rolling_timeline_with_pauses(predictor, clip):
    stream = StreamClassifier(predictor, history_s=5.0)
    assert stream.readout() is None and stream.recent() is None  # no audio yet: nothing remembered
    stream.push(np.concatenate([clip, clip]), 16_000)
    start = time.monotonic()
    assert stream.readout(now=start) is not None
    stream.push(np.zeros(3 * 16_000, np.float32), 16_000)  # the speaker stops: 3 s of silence fill the window
    assert stream.readout(now=start + 0.5) is None
    recent = stream.recent()
    assert list(recent.speech) == [True, False] and recent.winners[1] == NO_SPEECH
    assert recent.probabilities[0].sum() == pytest.approx(1.0, abs=1e-5) and not recent.probabilities[1].any()
    assert recent.starts_s[1] - recent.starts_s[0] == pytest.approx(0.5)
    assert recent.starts_s[1] + recent.window_s == pytest.approx(start + 0.5 - stream._started)  # ends at the readout
    for step in range(1, 21):  # ten more seconds: only the last five are kept
        stream.readout(now=start + 0.5 + step / 2)
    recent = stream.recent()
    ends = recent.starts_s + recent.window_s
    assert ends[-1] - ends[0] <= 5.0 and len(ends) == 11
    stream.reset()
    assert stream.recent() is None


def test_bundled_model_serves_demo_clips():
    predictor = Predictor.from_path()
    result = classify(next(DEMO_DIR.rglob("*.ogg")), predictor)
    assert result.prediction.label in predictor.labels and not result.truncated and result.note == ""


@requires_tess
def test_bundled_model_knows_its_training_data():
    from ser.corpora.datasets import discover
    from ser.training.evaluation import evaluate_bundle

    manifest = discover(TESS_DIR)
    manifest.clips = manifest.clips[::10]
    report = evaluate_bundle(Predictor.from_path(ROOT / "models" / "cnn-tess-v1").bundle, manifest)
    assert report["accuracy"] >= 0.95


def test_analyse_gives_predict_and_a_timeline_aligned_with_the_waveform(predictor, clip):
    gap = np.zeros(16_000, np.float32)  # 1 s of silence before the speech
    long = np.concatenate([gap, *[clip] * 4, gap])
    prediction, timeline = predictor.analyse(long)
    assert prediction == predictor.predict(long)  # the same windows, one pass
    assert timeline is not None and len(timeline.starts_s) == prediction.n_windows > 1
    assert timeline.speech.all()  # one word after another: no pause
    assert timeline.starts_s[0] == pytest.approx(1.0, abs=0.05)  # counts from the waveform's start
    np.testing.assert_allclose(timeline.probabilities.mean(axis=0), list(prediction.probabilities.values()), rtol=1e-6)
    short_prediction, short_timeline = predictor.analyse(clip)
    assert short_timeline is None and short_prediction == predictor.predict(clip)


def test_a_pause_inside_a_recording_is_marked_and_not_averaged(predictor, clip):
    """10 s of silence between two stretches of speech: the windows inside it are pauses (drawn as
    such: tests/viz/test_plots.py), and the clip's emotion is the mean of the speech windows alone."""
    speech = np.concatenate([clip] * 3)
    long = np.concatenate([speech, np.zeros(160_000, np.float32), speech])
    prediction, timeline = predictor.analyse(long)
    window = predictor.feature_config.window_s
    inside = (timeline.starts_s >= len(speech) / 16_000) & (
        timeline.starts_s + window <= len(long) / 16_000 - len(speech) / 16_000
    )
    assert inside.sum() >= 5 and not timeline.speech[inside].any()
    assert timeline.speech[0] and timeline.speech[-1]
    assert [w for w, s in zip(timeline.winners, timeline.speech, strict=True) if not s] == [NO_SPEECH] * (
        ~timeline.speech
    ).sum()
    assert prediction.n_windows == timeline.speech.sum() < len(timeline.starts_s)
    np.testing.assert_allclose(
        timeline.probabilities[timeline.speech].mean(axis=0), list(prediction.probabilities.values()), rtol=1e-6
    )


def test_a_voice_is_learnt_from_the_recordings_that_can_be_used():
    """Clips marked as one speaker, one of them not audio: the profile is the others', and says so;
    none usable is an error that says why."""
    from ser.errors import SERError
    from ser.serving.predict import one_speaker_profile
    from tests.conftest import BUNDLED_SVM

    predictor = Predictor.from_path(BUNDLED_SVM)
    clips = [p.read_bytes() for p in sorted(DEMO_DIR.glob("EF1_*/*.ogg"))[:3]]
    profile, problems = one_speaker_profile([*clips, b"not audio at all"], predictor, noun="clips")
    assert profile.source == "3 of 4 clips marked as one speaker" and profile.speech_s > 2
    assert list(problems) == [3] and "could not be decoded" in problems[3]
    alone, none = one_speaker_profile(clips, predictor, noun="recordings", what="of my voice")
    assert alone.source == "3 recordings of my voice" and none == {}
    np.testing.assert_allclose(alone.mean, profile.mean)  # the bad clip took no part
    with pytest.raises(SERError, match=r"none of the 2 clips holds speech.*could not be decoded"):
        one_speaker_profile([b"x", b"y"], predictor, noun="clips")


def test_the_pages_learn_a_voice_from_the_clips_that_can_be_used():
    """What the Classify page's "these clips are one speaker" and "my voice" call: the profile's JSON
    and, by index, why a clip was left out (the page names it)."""
    from ser.app.cache import cached_profile
    from ser.voice.profile import VoiceProfile
    from tests.conftest import BUNDLED_SVM

    clips = tuple(p.read_bytes() for p in sorted(DEMO_DIR.glob("EM1_*/*.ogg"))[:2])
    profile_json, problems = cached_profile((b"", *clips), str(BUNDLED_SVM), "recordings", "of my voice")
    assert VoiceProfile.from_json(profile_json).source == "2 of 3 recordings of my voice"
    assert list(problems) == [0] and problems[0]
