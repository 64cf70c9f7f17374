"""The channels of bench/robustness.py do what their names say, so its table means what it claims."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import ROOT, spoken


@pytest.fixture(scope="module")
def robustness():
    sys.path.insert(0, str(ROOT / "bench"))
    import robustness

    return robustness


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _share_above(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(x), 1 / 16_000) > hz].sum() / spectrum.sum())


@pytest.mark.parametrize("channel", ["phone", "opus", "mp3", "noise", "room"])
def test_each_channel_keeps_the_speech_and_changes_it(robustness, channel):
    wave = spoken(3.0, voice="EM2")
    out = robustness.degrade(wave, channel, seed=0)
    assert out.dtype == np.float32 and np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert abs(len(out) - len(wave)) < 0.1 * 16_000  # a codec's padding at most
    assert 0.3 < _power(out) / _power(wave) < 3.0  # the speech is still there, at about its level
    n = min(len(out), len(wave))
    assert np.abs(out[:n] - wave[:n]).max() > 0.01  # and it went through something


def test_the_phone_is_narrowband_and_the_noise_and_room_are_as_loud_as_named(robustness):
    wave = spoken(3.0, voice="EF1")
    assert _share_above(wave, 4_200) > 0.01 and _share_above(robustness.degrade(wave, "phone", 0), 4_200) < 0.001
    noisy = robustness.degrade(wave, "noise", seed=1)
    assert 10 * np.log10(_power(wave) / _power(noisy - wave)) == pytest.approx(10.0, abs=0.5)
    wet = robustness.degrade(wave, "room", seed=1)
    assert 10 * np.log10(_power(wet - wave) / _power(wave)) == pytest.approx(0.0, abs=3.0)  # 0 dB direct-to-reverberant
