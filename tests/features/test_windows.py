"""ser.features.windows: spectrograms, MFCCs and eGeMAPS functionals cut into fixed-size windows, and a
corpus's features cached and computed in worker processes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ser.config import AudioConfig, FeatureConfig
from ser.features.windows import (
    cache_key,
    extract_corpus,
    extract_features,
    log_mel_spectrogram,
    mel_filterbank,
    mfcc,
    window_features,
    window_starts,
)
from tests.conftest import spoken, voiced

CONFIG = FeatureConfig()


def test_log_mel_shape_and_time_axis(speech_like):
    S = log_mel_spectrogram(speech_like, CONFIG)
    assert S.shape == (CONFIG.n_mels, 1 + len(speech_like) // CONFIG.hop_length)
    assert np.isfinite(S).all()


def test_mfcc_shape(speech_like):
    assert mfcc(speech_like, dataclasses.replace(CONFIG, kind="mfcc")).shape[0] == CONFIG.n_mfcc


def test_fixed_size_for_short_and_long_clips():
    for seconds in (0.4, 2.0, 3.0, 5.5):
        X = window_features(voiced(seconds), CONFIG)[0]
        assert X.shape == (CONFIG.n_bins, CONFIG.n_frames)
        assert np.isfinite(X).all()


@pytest.mark.parametrize("normalize", ["band_mean", "utterance"])
def test_normalisation_removes_loudness(speech_like, normalize):
    config = dataclasses.replace(CONFIG, normalize=normalize)
    quiet = window_features(0.3 * speech_like, config)  # -10 dB
    loud = window_features(speech_like, config)
    assert np.mean(np.abs(quiet - loud)) < 0.05
    unnormalised = dataclasses.replace(CONFIG, normalize="none")
    assert (
        np.mean(np.abs(window_features(0.3 * speech_like, unnormalised) - window_features(speech_like, unnormalised)))
        > 1
    )


def test_short_clip_is_centred_and_zero_padded():
    X = window_features(voiced(1.0), CONFIG)[0]
    energy = np.abs(X).sum(axis=0)
    assert energy[:50].max() == 0 and energy[-50:].max() == 0
    assert energy[CONFIG.n_frames // 2] > 0


def test_warp_moves_a_tone_up_the_mel_axis():
    tone = np.sin(2 * np.pi * 500 * np.arange(16_000) / 16_000).astype(np.float32)
    power = np.abs(np.fft.rfft(tone[:512])) ** 2
    peak = [int(np.argmax(mel_filterbank(CONFIG, warp=w) @ power)) for w in (0.8, 1.0, 1.25)]
    assert peak[0] < peak[1] < peak[2]


def test_windows_cover_a_long_clip_to_its_end():
    waveform = spoken(7.3)
    starts = window_starts(len(waveform), CONFIG)
    assert starts[0] == 0 and starts[-1] + CONFIG.n_samples == len(waveform)
    assert np.all(np.diff(starts) <= CONFIG.hop_s * CONFIG.sample_rate)
    windows = extract_features(waveform, CONFIG)
    assert windows.features.shape == (len(starts), 1, CONFIG.n_bins, CONFIG.n_frames)
    assert windows.starts_s[-1] == pytest.approx(7.3 - CONFIG.window_s, abs=1e-3)
    assert windows.ends_s[-1] == pytest.approx(7.3, abs=1e-3) and windows.speech.all()


def test_a_clip_that_fits_is_one_window(speech_like):
    windows = extract_features(speech_like, CONFIG)
    assert windows.features.shape[0] == 1 and windows.starts_s.tolist() == [0.0]


def test_windows_start_at_the_speech_and_mark_a_pause(speech_like):
    """Leading silence is trimmed, and a window inside a long pause is marked as no speech."""
    sr, gap = CONFIG.sample_rate, np.zeros(8 * CONFIG.sample_rate, np.float32)
    clip = np.concatenate([np.zeros(sr, np.float32), speech_like, gap, speech_like])
    windows = extract_features(clip, CONFIG)
    assert windows.starts_s[0] == pytest.approx(1.0, abs=0.07)  # 128 ms trimming frames
    assert not windows.speech.all() and windows.speech[0] and windows.speech[-1]


def test_warps_stack_in_the_windows(speech_like):
    windows = extract_features(speech_like, CONFIG, warps=(0.9, 1.0, 1.1))
    assert windows.features.shape == (1, 3, CONFIG.n_bins, CONFIG.n_frames)
    np.testing.assert_allclose(windows.features[0, 1], window_features(speech_like, CONFIG)[0], atol=1e-5)


def test_functionals_hear_each_speed_copy_at_its_pitch():
    """For eGeMAPS a warp is a speed: at 1.1x the voice is 1.65 semitones higher, at 0.9x 1.82 lower,
    and 1.0 is the window itself."""
    config = FeatureConfig(kind="egemaps", window_s=3.0, hop_s=1.0)
    tone = voiced(2.0, f0=150.0)
    slow, same, fast = window_features(tone, config, (0.9, 1.0, 1.1))[:, 0, 0]  # F0 mean, in semitones
    assert same == pytest.approx(window_features(tone, config)[0, 0, 0], abs=1e-4)
    assert fast - same == pytest.approx(12 * np.log2(1.1), abs=0.25)
    assert slow - same == pytest.approx(12 * np.log2(0.9), abs=0.25)


@settings(max_examples=25, deadline=None)
@given(
    arrays(np.float32, st.integers(4_800, 64_000), elements=st.floats(-1, 1, width=32)),
    st.sampled_from(["logmel", "mfcc"]),
)
def test_any_finite_waveform_gives_finite_features_of_the_expected_shape(waveform, kind):
    config = dataclasses.replace(CONFIG, kind=kind)
    X = window_features(waveform, config)[0]
    assert X.shape == (config.n_bins, config.n_frames)
    assert np.isfinite(X).all()


def _write_clips(folder, n):
    paths = []
    for i in range(n):
        path = folder / f"clip {i}.wav"
        sf.write(path, voiced(1.0 + 0.1 * i, f0=150 + 20 * i, seed=i), 16_000)
        paths.append(path)
    return paths


def test_corpus_cache_is_reused_and_keyed_by_config_and_file(tmp_path):
    paths = _write_clips(tmp_path, 3)
    cache = tmp_path / "cache"
    W1, errors = extract_corpus(paths, CONFIG, cache_dir=cache, n_jobs=1)
    assert [w.features.shape for w in W1] == [(1, 1, CONFIG.n_bins, CONFIG.n_frames)] * 3 and not errors
    assert len(list(cache.glob("*.npz"))) == 3
    W2, _ = extract_corpus(paths, CONFIG, cache_dir=cache, n_jobs=1)
    for a, b in zip(W1, W2, strict=True):
        np.testing.assert_array_equal(a.features, b.features)
    audio = AudioConfig()
    other = dataclasses.replace(CONFIG, n_mels=CONFIG.n_mels + 24)
    assert cache_key(paths[0], other, (1.0,), audio) != cache_key(paths[0], CONFIG, (1.0,), audio)
    trimmed = AudioConfig(trim_top_db=20)
    assert cache_key(paths[0], CONFIG, (1.0,), trimmed) != cache_key(paths[0], CONFIG, (1.0,), audio)
    before = cache_key(paths[0], CONFIG, (1.0,), audio)
    sf.write(paths[0], voiced(1.5, seed=9), 16_000)
    assert cache_key(paths[0], CONFIG, (1.0,), audio) != before


def test_corpus_reports_bad_files_and_keeps_the_rest(tmp_path):
    paths = _write_clips(tmp_path, 2)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    windows, errors = extract_corpus([paths[0], bad, paths[1]], CONFIG, cache_dir=tmp_path / "c", n_jobs=1)
    assert [w is not None for w in windows] == [True, False, True]
    assert len(errors) == 1 and "broken.wav" in errors[0]


def test_process_pool_gives_the_same_features_as_one_process(tmp_path):
    paths = _write_clips(tmp_path, 18)
    W1, _ = extract_corpus(paths, CONFIG, cache_dir=tmp_path / "a", n_jobs=1)
    W2, _ = extract_corpus(paths, CONFIG, cache_dir=tmp_path / "b", n_jobs=2)
    for a, b in zip(W1, W2, strict=True):
        np.testing.assert_array_equal(a.features, b.features)
