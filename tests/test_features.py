from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ser.config import FeatureConfig
from ser.features import (
    cache_key,
    extract_corpus,
    extract_features,
    extract_windows,
    log_mel_spectrogram,
    mel_filterbank,
    mfcc,
    window_starts,
)
from tests.conftest import voiced

CONFIG = FeatureConfig()


def test_log_mel_shape_and_time_axis(speech_like):
    S = log_mel_spectrogram(speech_like, CONFIG)
    assert S.shape == (CONFIG.n_mels, 1 + len(speech_like) // CONFIG.hop_length)
    assert np.isfinite(S).all()


def test_mfcc_shape(speech_like):
    assert mfcc(speech_like, dataclasses.replace(CONFIG, kind="mfcc")).shape[0] == CONFIG.n_mfcc


def test_fixed_size_for_short_and_long_clips():
    for seconds in (0.4, 2.0, 3.0, 5.5):
        X = extract_features(voiced(seconds), CONFIG)
        assert X.shape == (CONFIG.n_bins, CONFIG.n_frames)
        assert np.isfinite(X).all()


@pytest.mark.parametrize("normalize", ["band_mean", "utterance"])
def test_normalisation_removes_loudness(speech_like, normalize):
    config = dataclasses.replace(CONFIG, normalize=normalize)
    quiet = extract_features(0.3 * speech_like, config)  # -10 dB
    loud = extract_features(speech_like, config)
    assert np.mean(np.abs(quiet - loud)) < 0.05
    unnormalised = dataclasses.replace(CONFIG, normalize="none")
    assert (
        np.mean(np.abs(extract_features(0.3 * speech_like, unnormalised) - extract_features(speech_like, unnormalised)))
        > 1
    )


def test_short_clip_is_centred_and_zero_padded():
    X = extract_features(voiced(1.0), CONFIG)
    energy = np.abs(X).sum(axis=0)
    assert energy[:50].max() == 0 and energy[-50:].max() == 0
    assert energy[CONFIG.n_frames // 2] > 0


def test_warp_moves_a_tone_up_the_mel_axis():
    tone = np.sin(2 * np.pi * 500 * np.arange(16_000) / 16_000).astype(np.float32)
    power = np.abs(np.fft.rfft(tone[:512])) ** 2
    peak = [int(np.argmax(mel_filterbank(CONFIG, warp=w) @ power)) for w in (0.8, 1.0, 1.25)]
    assert peak[0] < peak[1] < peak[2]


def test_windows_cover_a_long_clip_to_its_end():
    waveform = voiced(7.3)
    starts = window_starts(len(waveform), CONFIG)
    assert starts[0] == 0 and starts[-1] + CONFIG.n_samples == len(waveform)
    assert np.all(np.diff(starts) <= CONFIG.hop_s * CONFIG.sample_rate)
    X, starts_s = extract_windows(waveform, CONFIG)
    assert X.shape == (len(starts), CONFIG.n_bins, CONFIG.n_frames)
    assert starts_s[-1] == pytest.approx(7.3 - CONFIG.window_s, abs=1e-3)


def test_a_clip_that_fits_is_one_window(speech_like):
    X, starts_s = extract_windows(speech_like, CONFIG)
    assert X.shape[0] == 1 and starts_s.tolist() == [0.0]


@settings(max_examples=25, deadline=None)
@given(
    arrays(np.float32, st.integers(4_800, 64_000), elements=st.floats(-1, 1, width=32)),
    st.sampled_from(["logmel", "mfcc"]),
)
def test_any_finite_waveform_gives_finite_features_of_the_expected_shape(waveform, kind):
    config = dataclasses.replace(CONFIG, kind=kind)
    X = extract_features(waveform, config)
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
    X1, ok, errors = extract_corpus(paths, CONFIG, cache_dir=cache, n_jobs=1)
    assert X1.shape == (3, 1, CONFIG.n_bins, CONFIG.n_frames) and ok.all() and not errors
    assert len(list(cache.glob("*.npy"))) == 3
    X2, _, _ = extract_corpus(paths, CONFIG, cache_dir=cache, n_jobs=1)
    np.testing.assert_array_equal(X1, X2)
    other = dataclasses.replace(CONFIG, n_mels=CONFIG.n_mels + 24)
    assert cache_key(paths[0], other, (1.0,)) != cache_key(paths[0], CONFIG, (1.0,))
    before = cache_key(paths[0], CONFIG, (1.0,))
    sf.write(paths[0], voiced(1.5, seed=9), 16_000)
    assert cache_key(paths[0], CONFIG, (1.0,)) != before


def test_corpus_reports_bad_files_and_keeps_the_rest(tmp_path):
    paths = _write_clips(tmp_path, 2)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    X, ok, errors = extract_corpus([paths[0], bad, paths[1]], CONFIG, cache_dir=tmp_path / "c", n_jobs=1)
    assert ok.tolist() == [True, False, True] and len(X) == 2
    assert len(errors) == 1 and "broken.wav" in errors[0]


def test_process_pool_gives_the_same_features_as_one_process(tmp_path):
    paths = _write_clips(tmp_path, 18)
    X1, _, _ = extract_corpus(paths, CONFIG, cache_dir=tmp_path / "a", n_jobs=1)
    X2, _, _ = extract_corpus(paths, CONFIG, cache_dir=tmp_path / "b", n_jobs=2)
    np.testing.assert_array_equal(X1, X2)
