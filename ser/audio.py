"""Decode anything -> mono float32 at one sample rate; validate; trim.

``load_audio`` is the one door audio comes in through. A path, bytes or a binary file
object (a Streamlit ``UploadedFile``) in any supported format, at any rate and channel
count, comes out as a validated mono float32 waveform at 16 kHz.

Two decoders, no system ffmpeg:

- soundfile (libsndfile) first: wav (8/16/24/32-bit PCM, float, u-law, a-law), flac,
  ogg (vorbis, opus) and aiff. It detects the format from the header, so an AIFF
  file named ``.wav`` (as TESS ships one) reads fine.
- PyAV (the ffmpeg libraries bundled in its wheel) for mp3 (recognised by its first bytes)
  and what soundfile cannot open: m4a/mp4 (aac, alac), webm/mkv (opus, vorbis), adts aac, and
  the rest of ffmpeg's formats. In an mp3, a packet it cannot decode is skipped, as ffmpeg's own
  command does, so a stream recorder's dropout does not lose the recording. For mp3 soundfile
  (libmpg123) is the fall-back only: it printed "Note: Illegal Audio-MPEG-Header" lines to the
  terminal for such files, and stopped at the first of several concatenated parts.

A file that is plainly something else (a photo, a PDF, an archive, text), told by its first
bytes, is refused as what it is before any decoder tries it.

Every decoder error is re-raised as ``AudioDecodeError`` and every unusable result as
``AudioContentError``, both with a message meant for the person who supplied the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import re
import stat
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import soundfile as sf
import soxr

from ser.config import SAMPLE_RATE, AudioConfig
from ser.errors import AudioContentError, AudioDecodeError

BLOCK_SAMPLES = 1 << 18  # samples (frames x channels) soundfile decodes at once: 1 MB of float32
RESAMPLE_QUALITY = "HQ"  # soxr's high quality, the same filter as librosa's default "soxr_hq"
SUPPORTED_FORMATS = "wav, flac, ogg, mp3, m4a, aac, webm, opus, aiff"
MAX_CHANNELS = 64  # more "channels" than this in a raw array means it was passed as (channels, n)

# What soundfile and PyAV raise for input they cannot read (LibsndfileError is a RuntimeError;
# some FFmpegErrors are also ValueError/OSError/EOFError).
_DECODER_ERRORS = (RuntimeError, ValueError, OSError, EOFError, av.FFmpegError)

SNIFF_BYTES = 16  # how much of a file's start tells what it is
# The first bytes of files that are not audio, and what to call them (WebP's "WEBP" follows a
# RIFF header at byte 8, HEIC's/AVIF's brand an ISO "ftyp" box at byte 4: see _not_audio).
NOT_AUDIO_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or a Word, Excel or other office document)",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"Rar!\x1a\x07": "a RAR archive",
    b"\x7fELF": "a program",
}
# Headers libsndfile knows: anything else it probes as MPEG audio, through libmpg123, which writes
# its complaints ("Note: Illegal Audio-MPEG-Header ...") straight to the process' stderr.
SOUNDFILE_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b".snd", b"caff", b"wvpk", b"NIST")
LIBMPG123_NOISE = re.compile(rb"^(Note: |Warning: |\[src/libmpg123/|\[.*mpg123.*\] )")
IMAGE_CODECS = {"png", "mjpeg", "jpegls", "gif", "bmp", "tiff", "webp", "jpeg2000", "apng"}  # PyAV's names

DEFAULTS = AudioConfig()  # frozen, so one instance serves as every default

AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


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
    src, subject = _open_source(source)
    waveform = validate(_decode(src, subject, config).waveform, config=config)
    if not trim:
        return waveform
    trimmed = trim_silence(waveform, top_db=config.trim_top_db)
    if len(trimmed) < config.min_duration_s * config.sample_rate:
        raise AudioContentError(
            f"after trimming silence only {_short(len(trimmed) / config.sample_rate)} s of sound is left; "
            f"at least {config.min_duration_s:.2f} s of speech is needed"
        )
    return trimmed


@dataclass(frozen=True)
class Head:
    """The first ``config.max_duration_s`` of a recording (see ``load_audio_head``)."""

    waveform: np.ndarray  # [shape=(n_samples,)], float32, at most the cap long
    truncated: bool  # the recording went on past the cap
    duration_s: float | None  # the whole recording's length, when its header records it


def load_audio_head(source: AudioSource, *, config: AudioConfig = DEFAULTS) -> Head:
    """``load_audio`` for the app and the command line: a recording longer than the cap
    (``config.max_duration_s``) is not refused but cut there, decoding stopping at the cap,
    so its first part can still be classified; ``truncated`` says so, to be shown to the user.

    Raises what ``load_audio`` raises, except the too-long error.
    """
    src, subject = _open_source(source)
    head = _decode(src, subject, config, truncate=True)
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


def trim_silence(waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db) -> np.ndarray:
    """Cut the leading and trailing parts quieter than ``top_db`` below the peak.

    Returns np.ndarray [shape=(n_kept,)], float32 (empty when the whole clip is that quiet)
    """
    start, end = speech_bounds(waveform, top_db=top_db)
    return np.asarray(waveform, dtype=np.float32)[start:end]


TRIM_FRAME, TRIM_HOP = 2048, 512  # librosa.effects.trim's analysis: 128 ms frames every 32 ms


@dataclass(frozen=True)
class SpeechMask:
    """Where a waveform is louder than ``trim_top_db`` below its peak, one flag every TRIM_HOP
    samples (librosa.effects.trim's decision). Trimming and the pause marking read the same mask."""

    loud: np.ndarray  # [shape=(n_samples // TRIM_HOP + 1,)], bool; flag i is centred on sample i * TRIM_HOP
    n_samples: int

    @property
    def bounds(self) -> tuple[int, int]:
        """Sample indices [start, end) from the first to the last loud flag; (0, 0) when none is.
        ``start`` is a multiple of TRIM_HOP."""
        loud = np.flatnonzero(self.loud)
        if len(loud) == 0:
            return 0, 0
        return int(loud[0] * TRIM_HOP), int(min(self.n_samples, (loud[-1] + 1) * TRIM_HOP))

    def speech_samples(self, starts: np.ndarray, length: int) -> np.ndarray:
        """Samples of speech in each stretch [start, start + length) of the waveform, counted in
        whole hops. Returns np.ndarray [shape=(len(starts),)], int"""
        counts = np.concatenate([[0], np.cumsum(self.loud)])
        first = np.minimum(np.round(np.asarray(starts) / TRIM_HOP).astype(int), len(counts) - 1)
        last = np.minimum(first + round(length / TRIM_HOP), len(counts) - 1)
        return (counts[last] - counts[first]) * TRIM_HOP


def speech_mask(waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db) -> SpeechMask:
    """The ``SpeechMask`` of a waveform (one pass over it)."""
    return SpeechMask(_loud_hops(waveform, top_db=top_db), len(waveform))


def speech_bounds(waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db) -> tuple[int, int]:
    """Sample indices [start, end) of the part louder than ``top_db`` below the peak."""
    return speech_mask(waveform, top_db=top_db).bounds


def _loud_hops(waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db) -> np.ndarray:
    """Which frames are louder than ``top_db`` below the loudest: frame i is centred on sample
    i * TRIM_HOP. Returns np.ndarray [shape=(len(waveform) // TRIM_HOP + 1,)], bool

    The same frames and decision as ``librosa.effects.trim`` (RMS of 2048-sample frames every 512
    samples, zero-padded at the ends), computed from per-hop energies: librosa frames the whole
    signal into a copy 4 times its size (0.9 GB for an hour), this needs 1/64 of it.
    """
    y = np.asarray(waveform, dtype=np.float32)
    n_full = len(y) // TRIM_HOP
    hops = np.zeros(n_full + 1 + 4, dtype=np.float64)  # two zero hops of padding at each end
    blocks = y[: n_full * TRIM_HOP].reshape(n_full, TRIM_HOP)
    hops[2 : 2 + n_full] = np.einsum("ij,ij->i", blocks, blocks)  # float32 like librosa: no 8-byte copy
    tail = y[n_full * TRIM_HOP :]
    hops[2 + n_full] = float(np.dot(tail, tail))
    energy = np.concatenate([[0.0], np.cumsum(hops)])
    power = (energy[4:] - energy[:-4])[: n_full + 1] / TRIM_FRAME  # mean square of each frame
    peak = max(float(power.max()), 1e-10)
    return 10 * np.log10(np.maximum(power, 1e-10) / peak) > -top_db


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


def describe(source: AudioSource) -> dict[str, Any]:
    """What a file holds, read from its header (nothing is decoded).

    Returns {"sample_rate": int, "n_channels": int, "duration_s": float | None (None when
    the container does not say, e.g. a browser's webm), "format": str, "codec": str}
    """
    src, subject = _open_source(source)
    start = _first_bytes(src)
    _refuse_not_audio(start, subject)
    if _is_mpeg_audio(start):
        try:
            return _describe_pyav(_rewind(src), subject)
        except _DECODER_ERRORS:
            pass  # soundfile may still read it
    try:
        with _libmpg123_quiet() if not start.startswith(SOUNDFILE_MAGIC) else contextlib.nullcontext():
            info = sf.info(_rewind(src))
        return {
            "sample_rate": info.samplerate,
            "n_channels": info.channels,
            "duration_s": info.frames / info.samplerate,
            "format": info.format,
            "codec": info.subtype,
        }
    except _DECODER_ERRORS as e:
        sf_error = e
    try:
        return _describe_pyav(_rewind(src), subject)
    except _DECODER_ERRORS as e:
        raise _undecodable(subject, sf_error, e) from e


# ----------------------------------------------------------------------------- sources


def _open_source(source: AudioSource) -> tuple[str | BinaryIO, str]:
    """What the decoders read (a path or a seekable file object) and its name for messages."""
    if isinstance(source, str | os.PathLike):
        return _check_path(Path(source)), f"the file '{source}'"
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise AudioDecodeError("the file is empty (0 bytes); choose a file that holds a recording")
        return io.BytesIO(bytes(source)), "the file"
    if isinstance(source, io.TextIOBase) or not hasattr(source, "read"):
        raise TypeError(f"expected a path, bytes or a binary file object, not {type(source).__name__}")
    return _check_file(source)


def _check_path(path: Path) -> str | BinaryIO:
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise AudioDecodeError(f"'{path}' is a folder, not an audio file")
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):  # /dev/zero would never end
            raise AudioDecodeError(f"'{path}' is a device or socket, not an audio file")
        # A pipe (/dev/stdin, <(...)) has no size and cannot seek, and both decoders seek: read it whole.
        source = str(path) if stat.S_ISREG(info.st_mode) else io.BytesIO(path.read_bytes())
    except OSError as e:
        raise AudioDecodeError(f"the file '{path}' could not be read: {e.strerror}") from e
    if (info.st_size if isinstance(source, str) else len(source.getbuffer())) == 0:
        raise AudioDecodeError(f"the file '{path}' is empty (0 bytes); choose a file that holds a recording")
    return source


def _check_file(file: BinaryIO) -> tuple[BinaryIO, str]:
    name = getattr(file, "name", None)
    subject = f"the file '{name}'" if isinstance(name, str | os.PathLike) else "the file"
    seekable = getattr(file, "seekable", None)
    if not (callable(seekable) and seekable()):  # both decoders seek; a pipe is read into memory
        file = io.BytesIO(file.read())
    file.seek(0, io.SEEK_END)
    if file.tell() == 0:
        raise AudioDecodeError(f"{subject} is empty (0 bytes); choose a file that holds a recording")
    return file, subject


def _rewind(src: str | BinaryIO) -> str | BinaryIO:
    if not isinstance(src, str):
        src.seek(0)
    return src


# ----------------------------------------------------------------------------- decoding


def _decode(src: str | BinaryIO, subject: str, config: AudioConfig, *, truncate: bool = False) -> Head:
    """soundfile first, then PyAV (the other way round for mp3); a decoder's own errors become
    one AudioDecodeError, and a file that is not audio at all is named for what it is."""
    start = _first_bytes(src)
    _refuse_not_audio(start, subject)
    if _is_mpeg_audio(start):
        try:
            return _decode_pyav(_rewind(src), subject, config, truncate, skip_bad_packets=True)
        except _DECODER_ERRORS as e:
            av_error = e
        try:
            return _decode_soundfile(_rewind(src), subject, config, truncate)
        except _DECODER_ERRORS as e:
            raise _undecodable(subject, e, av_error) from e
    try:
        return _decode_soundfile(_rewind(src), subject, config, truncate)
    except _DECODER_ERRORS as e:
        sf_error = e
    try:
        return _decode_pyav(_rewind(src), subject, config, truncate)
    except _DECODER_ERRORS as e:
        raise _undecodable(subject, sf_error, e) from e


_stderr_lock = threading.Lock()
_stderr_users = 0  # decodes under way with the process' stderr set aside
_stderr_saved: tuple[int, Any] | None = None  # (the real stderr's fd, the file holding what was written)


@contextlib.contextmanager
def _libmpg123_quiet():
    """Set the process' stderr (fd 2) aside while libsndfile may hand data to libmpg123, then
    write back what was written meanwhile, less libmpg123's lines: other threads' messages are
    delayed, not lost. Decodes in several threads share one redirection (the last one out ends it)."""
    global _stderr_users, _stderr_saved
    with _stderr_lock:
        if _stderr_users == 0:
            sys.stderr.flush()
            held = tempfile.TemporaryFile()  # noqa: SIM115  (closed by the last decode out, below)
            _stderr_saved = (os.dup(2), held)
            os.dup2(held.fileno(), 2)
        _stderr_users += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_users -= 1
            if _stderr_users == 0:
                real, held = _stderr_saved
                sys.stderr.flush()
                os.dup2(real, 2)
                os.close(real)
                held.seek(0)
                kept = [line for line in held.read().splitlines(keepends=True) if not LIBMPG123_NOISE.match(line)]
                held.close()
                if kept:
                    os.write(2, b"".join(kept))


def _first_bytes(src: str | BinaryIO) -> bytes:
    if isinstance(src, str):
        with open(src, "rb") as file:
            return file.read(SNIFF_BYTES)
    start = _rewind(src).read(SNIFF_BYTES)
    src.seek(0)
    return start


def _is_mpeg_audio(start: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame header (11 sync bits, a layer other than ADTS' 00)."""
    if start.startswith(b"ID3"):
        return True
    return len(start) >= 2 and start[0] == 0xFF and start[1] & 0xE0 == 0xE0 and (start[1] >> 1) & 0x3 != 0


def _not_audio(start: bytes) -> str | None:
    """What a file is, from its first bytes, when it is plainly not audio; None otherwise."""
    for magic, what in NOT_AUDIO_MAGIC.items():
        if start.startswith(magic):
            return what
    if start[:4] == b"RIFF" and start[8:12] == b"WEBP":
        return "a WebP image"
    if start[4:8] == b"ftyp" and start[8:12] in (b"heic", b"heix", b"mif1", b"avif"):
        return "a HEIC or AVIF image"
    return None


def _refuse_not_audio(start: bytes, subject: str) -> None:
    what = _not_audio(start)
    if what is not None:
        raise AudioDecodeError(
            f"{subject} could not be decoded as audio: it is {what}, not a recording; "
            f"choose an audio file ({SUPPORTED_FORMATS})"
        )


def _decode_soundfile(src: str | BinaryIO, subject: str, config: AudioConfig, truncate: bool) -> Head:
    quiet = _libmpg123_quiet() if not _first_bytes(src).startswith(SOUNDFILE_MAGIC) else contextlib.nullcontext()
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
            raise _too_long(subject, config, duration_s)
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
            raise _too_long(self.subject, self.config, None)
        if end > len(self.out):  # the header under-reported the length, or had none
            self.out.resize(min(max(end, len(self.out) * 3 // 2), self.max_samples), refcheck=False)
        self.out[self.n_samples : end] = chunk
        self.n_samples = end


# ----------------------------------------------------------------------------- checks and messages


def _check_duration(duration_s: float, config: AudioConfig) -> None:
    if duration_s < config.min_duration_s:
        raise AudioContentError(
            f"the clip is {_short(duration_s)} s long; at least {config.min_duration_s:.2f} s of speech is needed"
        )
    if duration_s > config.max_duration_s:
        raise _too_long("the clip", config, duration_s)


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


def _short(duration_s: float) -> str:
    """A duration below the minimum, rounded down: 0.2999 s is '0.29', never the minimum's '0.30'."""
    return f"{math.floor(round(duration_s * 100, 6)) / 100:.2f}"


def _too_long(subject: str, config: AudioConfig, duration_s: float | None) -> AudioContentError:
    limit = _exactly(config.max_duration_s)
    if duration_s is None:
        return AudioContentError(f"{subject} is longer than {limit}, the limit; cut it into shorter parts")
    return AudioContentError(
        f"{subject} is {_exactly(duration_s)} long; the limit is {limit}; cut it into shorter parts"
    )


def _exactly(seconds: float) -> str:
    """A duration as a person reads it, with the seconds exactly where that rounds: '1 h (3601 s)'."""
    return format_duration(seconds) if seconds < 60 else f"{format_duration(seconds)} ({seconds:g} s)"


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


def format_duration(seconds: float) -> str:
    """A duration as a person writes it: 3600 -> '1 h'; 4330 -> '1 h 12 min' (seconds left out
    past an hour); 95.5 -> '1 min 36 s'; 120 -> '2 min'; 4.25 -> '4.25 s'. No zero parts."""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        minutes += secs >= 30  # to the nearest minute
        hours, minutes = hours + minutes // 60, minutes % 60
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def format_span(seconds: float) -> str:
    """A cap as said after "the first": 3600 -> 'hour', 7200 -> '2 hours', 60 -> 'minute',
    1800 -> '30 minutes', otherwise format_duration's form ('4.00 s', '1 min 30 s')."""
    for unit, name in ((3600, "hour"), (60, "minute")):
        if seconds >= unit and seconds % unit == 0:
            n = int(seconds // unit)
            return name if n == 1 else f"{n} {name}s"
    return format_duration(seconds)


def cut_note(cap_s: float, duration_s: float | None) -> str:
    """What the user is told of a recording cut at the cap (``load_audio_head``'s ``truncated``):
    'only the first hour of this 1 h 12 min recording was classified'."""
    whole = f" {format_duration(duration_s)}" if duration_s else ""
    return f"only the first {format_span(cap_s)} of this{whole} recording was classified"


SILENCE_FLOOR_DBFS = -120.0  # what ``dbfs`` gives for silence: amplitudes of 1e-6 of full scale and below


def dbfs(amplitude: float) -> float:
    """An amplitude (a peak, or an RMS level; 1.0 is full scale) in dBFS, at least SILENCE_FLOOR_DBFS.

    The one dB-of-full-scale conversion: the silence check's message, the corpus statistics'
    loudness and the Live page's level meter all read levels through it.
    """
    return 20 * math.log10(max(float(amplitude), 10 ** (SILENCE_FLOOR_DBFS / 20)))


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
