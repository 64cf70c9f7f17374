"""Properties of the signal path: features, resampling, channel mixing and validation, for any input.

Waveforms are built from a few drawn parameters (kind of signal, length, level, DC offset, seed)
rather than drawn sample by sample: that keeps every example fast while still reaching the
corners (a single spike, a level just above the silence floor, a clipped square, a strong offset).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ser.audio.load import resample, to_mono_16k, validate
from ser.config import SAMPLE_RATE, AudioConfig, FeatureConfig
from ser.errors import AudioContentError
from ser.features.windows import extract_features, window_features, window_starts

AUDIO = AudioConfig()
FRAME = FeatureConfig().hop_length  # one feature frame: 320 samples, 20 ms at 16 kHz
FLOOR = 10 ** (AUDIO.silence_dbfs / 20)  # the silence check's peak floor, 0.001
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONFIGS = [
    FeatureConfig(),
    FeatureConfig(kind="mfcc"),
    FeatureConfig(normalize="utterance"),
    FeatureConfig(normalize="none", n_mels=64),
    FeatureConfig(window_s=1.0, hop_s=0.5),
]
KINDS = ["noise", "tone", "voiced", "square", "spike", "sparse"]


def signal(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A unit-peak signal of ``n`` samples, float64."""
    t = np.arange(n) / sr
    if kind == "noise":
        x = rng.standard_normal(n)
    elif kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(50, sr / 2 - 1) * t)
    elif kind == "voiced":
        phase = 2 * np.pi * np.cumsum(rng.uniform(80, 400) * (1 + 0.05 * np.sin(2 * np.pi * 4 * t))) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 8))
    elif kind == "square":
        x = np.sign(np.sin(2 * np.pi * rng.uniform(50, 1000) * t))
    elif kind == "spike":  # one sample, zero everywhere else
        x = np.zeros(n)
        x[rng.integers(n)] = rng.choice([-1.0, 1.0])
    else:  # a few random spikes
        x = np.zeros(n)
        x[rng.integers(0, n, size=rng.integers(1, 20))] = rng.uniform(-1, 1, size=1)[0] or 1.0
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


@st.composite
def usable_waveforms(draw, min_s: float = AUDIO.min_duration_s, max_s: float = 4.0, sr: int = SAMPLE_RATE):
    """A finite mono float32 waveform that passes ``validate``: allowed length, above the silence floor."""
    n = draw(st.integers(math.ceil(min_s * sr), int(max_s * sr)))
    kind = draw(st.sampled_from(KINDS))
    # A unit-peak signal spans at least 1, so its peak and its swing about any offset are at least half
    # the amplitude: twice the silence floor (+6 dB) keeps both checks passed.
    level_db = draw(st.floats(AUDIO.silence_dbfs + 6.1, 0.0))
    seed = draw(st.integers(0, 2**32 - 1))
    amplitude = 10 ** (level_db / 20)
    dc = draw(st.floats(-0.5, 0.5)) * (1 - amplitude)  # stays within [-1, 1] with the signal
    waveform = (dc + amplitude * signal(kind, n, sr, np.random.default_rng(seed))).astype(np.float32)
    return validate(waveform, config=AUDIO)  # built to pass: a failure here is a bug in validate


# ----------------------------------------------------------------------------- features


@given(waveform=usable_waveforms(), config=st.sampled_from(CONFIGS))
@SETTINGS
def test_window_features_are_finite_and_of_the_configured_shape(waveform: np.ndarray, config: FeatureConfig) -> None:
    features = window_features(waveform, config)[0]
    assert features.shape == (config.n_bins, config.n_frames)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()


@given(waveform=usable_waveforms(max_s=8.0), config=st.sampled_from(CONFIGS))
@SETTINGS
def test_extract_features_covers_the_speech_with_finite_windows(waveform: np.ndarray, config: FeatureConfig) -> None:
    from ser.audio.speech import speech_bounds

    try:
        windows = extract_features(waveform, config)
    except AudioContentError:  # too little sound left once trimmed: the one refusal allowed
        start, end = speech_bounds(waveform)
        assert end - start < 0.3 * config.sample_rate
        return
    start, end = speech_bounds(waveform)
    starts_s, sr = windows.starts_s, config.sample_rate
    n_windows = len(window_starts(end - start, config))
    event("one window" if n_windows == 1 else "several windows")
    assert windows.features.shape == (n_windows, 1, config.n_bins, config.n_frames)
    assert np.isfinite(windows.features).all()
    assert starts_s.shape == (n_windows,) and starts_s[0] == pytest.approx(start / sr)
    assert np.all(np.diff(starts_s) > 0)
    # windows stay inside the speech and the last one ends at its end
    assert windows.ends_s[-1] == pytest.approx(end / sr, abs=1 / sr)
    assert np.all(np.diff(starts_s) <= config.hop_s + 1e-9)


# ----------------------------------------------------------------------------- resampling and mixing


@given(
    sr=st.integers(8_000, 96_000),
    duration_s=st.floats(0.001, 3.0),
    n_channels=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
@SETTINGS
def test_resample_to_16k_keeps_the_duration_within_one_frame(sr, duration_s, n_channels, seed) -> None:
    n = max(1, round(duration_s * sr))
    rng = np.random.default_rng(seed)
    waveform = rng.uniform(-1, 1, (n, n_channels) if n_channels > 1 else n).astype(np.float32)
    out = resample(waveform, sr, SAMPLE_RATE)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.shape[1:] == waveform.shape[1:]
    assert abs(len(out) - n * SAMPLE_RATE / sr) <= FRAME


@given(
    frames=st.integers(1, 8).flatmap(
        lambda channels: hnp.arrays(
            np.float32,
            st.tuples(st.integers(1, 4_000), st.just(channels)),
            elements=st.floats(-1, 1, width=32),
        )
    ),
    sr=st.sampled_from([8_000, 16_000, 22_050, 44_100, 48_000, 96_000]) | st.integers(8_000, 96_000),
)
@SETTINGS
def test_mixing_any_channels_keeps_the_duration(frames: np.ndarray, sr: int) -> None:
    out = to_mono_16k(frames, sr)
    assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
    assert abs(len(out) - len(frames) * SAMPLE_RATE / sr) <= FRAME
    if sr == SAMPLE_RATE:  # no resampling: the plain mean of the channels
        np.testing.assert_allclose(out, frames.mean(axis=1), rtol=1e-6, atol=1e-7)


@given(
    channel=hnp.arrays(np.float32, st.integers(1, 4_000), elements=st.floats(-1, 1, width=32)),
    n_channels=st.integers(1, 8),
    sr=st.sampled_from([16_000, 8_000, 44_100, 48_000]),
    dtype=st.sampled_from(["float32", "float64", "int16", "int32", "uint8"]),
)
@SETTINGS
def test_identical_channels_mix_to_that_channel(channel: np.ndarray, n_channels: int, sr: int, dtype: str) -> None:
    if dtype == "uint8":
        channel = np.round(channel * 127 + 128).astype(np.uint8)
    elif dtype.startswith("int"):
        full = np.iinfo(dtype).max
        channel = np.round(channel.astype(np.float64) * full).astype(dtype)
    else:
        channel = channel.astype(dtype)
    mixed = to_mono_16k(np.repeat(channel[:, None], n_channels, axis=1), sr)
    alone = to_mono_16k(channel, sr)
    assert mixed.shape == alone.shape
    np.testing.assert_allclose(mixed, alone, rtol=1e-6, atol=1e-6)
    if sr == SAMPLE_RATE and dtype.startswith("float"):
        np.testing.assert_allclose(mixed, channel, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- validate


any_values = st.floats(allow_nan=True, allow_infinity=True, width=32)
NEAR_FLOOR = float(np.float32(2 * FLOOR))
lengths = st.integers(0, 64) | st.integers(4_700, 12_000)  # too short, or around and past the minimum
any_arrays = st.one_of(
    hnp.arrays(np.float32, lengths, elements=any_values),
    hnp.arrays(np.float64, lengths, elements=st.floats(allow_nan=True, allow_infinity=True)),
    hnp.arrays(np.float32, lengths, elements=st.floats(-1, 1, width=32)),
    hnp.arrays(np.float32, lengths, elements=st.floats(-NEAR_FLOOR, NEAR_FLOOR, width=32)),  # around the silence floor
    hnp.arrays(np.int16, lengths),
)


@given(waveform=any_arrays)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_validate_returns_the_clip_or_raises_audio_content_error_only(waveform: np.ndarray) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32's range becomes inf
        try:
            out = validate(waveform, config=AUDIO)
        except AudioContentError as e:
            event("refused: " + re.sub(r"[-+]?\d[\d.]*", "N", str(e).split(";")[0].split("(")[0]))
            return
    event("accepted")
    assert out.dtype == np.float32 and out.shape == waveform.shape
    assert np.isfinite(out).all()
    assert AUDIO.min_duration_s <= len(out) / AUDIO.sample_rate <= AUDIO.max_duration_s


@given(waveform=usable_waveforms(max_s=2.0))
@SETTINGS
def test_validate_accepts_what_it_should_and_keeps_the_samples(waveform: np.ndarray) -> None:
    np.testing.assert_array_equal(validate(waveform, config=AUDIO), waveform)


@given(
    n=st.integers(1, 20_000),
    value=st.floats(allow_nan=False, allow_infinity=False, width=32),
)
@SETTINGS
def test_validate_refuses_constants(n: int, value: float) -> None:
    """A constant clip (silence or a DC offset only) is never accepted, whatever its length."""
    with pytest.raises(AudioContentError, match=r"long|silent|constant offset"):
        validate(np.full(n, value, np.float32), config=AUDIO)


def test_validate_refuses_a_2d_array_with_value_error() -> None:
    """Documented: a non-1-D array is a caller's bug (ValueError), not bad audio."""
    with pytest.raises(ValueError, match="mono"):
        validate(np.zeros((2, 8_000), np.float32), config=AUDIO)
