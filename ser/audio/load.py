"""Decode anything -> mono float32 at one sample rate; validate.

``load_audio`` is the one door audio comes in through. A path, bytes or a binary file
object (a Streamlit ``UploadedFile``) in any supported format, at any rate and channel
count, comes out as a validated mono float32 waveform at 16 kHz. What a source is lives in
``ser.audio.sources``, the decoders in ``ser.audio.decode``, where the speech is in ``ser.audio.speech``.

Every decoder error is re-raised as ``AudioDecodeError`` and every unusable result as
``AudioContentError``, both with a message meant for the person who supplied the file.
"""

from __future__ import annotations

import dataclasses

import av
import numpy as np
import soxr

from ser.audio.decode import RESAMPLE_QUALITY, Head, decode, too_long
from ser.audio.sources import AudioSource, open_source
from ser.audio.speech import trim_silence
from ser.config import SAMPLE_RATE, AudioConfig
from ser.errors import AudioContentError
from ser.units import dbfs, short_seconds

MAX_CHANNELS = 64  # more "channels" than this in a raw array means it was passed as (channels, n)
DEFAULTS = AudioConfig()  # frozen, so one instance serves as every default


def load_audio(source: AudioSource, *, config: AudioConfig = DEFAULTS, trim: bool = False) -> np.ndarray:
    """Decode any supported audio into a validated mono waveform at ``config.sample_rate``.

    Parameters
    ----------
    source : a path (str or Path), the file's bytes, or a binary file object (BytesIO, an
        open file, a Streamlit UploadedFile; read from its start, left open)
    config : the sample rate, the accepted durations and the silence threshold
    trim : cut leading and trailing silence (``config.trim_top_db`` below the peak)

    Channels are averaged to mono; any rate is resampled with soxr (tested from 8 to 96 kHz).
    Long recordings are decoded and resampled block by block, so memory stays near the size
    of the output (4 bytes per sample at 16 kHz, 230 MB for an hour) plus one block: the whole
    file is never held at its native rate and channel count. Recordings longer than
    ``config.max_duration_s`` are refused, from the header's length when it has one.

    Returns np.ndarray [shape=(n_samples,)], float32

    Raises AudioDecodeError (empty, truncated, not audio) or AudioContentError (too long,
    too short, silent, non-finite).
    """
    src, subject = open_source(source)
    waveform = validate(decode(src, subject, config).waveform, config=config)
    if not trim:
        return waveform
    trimmed = trim_silence(waveform, top_db=config.trim_top_db)
    if len(trimmed) < config.min_duration_s * config.sample_rate:
        raise AudioContentError(
            f"after trimming silence only {short_seconds(len(trimmed) / config.sample_rate)} s of sound is left; "
            f"at least {config.min_duration_s:.2f} s of speech is needed"
        )
    return trimmed


def load_audio_head(source: AudioSource, *, config: AudioConfig = DEFAULTS) -> Head:
    """``load_audio`` for the app and the command line: a recording longer than the cap
    (``config.max_duration_s``) is not refused but cut there, decoding stopping at the cap,
    so its first part can still be classified; ``truncated`` says so, to be shown to the user.

    Raises what ``load_audio`` raises, except the too-long error.
    """
    src, subject = open_source(source)
    head = decode(src, subject, config, truncate=True)
    return dataclasses.replace(head, waveform=validate(head.waveform, config=config))


def validate(waveform: np.ndarray, *, config: AudioConfig = DEFAULTS) -> np.ndarray:
    """Check that a mono waveform at ``config.sample_rate`` is usable for classification.

    Returns the waveform as np.ndarray [shape=(n_samples,)], float32, when it is: not empty,
    finite, between ``min_duration_s`` and ``max_duration_s`` long, with a peak at or above
    ``silence_dbfs`` once any constant (DC) offset is removed. Raises AudioContentError otherwise,
    and ValueError for an array that is not 1-D (a bug in the caller, not in the audio).
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"validate expects a mono waveform of shape (n,), not {waveform.shape}")
    if len(waveform) == 0:
        raise AudioContentError("the clip is empty (0 samples); record or upload a clip with speech in it")
    # One float64 sum is finite exactly when every sample is, without a boolean copy of the clip.
    if not np.isfinite(np.sum(waveform, dtype=np.float64)):
        n_bad = int(np.count_nonzero(~np.isfinite(waveform)))
        raise AudioContentError(
            f"the clip has {n_bad} non-finite samples (NaN or infinity), so the file is damaged; "
            "export or record it again"
        )
    _check_duration(len(waveform) / config.sample_rate, config)
    _check_loudness(waveform, config)
    return waveform


def _check_duration(duration_s: float, config: AudioConfig) -> None:
    if duration_s < config.min_duration_s:
        raise AudioContentError(
            f"the clip is {short_seconds(duration_s)} s long; "
            f"at least {config.min_duration_s:.2f} s of speech is needed"
        )
    if duration_s > config.max_duration_s:
        raise too_long("the clip", config, duration_s)


def _check_loudness(waveform: np.ndarray, config: AudioConfig) -> None:
    floor = 10 ** (config.silence_dbfs / 20)  # -60 dBFS: 0.001 of full scale
    top, bottom = float(np.max(waveform)), float(np.min(waveform))  # no copy, unlike np.abs
    peak = max(top, -bottom)
    if peak < floor:
        level = "every sample is zero" if peak == 0 else f"peak {dbfs(peak):.0f} dBFS"
        raise AudioContentError(
            f"the clip is silent ({level}; at least {config.silence_dbfs:.0f} dBFS is needed); "
            "if it was just recorded, check that the microphone is on and not muted, then record again"
        )
    offset = float(np.mean(waveform, dtype=np.float64))
    if max(top - offset, offset - bottom) < floor:
        raise AudioContentError(
            f"the clip holds only a constant offset ({offset:+.3f}) and no sound; "
            "if it was just recorded, check the microphone, then record again"
        )


def resample(waveform: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample with soxr (high quality); the input is returned as float32 when the rates match.

    waveform : np.ndarray [shape=(n,) or (n, channels)]

    Returns np.ndarray [shape=(round(n * target_sr / orig_sr),) or (..., channels)], float32
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, not {orig_sr} -> {target_sr}")
    waveform = np.asarray(waveform, dtype=np.float32)
    if orig_sr == target_sr or len(waveform) == 0:
        return waveform
    return soxr.resample(waveform, orig_sr, target_sr, quality=RESAMPLE_QUALITY)


def to_mono_16k(frames: np.ndarray, sr: int, *, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Raw samples (a WebRTC frame, ``st.audio_input`` data) -> mono float32 at 16 kHz.

    frames : np.ndarray [shape=(n,) or (n, channels)], float in [-1, 1] or integer PCM
        (int16, int32, uint8), scaled to [-1, 1]

    Each call is resampled on its own: for a stream cut into short frames, filter edge
    effects at frame boundaries are the price of keeping no state between calls.

    Returns np.ndarray [shape=(round(n * target_sr / sr),)], float32
    """
    frames = np.asarray(frames)
    if frames.ndim not in (1, 2) or (frames.ndim == 2 and frames.shape[1] > MAX_CHANNELS):
        raise ValueError(f"expected frames of shape (n,) or (n, channels), not {frames.shape}")
    mono = _to_float(frames)
    if mono.ndim == 2:
        mono = mono.mean(axis=1, dtype=np.float32)
    return resample(mono, sr, target_sr)


def frame_to_array(frame: av.AudioFrame) -> np.ndarray:
    """An av.AudioFrame's samples (a WebRTC frame) as [shape=(n, channels)]: packed formats (s16)
    come from ``to_ndarray`` interleaved as (1, n * channels), planar ones (fltp) as (channels, n)."""
    samples = frame.to_ndarray()
    if frame.format.is_planar:
        return samples.T
    return samples.reshape(-1, len(frame.layout.channels))


def _to_float(frames: np.ndarray) -> np.ndarray:
    """Integer PCM scaled to [-1, 1); floats passed through; float32 either way."""
    if frames.dtype.kind == "f":
        return frames.astype(np.float32, copy=False)
    if frames.dtype.kind == "u":
        half = 2.0 ** (8 * frames.dtype.itemsize - 1)
        return ((frames.astype(np.float64) - half) / half).astype(np.float32)
    if frames.dtype.kind == "i":
        return (frames / 2.0 ** (8 * frames.dtype.itemsize - 1)).astype(np.float32)
    raise ValueError(f"expected float or integer PCM frames, not {frames.dtype}")
