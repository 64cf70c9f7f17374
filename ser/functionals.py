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
import os
import threading
from typing import Any

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


class _Extractor:
    """One openSMILE instance for one sample rate, configured once and reset between windows.

    ``Smile.process_signal`` builds a new instance for every call (its configuration is parsed
    again), frees it and wraps the values in pandas: about 5 ms of the 26-31 ms it takes for a 2 s
    window (bench/README). This feeds the same configuration the same 16-bit samples, and its values
    are the same to the last bit (tests/test_functionals.py, which also guards the private parts of
    opensmile it relies on, pinned in requirements.txt). One instance runs one window at a time."""

    def __init__(self, sr: int) -> None:
        from opensmile.core.config import config
        from opensmile.core.lib import OpenSMILE

        smile = _smile()
        self._source, self._sink = config.EXTERNAL_SOURCE_COMPONENT, config.EXTERNAL_OUTPUT_COMPONENT
        options = {
            **smile._options(),
            "source": os.path.join(smile.default_config_root, config.EXTERNAL_INPUT_CONFIG),
            "sampleRate": sr,
            "nBits": 16,
        }  # as Smile._extract sets them
        self._instance = OpenSMILE()
        self._instance.initialize(config_file=smile.config_path, options=options, loglevel=smile.loglevel)
        self._ran = False

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        """The functionals of a float waveform in [-1, 1]. Returns [shape=(N_EGEMAPS,)], float64 (NaN: undefined)"""
        samples = (waveform * 32768).astype(np.int16)  # as Smile._extract converts it
        rows: list[np.ndarray] = []

        def collect(data: np.ndarray, _meta: Any) -> None:
            rows.append(np.array(data, dtype=np.float64).reshape(-1))

        if self._ran:
            self._instance.reset()  # after a run; its callbacks must be registered again
        self._ran = True
        self._instance._callbacks.clear()  # the library keeps every callback it was ever given
        self._instance.external_sink_set_callback_ex(self._sink, collect)
        self._instance.external_audio_source_write_data(self._source, samples.tobytes())
        self._instance.external_audio_source_set_eoi(self._source)
        self._instance.run()
        return rows[0] if rows else np.full(N_EGEMAPS, np.nan)  # no row from openSMILE: undefined, not a crash


_idle: dict[tuple[int, int], list[_Extractor]] = {}  # (process, sample rate) -> instances not in use
_idle_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _idle_lock
    _idle_lock = threading.Lock()  # another thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def _functionals(waveform: np.ndarray, sr: int) -> np.ndarray:
    """openSMILE's eGeMAPS of a float waveform through an idle instance of this process, or a new one
    when every instance is busy (sessions of the app classify at once; none waits for another). Keyed
    by process: a forked worker never touches its parent's instances. An instance whose run raised
    is dropped. Returns [shape=(N_EGEMAPS,)], float64"""
    key = (os.getpid(), sr)
    with _idle_lock:
        idle = _idle.setdefault(key, [])
        extractor = idle.pop() if idle else None
    extractor = extractor or _Extractor(sr)
    values = extractor(waveform)
    with _idle_lock:
        _idle[key].append(extractor)
    return values


def feature_names() -> list[str]:
    return [*_smile().feature_names, "log_rms"]


def egemaps(waveform: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """eGeMAPS v02 of the waveform at one level, then its natural-log RMS.
    Returns np.ndarray [shape=(89,)], float32, finite (openSMILE's NaN for an undefined value is 0)"""
    rms = max(float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))), MIN_RMS)
    # Clipped to 16 bits' range, which openSMILE reads: scaled to one level, a window of a click in near
    # silence peaks beyond full scale, and openSMILE's bare cast to int16 wraps such a sample to the other sign.
    scaled = np.clip(waveform * (TARGET_RMS / rms), -1.0, FULL_SCALE).astype(np.float32)
    values = _functionals(scaled, sr)
    assert len(values) == N_EGEMAPS, f"openSMILE gave {len(values)} eGeMAPS values, not {N_EGEMAPS}"
    return np.nan_to_num(np.append(values, np.log(rms))).astype(np.float32)
