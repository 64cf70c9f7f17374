"""eGeMAPS of a window at one level: what openSMILE reads of it."""

from __future__ import annotations

import numpy as np

from ser.functionals import TARGET_RMS, _smile, egemaps


def test_a_sample_beyond_full_scale_is_clipped_not_wrapped():
    """A click in near silence, scaled to one level, goes far beyond full scale: openSMILE reads it
    at full scale, not wrapped round to the other sign by its cast to 16 bits."""
    waveform = np.random.default_rng(1).normal(0, 1e-3, 32_000).astype(np.float32)
    waveform[16_000:16_010] = 0.9
    scaled = waveform * (TARGET_RMS / np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    assert np.abs(scaled).max() > 2  # the click, at one level

    def smile(x: np.ndarray) -> np.ndarray:
        return np.nan_to_num(_smile().process_signal(x.astype(np.float32), 16_000).to_numpy()[0])

    clipped = np.clip(scaled, -1, 32767 / 32768)
    wrapped = (scaled * 32768).astype(np.int64).astype(np.int16) / 32768  # what openSMILE's cast reads
    np.testing.assert_allclose(egemaps(waveform)[:-1], smile(clipped), rtol=1e-6)
    assert not np.allclose(smile(clipped), smile(wrapped), rtol=1e-3)
