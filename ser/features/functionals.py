"""Paralinguistic functionals of a window: openSMILE's eGeMAPS v02 (88 values) and its level.

eGeMAPS (Eyben et al., 2016) is the standard minimal set of voice parameters for affect: pitch,
jitter, shimmer, loudness, formants, spectral balance, voiced and unvoiced segment rates, each
summarised over the window. They are computed on the window scaled to one RMS level, so that a
recording's gain or the speaker's distance from the microphone does not move any of them (the
level-dependent ones moved the most between corpora: docs/model.md, "How its settings were chosen");
the level itself is kept as a last, 89th value, which a voice profile puts in the speaker's own terms.

The same openSMILE run can also hand over the 25 low-level descriptors the functionals summarise,
every 10 ms (``egemaps_contours``): the contour networks' input (``ser.models.svm.contours``). They come from
openSMILE's configuration with two sinks, read in blocks of ``CONTOUR_BLOCK`` frames, so that a
window's contours arrive in one call, not one call from openSMILE into Python a frame; the
functionals are the same to the last bit either way.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import numpy as np

import ser
from ser.config import N_CONTOUR, N_EGEMAPS, SAMPLE_RATE
from ser.errors import ModelError

TARGET_RMS = 0.05  # -26 dBFS: every window is scaled to this level before openSMILE reads it
MIN_RMS = 1e-6
FULL_SCALE = 32767 / 32768  # the largest sample int16 holds
CONTOUR_BLOCK = 1000  # frames openSMILE passes at once to the descriptors' sink (10 s: a window's all)
MULTI_SINK = "shared/standard_external_data_output_multi.conf.inc"  # openSMILE's config with both sinks


@functools.lru_cache(maxsize=1)
def _smile():
    """One openSMILE extractor per process (its configuration takes a moment to build).
    Raises ModelError where TensorFlow was imported before ``ser``: openSMILE would crash."""
    if ser.process.TENSORFLOW_FIRST:
        raise ModelError(
            "openSMILE (eGeMAPS) cannot load in this process: TensorFlow was imported before ser, "
            "and openSMILE's library crashes when it is loaded after TensorFlow's; import ser first"
        )
    import opensmile  # its own binary; imported here so that frame-matrix features never load it

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )


class _Extractor:
    """One openSMILE instance for one sample rate, configured once and reset between windows; with
    ``contours``, through both sinks (descriptors and functionals), else the functionals' alone.

    ``Smile.process_signal`` builds a new instance for every call (its configuration is parsed
    again), frees it and wraps the values in pandas, a good part of a window's time (docs/model.md,
    "The voice parameters"). This feeds the same configuration the same 16-bit samples, and its values
    are the same to the last bit (tests/features/test_functionals.py, which also guards the private parts of
    opensmile it relies on, pinned in requirements.txt). One instance runs one window at a time."""

    def __init__(self, sr: int, contours: bool = False) -> None:
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
        self._contours = contours
        if contours:  # the multi-sink configuration names its own sinks and reads no level option
            options = {**options, "sink": os.path.join(smile.default_config_root, MULTI_SINK)}
            options.pop("sinkLevel", None)
            options["blockSize"] = CONTOUR_BLOCK
            self._sink = "extsinkfunc"
        self._instance = OpenSMILE()
        self._instance.initialize(config_file=smile.config_path, options=options, loglevel=smile.loglevel)
        self._resetting: threading.Thread | None = None  # the reset after the last run, while it lasts
        self._reset_error: Exception | None = None

    def _reset(self) -> None:
        try:
            self._instance.reset()  # after a run; its callbacks must be registered again
        except Exception as e:  # kept for the caller's thread, where it raises
            self._reset_error = e

    def __call__(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The functionals of a float waveform in [-1, 1], and (``contours``) its descriptors frame by
        frame. Returns ([shape=(N_EGEMAPS,)], float64, NaN: undefined; [shape=(t, N_CONTOUR)], float32, or None)"""
        samples = (waveform * 32768).astype(np.int16)  # as Smile._extract converts it
        rows: list[np.ndarray] = []
        frames: list[np.ndarray] = []

        def collect(data: np.ndarray, _meta: Any) -> None:
            rows.append(np.array(data, dtype=np.float64).reshape(-1))

        def collect_frames(data: np.ndarray, _meta: Any) -> None:
            frames.append(np.array(data, dtype=np.float32).reshape(-1, N_CONTOUR))

        if self._resetting is not None:
            self._resetting.join()  # most often long done: it ran while the caller used the last values
            if self._reset_error is not None:  # raised here, so that ``_functionals`` drops this instance
                raise self._reset_error
        self._instance._callbacks.clear()  # the library keeps every callback it was ever given
        self._instance.external_sink_set_callback_ex(self._sink, collect)
        if self._contours:
            self._instance.external_sink_set_callback_ex("extsinklld", collect_frames)
        self._instance.external_audio_source_write_data(self._source, samples.tobytes())
        self._instance.external_audio_source_set_eoi(self._source)
        self._instance.run()
        # Reset for the next window now, in the background: openSMILE's library releases the GIL, so on a
        # second core the reset overlaps the classifier's work on these values.
        self._resetting = threading.Thread(target=self._reset, name="opensmile-reset", daemon=True)
        self._resetting.start()
        values = rows[0] if rows else np.full(N_EGEMAPS, np.nan)  # no row from openSMILE: undefined, not a crash
        if not self._contours:
            return values, None
        return values, np.concatenate(frames) if frames else np.zeros((0, N_CONTOUR), np.float32)


_idle: dict[tuple[int, int, bool], list[_Extractor]] = {}  # (process, sample rate, contours) -> instances not in use
_idle_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _idle_lock
    _idle_lock = threading.Lock()  # another thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def _functionals(waveform: np.ndarray, sr: int, contours: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """openSMILE's eGeMAPS of a float waveform through an idle instance of this process, or a new one
    when every instance is busy (sessions of the app classify at once; none waits for another). Keyed
    by process: a forked worker never touches its parent's instances. An instance whose run raised
    is dropped. Returns what ``_Extractor`` returns"""
    key = (os.getpid(), sr, contours)
    with _idle_lock:
        idle = _idle.setdefault(key, [])
        extractor = idle.pop() if idle else None
    extractor = extractor or _Extractor(sr, contours)
    values = extractor(waveform)
    with _idle_lock:
        _idle[key].append(extractor)
    return values


def feature_names() -> list[str]:
    return [*_smile().feature_names, "log_rms"]


def egemaps(waveform: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """eGeMAPS v02 of the waveform at one level, then its natural-log RMS.
    Returns np.ndarray [shape=(89,)], float32, finite (openSMILE's NaN for an undefined value is 0)"""
    return _egemaps(waveform, sr, contours=False)[0]


def egemaps_contours(waveform: np.ndarray, sr: int = SAMPLE_RATE, n_frames: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """``egemaps`` of the waveform and, from the same openSMILE run, its 25 descriptors every 10 ms,
    the first ``n_frames`` of them; rows past the waveform's end are NaN (the mark of padding, as
    openSMILE's own NaNs are 0). Returns (np.ndarray [shape=(89,)], np.ndarray [shape=(n_frames, 25)]), float32"""
    values, frames = _egemaps(waveform, sr, contours=True)
    contours = np.full((n_frames, N_CONTOUR), np.nan, dtype=np.float32)
    frames = np.nan_to_num(frames[:n_frames])
    contours[: len(frames)] = frames
    return values, contours


def _egemaps(waveform: np.ndarray, sr: int, *, contours: bool) -> tuple[np.ndarray, np.ndarray | None]:
    rms = max(float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))), MIN_RMS)
    # Clipped to 16 bits' range, which openSMILE reads: scaled to one level, a window of a click in near
    # silence peaks beyond full scale, and openSMILE's bare cast to int16 wraps such a sample to the other sign.
    scaled = np.clip(waveform * (TARGET_RMS / rms), -1.0, FULL_SCALE).astype(np.float32)
    values, frames = _functionals(scaled, sr, contours)
    assert len(values) == N_EGEMAPS, f"openSMILE gave {len(values)} eGeMAPS values, not {N_EGEMAPS}"
    return np.nan_to_num(np.append(values, np.log(rms))).astype(np.float32), frames
