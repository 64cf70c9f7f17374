"""ser.audio.speech: speech first. The voice-activity detector hears real voices and nothing else: not
Chromium's fake-microphone beeps, not tones, hum, noise or music; and a recording without a voice
gets "no speech" in the library, the CLI and the live stream, never an emotion. Trimming's bounds are
librosa's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.audio.load import load_audio
from ser.audio.speech import TRIM_HOP, speech_mask, voice_probability
from ser.corpora.datasets import discover
from ser.errors import NoSpeechError
from ser.models.bundle import load_bundle
from ser.serving.predict import Predictor, classify
from ser.serving.stream import LISTENING, NOT_SPEECH, StreamClassifier
from tests.conftest import BUNDLED_SVM, DEMO_DIR, DEMO_VOICES, ROOT, spoken, voiced

SR = 16_000
SHARED = ROOT.parent / "shared" / "data"


def _t(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * SR)) / SR


def _pink(seconds: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(round(seconds * SR)))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    noise = np.fft.irfft(spectrum, n=round(seconds * SR))
    return noise / np.max(np.abs(noise))


def not_speech() -> dict[str, np.ndarray]:
    """Sounds with no voice in them, each 3 s at 16 kHz and a healthy level."""
    rng, t = np.random.default_rng(7), _t(3.0)
    return {
        "beeps (Chromium's fake microphone)": np.where(t % 1 < 0.1, np.sin(2 * np.pi * 1000 * t), 0.0),
        "a 440 Hz tone": np.sin(2 * np.pi * 440 * t),
        "mains hum with harmonics": sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 6)),
        "white noise": rng.standard_normal(len(t)),
        "pink noise": _pink(3.0, rng),
        "a vowel-like tone with vibrato": voiced(3.0),
        "a major chord": sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
        "a melody of harmonic notes": sum(
            np.where(t // 0.375 == i, np.sin(2 * np.pi * f * t) + 0.5 * np.sin(4 * np.pi * f * t), 0)
            for i, f in enumerate((262, 294, 330, 349, 392, 440, 494, 523))
        ),
        "a drum pattern": np.sin(2 * np.pi * 60 * t) * np.exp(-30 * (t % 0.5))
        + 0.3 * rng.standard_normal(len(t)) * np.exp(-60 * ((t + 0.25) % 0.5)),
    }


def _level(x: np.ndarray) -> np.ndarray:
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def _voiced_share(waveform: np.ndarray) -> float:
    mask = speech_mask(waveform, detect_voice=True)
    return float(mask.speech.sum() / max(mask.loud.sum(), 1))


@pytest.mark.parametrize("name", list(not_speech()))
def test_sounds_without_a_voice_are_not_speech(name):
    waveform = _level(not_speech()[name])
    assert speech_mask(waveform).loud.mean() > 0.15  # loud enough that loudness alone calls it speech
    assert _voiced_share(waveform) < 0.05, name


@pytest.mark.parametrize("voice", DEMO_VOICES)
def test_synthesised_speech_in_every_demo_voice_is_speech(voice):
    assert _voiced_share(spoken(4.0, voice=voice)) > 0.8


def test_the_example_clips_a_real_actor_are_speech():
    clips = discover(ROOT / "assets" / "examples").clips
    assert len(clips) == 7
    for clip in clips:
        assert _voiced_share(load_audio(clip.path)) > 0.5, clip.path.name


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared corpora are not at {SHARED} (../shared is absent)")
def test_real_corpora_clips_have_speech_windows():
    """Every corpus, several speakers each: nearly every clip has a window the detector calls speech."""
    rng = np.random.default_rng(0)
    for corpus in ("tess", "ravdess", "emodb"):
        clips = discover(SHARED / corpus).clips
        for i in rng.choice(len(clips), size=20, replace=False):
            waveform = load_audio(clips[i].path)
            mask = speech_mask(waveform, detect_voice=True)
            assert mask.speech.sum() * TRIM_HOP / SR >= 0.3, clips[i].path


def test_probabilities_are_per_frame_and_blocks_join_seamlessly():
    """Frame i is samples [i * 512, (i + 1) * 512): as many as the speech mask has flags. Past
    16 s the model runs in blocks; the state carried across makes that invisible."""
    speech = spoken(40.0)
    probs = voice_probability(speech)
    assert probs.shape == (len(speech) // TRIM_HOP + 1,) and probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    shifted = voice_probability(np.concatenate([np.zeros(TRIM_HOP * 10, np.float32), speech]))[10:]
    assert np.mean(np.abs(shifted - probs) < 0.05) > 0.95  # the same answer, a few frames of start-up aside
    silence_then_speech = voice_probability(np.concatenate([np.zeros(SR * 20, np.float32), spoken(3.0)]))
    assert silence_then_speech[: 20 * SR // TRIM_HOP].max() < 0.2 and np.mean(silence_then_speech[-80:] > 0.5) > 0.8


@pytest.fixture(scope="module")
def predictor():
    return Predictor(load_bundle(BUNDLED_SVM))


def test_a_tone_gets_no_speech_and_speech_gets_an_emotion(predictor, tmp_path):
    tone = tmp_path / "beeps.wav"
    sf.write(tone, _level(not_speech()["beeps (Chromium's fake microphone)"]), SR)
    with pytest.raises(NoSpeechError, match="no speech"):
        classify(tone, predictor)
    speech = tmp_path / "speech.wav"
    sf.write(speech, spoken(3.0), SR)
    assert classify(speech, predictor).prediction.label in predictor.labels


def test_speech_after_a_long_tone_marks_the_tone_as_no_speech(predictor):
    t = _t(9.0)
    tone = _level(np.sin(2 * np.pi * 440 * t))
    prediction, timeline = predictor.analyse(np.concatenate([tone, spoken(4.0)]))
    assert timeline is not None and prediction.n_windows == int(timeline.speech.sum())
    first = timeline.rows()[0]
    assert first["emotion"] == "no speech" and timeline.winners[-1] in predictor.labels


def test_the_cli_says_no_speech_for_a_tone(tmp_path):
    tone = tmp_path / "tone.wav"
    sf.write(tone, _level(not_speech()["a 440 Hz tone"]), SR)
    done = subprocess.run(
        [sys.executable, "-m", "ser", "predict", str(tone)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and "no speech" in done.stderr and "Traceback" not in done.stderr


def test_the_live_stream_listens_then_says_no_speech_for_beeps_and_reads_speech(predictor):
    stream = StreamClassifier(predictor)
    assert stream.readout() is None and stream.waiting == LISTENING
    beeps = _level(not_speech()["beeps (Chromium's fake microphone)"])
    for start in range(0, len(beeps), SR // 2):
        stream.push(beeps[start : start + SR // 2], SR)
        assert stream.readout() is None
    assert stream.waiting == NOT_SPEECH
    stream.push(spoken(3.0, voice="EM1"), SR)
    assert stream.readout() is not None


def test_the_demo_corpus_is_speech_so_the_workbench_trains_on_it():
    clips = discover(DEMO_DIR).clips
    shares = [_voiced_share(load_audio(c.path)) for c in clips[::10]]
    assert min(shares) > 0.5


@pytest.mark.parametrize("top_db", [20, 30, 60])
def test_speech_bounds_match_librosa_trim(top_db):
    import librosa

    from ser.audio.speech import speech_bounds

    rng = np.random.default_rng(top_db)
    for n_lead, n_tail in [(0, 0), (3000, 1234), (511, 4097)]:
        clip = np.concatenate([np.zeros(n_lead, np.float32), voiced(0.8, seed=n_lead), np.zeros(n_tail, np.float32)])
        clip += 1e-6 * rng.standard_normal(len(clip)).astype(np.float32)
        _, expected = librosa.effects.trim(clip, top_db=top_db)
        assert speech_bounds(clip, top_db=top_db) == tuple(int(i) for i in expected)
