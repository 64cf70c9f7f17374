"""The two decoders behind ``ser.audio.load.load_audio``, no system ffmpeg:

- soundfile (libsndfile) first: wav (8/16/24/32-bit PCM, float, u-law, a-law), flac,
  ogg (vorbis, opus) and aiff. It detects the format from the header, so an AIFF
  file named ``.wav`` (as TESS ships one) reads fine.
- PyAV (the ffmpeg libraries bundled in its wheel) for mp3 (recognised by its first bytes)
  and what soundfile cannot open: m4a/mp4 (aac, alac), webm/mkv (opus, vorbis), adts aac, and
  the rest of ffmpeg's formats. In an mp3, a packet it cannot decode is skipped, as ffmpeg's own
  command does, so a stream recorder's dropout does not lose the recording. For mp3 soundfile
  (libmpg123) is the fall-back only: it printed "Note: Illegal Audio-MPEG-Header" lines to the
  terminal for such files, and stopped at the first of several concatenated parts.

Both stream into one ``_Resampler``: mixed to mono and resampled block by block, cut at the cap.
Every decoder error is re-raised as ``AudioDecodeError``, with a message meant for the person who
supplied the file.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, BinaryIO

import av
import numpy as np
import soundfile as sf
import soxr

from ser.audio.sources import (
    SOUNDFILE_MAGIC,
    SUPPORTED_FORMATS,
    AudioSource,
    first_bytes,
    is_mpeg_audio,
    libmpg123_quiet,
    open_source,
    refuse_not_audio,
    rewind,
)
from ser.config import AudioConfig
from ser.errors import AudioContentError, AudioDecodeError
from ser.units import exactly

BLOCK_SAMPLES = 1 << 18  # samples (frames x channels) soundfile decodes at once: 1 MB of float32
RESAMPLE_QUALITY = "HQ"  # soxr's high quality, the same filter as librosa's default "soxr_hq"
IMAGE_CODECS = {"png", "mjpeg", "jpegls", "gif", "bmp", "tiff", "webp", "jpeg2000", "apng"}  # PyAV's names

# What soundfile and PyAV raise for input they cannot read (LibsndfileError is a RuntimeError;
# some FFmpegErrors are also ValueError/OSError/EOFError).
DECODER_ERRORS = (RuntimeError, ValueError, OSError, EOFError, av.FFmpegError)


@dataclass(frozen=True)
class Head:
    """The first ``config.max_duration_s`` of a recording (see ``load_audio_head``)."""

    waveform: np.ndarray  # [shape=(n_samples,)], float32, at most the cap long
    truncated: bool  # the recording went on past the cap
    duration_s: float | None  # the whole recording's length, when its header records it


def decode(src: str | BinaryIO, subject: str, config: AudioConfig, *, truncate: bool = False) -> Head:
    """soundfile first, then PyAV (the other way round for mp3); a decoder's own errors become
    one AudioDecodeError, and a file that is not audio at all is named for what it is."""
    start = first_bytes(src)
    refuse_not_audio(start, subject)
    mp3 = is_mpeg_audio(start)
    decoders = {
        "soundfile": lambda: _decode_soundfile(rewind(src), subject, config, truncate),
        "pyav": lambda: _decode_pyav(rewind(src), subject, config, truncate, skip_bad_packets=mp3),
    }
    errors: dict[str, Exception] = {}
    for name in ("pyav", "soundfile") if mp3 else ("soundfile", "pyav"):
        try:
            return decoders[name]()
        except DECODER_ERRORS as e:
            errors[name] = e
    raise _undecodable(subject, errors["soundfile"], errors["pyav"]) from errors[name]


def _decode_soundfile(src: str | BinaryIO, subject: str, config: AudioConfig, truncate: bool) -> Head:
    quiet = libmpg123_quiet() if not first_bytes(src).startswith(SOUNDFILE_MAGIC) else contextlib.nullcontext()
    with quiet, sf.SoundFile(src) as f:
        duration_s = f.frames / max(f.samplerate, 1)
        sink = _Resampler(f.samplerate, subject, config, duration_s=duration_s, truncate=truncate)
        block = np.empty((max(1, BLOCK_SAMPLES // f.channels), f.channels), dtype=np.float32)
        # Not SoundFile.blocks: on a truncated mp3 it yields unread (uninitialised) rows.
        while not sink.full and len(frames := f.read(out=block)):
            sink.push(frames)
    return sink.finish(duration_s)


def _decode_pyav(
    src: str | BinaryIO, subject: str, config: AudioConfig, truncate: bool, *, skip_bad_packets: bool = False
) -> Head:
    """``skip_bad_packets``: go on past a packet that does not decode (mp3: a recording's dropout),
    as long as most do; otherwise the file is refused."""
    if isinstance(src, str):  # ffmpeg would read "name:rest" as a protocol ("concat:", "http:")
        with open(src, "rb") as file:
            return _decode_pyav(file, subject, config, truncate, skip_bad_packets=skip_bad_packets)
    with av.open(src, metadata_errors="ignore") as container:
        stream = _audio_stream(container, subject)
        duration_s = _pyav_duration_s(container, stream)
        sink = _Resampler(stream.sample_rate, subject, config, duration_s=duration_s, truncate=truncate)
        to_planar_float = av.AudioResampler(format="fltp")  # keeps the rate and channels
        n_packets = n_bad = 0
        for packet in container.demux(stream):  # the last, empty packet flushes the decoder
            n_packets += 1
            try:
                frames = packet.decode()
            except av.InvalidDataError:  # a damaged frame: skipped, as the ffmpeg command does
                if not skip_bad_packets:
                    raise
                n_bad += 1
                continue
            for frame in frames:
                for converted in to_planar_float.resample(frame):
                    sink.push(converted.to_ndarray().T)
            if sink.full:
                break
        else:
            for converted in to_planar_float.resample(None):
                sink.push(converted.to_ndarray().T)
    if n_bad > n_packets // 2:  # mostly undecodable: not a recording's dropouts, but not audio
        raise ValueError(f"{n_bad} of {n_packets} packets are not valid {stream.codec_context.name}")
    return sink.finish(duration_s)


def _audio_stream(container: av.container.InputContainer, subject: str) -> av.AudioStream:
    if not container.streams.audio:
        codecs = {s.codec_context.name for s in container.streams.video if s.codec_context is not None}
        if codecs and codecs <= IMAGE_CODECS:  # ffmpeg reads a picture as a one-frame video
            what = f"an image ({', '.join(sorted(c.upper() for c in codecs))})"
        elif container.streams.video:
            what = "a video without sound (no audio stream)"
        else:
            found = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            what = f"a file with no audio stream (found: {found})"
        raise AudioDecodeError(
            f"{subject} could not be decoded as audio: it is {what}, not a recording; "
            f"choose an audio file ({SUPPORTED_FORMATS})"
        )
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # ffmpeg has no decoder for the codec the header names
        raise AudioDecodeError(
            f"{subject} could not be decoded as audio: its audio codec is unknown or not supported; "
            f"supported formats: {SUPPORTED_FORMATS}"
        )
    return stream


def _pyav_duration_s(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The header's duration, or None when the container does not record it (live webm)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def describe(source: AudioSource) -> dict[str, Any]:
    """What a file holds, read from its header (nothing is decoded).

    Returns {"sample_rate": int, "n_channels": int, "duration_s": float | None (None when
    the container does not say, e.g. a browser's webm), "format": str, "codec": str}
    """
    src, subject = open_source(source)
    start = first_bytes(src)
    refuse_not_audio(start, subject)
    if is_mpeg_audio(start):
        try:
            return _describe_pyav(rewind(src), subject)
        except DECODER_ERRORS:
            pass  # soundfile may still read it
    try:
        with libmpg123_quiet() if not start.startswith(SOUNDFILE_MAGIC) else contextlib.nullcontext():
            info = sf.info(rewind(src))
        return {
            "sample_rate": info.samplerate,
            "n_channels": info.channels,
            "duration_s": info.frames / info.samplerate,
            "format": info.format,
            "codec": info.subtype,
        }
    except DECODER_ERRORS as e:
        sf_error = e
    try:
        return _describe_pyav(rewind(src), subject)
    except DECODER_ERRORS as e:
        raise _undecodable(subject, sf_error, e) from e


def _describe_pyav(src: str | BinaryIO, subject: str) -> dict[str, Any]:
    if isinstance(src, str):  # see _decode_pyav
        with open(src, "rb") as file:
            return _describe_pyav(file, subject)
    with av.open(src, metadata_errors="ignore") as container:
        stream = _audio_stream(container, subject)
        return {
            "sample_rate": stream.sample_rate,
            "n_channels": stream.channels,
            "duration_s": _pyav_duration_s(container, stream),
            "format": container.format.name,
            "codec": stream.codec_context.name,
        }


class _Resampler:
    """Blocks [shape=(n, channels)] at ``sr`` in, one mono waveform at the target rate out.

    Each block is mixed down and resampled as it arrives (soxr keeps its filter state between
    blocks), into an output array sized from the header's duration when there is one.
    """

    def __init__(
        self, sr: int, subject: str, config: AudioConfig, *, duration_s: float | None, truncate: bool = False
    ) -> None:
        if sr <= 0:
            raise AudioDecodeError(
                f"{subject} could not be decoded as audio: its header gives a sample rate of {sr} Hz, "
                "so it is damaged or not audio at all"
            )
        if duration_s is not None and duration_s > config.max_duration_s and not truncate:
            raise too_long(subject, config, duration_s)
        self.subject, self.config, self.truncate = subject, config, truncate
        self.full = False  # truncating, and the cap is reached: the decoder may stop
        self.max_samples = math.ceil(config.max_duration_s * config.sample_rate) + 1
        self.stream = None
        target_sr = config.sample_rate
        if sr != target_sr:
            self.stream = soxr.ResampleStream(sr, target_sr, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        expected_s = duration_s if duration_s is not None else 60.0
        self.out = np.empty(min(math.ceil(expected_s * config.sample_rate) + 1, self.max_samples), np.float32)
        self.n_samples = 0

    def push(self, block: np.ndarray) -> None:
        mono = block.mean(axis=1, dtype=np.float32)  # also a contiguous copy for a single channel
        self._append(self.stream.resample_chunk(mono) if self.stream else mono)

    def finish(self, duration_s: float | None) -> Head:
        """The waveform [shape=(n_samples,)], float32; raises AudioDecodeError if empty."""
        if self.stream is not None and not self.full:
            self._append(self.stream.resample_chunk(np.zeros(0, np.float32), last=True))
        if self.n_samples == 0:
            raise AudioDecodeError(
                f"{self.subject} could not be decoded as audio: it holds no audio samples "
                "(a header without a recording, or a truncated file); record or export it again"
            )
        self.out.resize(self.n_samples, refcheck=False)  # shrinks in place, no copy
        return Head(self.out, self.full, duration_s)

    def _append(self, chunk: np.ndarray) -> None:
        if self.full:
            return
        end = self.n_samples + len(chunk)
        cap = self.max_samples - 1  # the cap's length exactly
        if end > cap and self.truncate:
            chunk, end, self.full = chunk[: cap - self.n_samples], cap, True
        elif end > self.max_samples:
            raise too_long(self.subject, self.config, None)
        if end > len(self.out):  # the header under-reported the length, or had none
            self.out.resize(min(max(end, len(self.out) * 3 // 2), self.max_samples), refcheck=False)
        self.out[self.n_samples : end] = chunk
        self.n_samples = end


def too_long(subject: str, config: AudioConfig, duration_s: float | None) -> AudioContentError:
    limit = exactly(config.max_duration_s)
    if duration_s is None:
        return AudioContentError(f"{subject} is longer than {limit}, the limit; cut it into shorter parts")
    return AudioContentError(
        f"{subject} is {exactly(duration_s)} long; the limit is {limit}; cut it into shorter parts"
    )


def _undecodable(subject: str, sf_error: Exception, av_error: Exception) -> AudioDecodeError:
    return AudioDecodeError(
        f"{subject} could not be decoded as audio "
        f"(soundfile: {_reason(sf_error)}; PyAV: {_reason(av_error)}); "
        f"it may be damaged, truncated or not audio at all; supported formats: {SUPPORTED_FORMATS}"
    )


def _reason(error: Exception) -> str:
    # LibsndfileError.error_string and FFmpegError.strerror leave out the object reprs of str().
    text = getattr(error, "error_string", None) or getattr(error, "strerror", None) or str(error)
    return str(text).rstrip(".") or type(error).__name__
