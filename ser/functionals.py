"""Paralinguistic functionals of a window: openSMILE's eGeMAPS v02 (88 values) and its level.

eGeMAPS (Eyben et al., 2016) is the standard minimal set of voice parameters for affect: pitch,
jitter, shimmer, loudness, formants, spectral balance, voiced and unvoiced segment rates, each
summarised over the window. They are computed on the window scaled to one RMS level, so that a
recording's gain or the speaker's distance from the microphone does not move any of them (the
level-dependent ones moved the most between corpora, and took zero-shot macro-F1 from 0.35 to
0.24); the level itself is kept as a last, 89th value, which a voice profile puts in the
speaker's own terms.
"""

from __future__ import annotations

import functools

import numpy as np

import ser
from ser.config import N_EGEMAPS, SAMPLE_RATE
from ser.errors import ModelError

TARGET_RMS = 0.05  # -26 dBFS: every window is scaled to this level before openSMILE reads it
MIN_RMS = 1e-6
FULL_SCALE = 32767 / 32768  # the largest sample int16 holds


@functools.lru_cache(maxsize=1)
def _smile():
    """One openSMILE extractor per process (its configuration takes a moment to build).
    Raises ModelError where TensorFlow was imported before ``ser``: openSMILE would crash."""
    if ser.TENSORFLOW_FIRST:
        raise ModelError(
            "openSMILE (eGeMAPS) cannot load in this process: TensorFlow was imported before ser, "
            "and openSMILE's library crashes when it is loaded after TensorFlow's; import ser first"
        )
    import opensmile  # its own binary; imported here so that frame-matrix features never load it

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )


def feature_names() -> list[str]:
    return [*_smile().feature_names, "log_rms"]


def egemaps(waveform: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """eGeMAPS v02 of the waveform at one level, then its natural-log RMS.
    Returns np.ndarray [shape=(89,)], float32, finite (openSMILE's NaN for an undefined value is 0)"""
    rms = max(float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))), MIN_RMS)
    # Clipped to 16 bits' range, which openSMILE reads: scaled to one level, a window of a click in near
    # silence peaks beyond full scale, and openSMILE's bare cast to int16 wraps such a sample to the other sign.
    scaled = np.clip(waveform * (TARGET_RMS / rms), -1.0, FULL_SCALE).astype(np.float32)
    values = _smile().process_signal(scaled, sr).to_numpy(dtype=np.float64)[0]
    assert len(values) == N_EGEMAPS, f"openSMILE gave {len(values)} eGeMAPS values, not {N_EGEMAPS}"
    return np.nan_to_num(np.append(values, np.log(rms))).astype(np.float32)
