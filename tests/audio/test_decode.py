"""ser.audio.decode: the two decoders behind load_audio (soundfile, then PyAV; PyAV first for mp3):
every format, rate and channel count in, 16 kHz mono float32 out; damaged data refused with a
message; long recordings decoded in blocks and stopped at the cap; ``describe`` reads the header."""

from __future__ import annotations

import dataclasses
import time
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser.audio.decode import describe
from ser.audio.load import load_audio
from ser.config import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioConfig
from ser.errors import AudioContentError, AudioDecodeError, SERError
from tests.audio.helpers import (
    _RANDOM,
    FRAME,
    LOSSY_SLACK,
    assert_16k_mono,
    dominant_hz,
    encode_av,
    encode_sf,
    tone,
)
from tests.conftest import TESS_DIR, requires_tess, voiced

# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "subtype", "name"),
    [
        ("WAV", "PCM_16", "clip.wav"),
        ("WAV", "PCM_24", "clip.wav"),
        ("WAV", "PCM_32", "clip.wav"),
        ("WAV", "FLOAT", "clip.wav"),
        ("WAV", "ULAW", "clip.wav"),
        ("FLAC", "PCM_16", "clip.flac"),
        ("OGG", "VORBIS", "clip.ogg"),
        ("AIFF", "PCM_16", "aiff_in_disguise.wav"),  # like TESS's YAF_neat_fear.wav
    ],
)
def test_soundfile_formats_round_trip(tmp_path: Path, fmt: str, subtype: str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(encode_sf(tone(sr=44_100, duration_s=1.0), 44_100, fmt, subtype))
    waveform = load_audio(path)
    assert_16k_mono(waveform, 1.0)
    assert dominant_hz(waveform) == pytest.approx(440, abs=2)


@pytest.mark.parametrize(
    ("fmt", "codec", "sr"),
    [
        ("mp3", "libmp3lame", 44_100),
        ("mp4", "aac", 44_100),
        ("ipod", "aac", 48_000),  # .m4a
        ("webm", "libopus", 48_000),
    ],
)
def test_compressed_formats_round_trip(fmt: str, codec: str, sr: int) -> None:
    waveform = load_audio(encode_av(tone(sr=sr, duration_s=1.5), sr, fmt, codec))
    assert_16k_mono(waveform, 1.5, slack=LOSSY_SLACK)
    assert dominant_hz(waveform) == pytest.approx(440, abs=2)


ENCODERS = {  # one way to write each extension the app accepts, at 48 kHz
    ".wav": lambda y: encode_sf(y, 48_000),
    ".flac": lambda y: encode_sf(y, 48_000, "FLAC"),
    ".ogg": lambda y: encode_sf(y, 48_000, "OGG", "VORBIS"),
    ".aiff": lambda y: encode_sf(y, 48_000, "AIFF"),
    ".aif": lambda y: encode_sf(y, 48_000, "AIFF"),
    ".mp3": lambda y: encode_av(y, 48_000, "mp3", "libmp3lame"),
    ".m4a": lambda y: encode_av(y, 48_000, "ipod", "aac"),
    ".aac": lambda y: encode_av(y, 48_000, "adts", "aac"),
    ".webm": lambda y: encode_av(y, 48_000, "webm", "libopus"),
    ".opus": lambda y: encode_av(y, 48_000, "ogg", "libopus"),  # a WhatsApp voice note
}


@pytest.mark.parametrize("extension", AUDIO_EXTENSIONS)
def test_every_accepted_extension_decodes_in_upper_case_too(tmp_path: Path, extension: str) -> None:
    path = tmp_path / f"CLIP{extension.upper()}"
    path.write_bytes(ENCODERS[extension](tone(sr=48_000, duration_s=1.5)))
    waveform = load_audio(path)
    assert_16k_mono(waveform, 1.5, slack=LOSSY_SLACK)
    assert dominant_hz(waveform) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("sr", [8_000, 16_000, 22_050, 24_414, 44_100, 48_000, 96_000])
def test_any_rate_becomes_16k_with_pitch_and_duration_kept(sr: int) -> None:
    waveform = load_audio(encode_sf(tone(sr=sr, duration_s=2.0), sr, subtype="FLOAT"))
    assert_16k_mono(waveform, 2.0)
    assert dominant_hz(waveform) == pytest.approx(440, abs=1)


@pytest.mark.parametrize("n_channels", [2, 6])
def test_channels_are_averaged(n_channels: int) -> None:
    frames = np.stack([tone(220.0 * (k + 1), sr=16_000, amplitude=0.1) for k in range(n_channels)], axis=1)
    waveform = load_audio(encode_sf(frames, 16_000, subtype="FLOAT"))
    np.testing.assert_allclose(waveform, frames.mean(axis=1), atol=1e-6)


def test_stereo_compressed_and_resampled_is_mixed_to_mono() -> None:
    left, right = tone(300.0, sr=48_000, duration_s=1.0), tone(700.0, sr=48_000, duration_s=1.0)
    waveform = load_audio(encode_av(np.stack([left, right], axis=1), 48_000, "webm", "libopus"))
    assert_16k_mono(waveform, 1.0, slack=LOSSY_SLACK)
    spectrum = np.abs(np.fft.rfft(waveform))
    bins = np.argsort(spectrum)[-2:] * SAMPLE_RATE / len(waveform)
    assert sorted(np.round(bins, -1)) == [300, 700]


# ----------------------------------------------------------------------------- damaged data


def test_decoder_errors_are_chained() -> None:
    with pytest.raises(AudioDecodeError) as caught:
        load_audio(_RANDOM)
    assert isinstance(caught.value.__cause__, av.FFmpegError)
    assert "soundfile: Format not recognised" in str(caught.value)


def test_wav_cut_inside_its_data_keeps_what_is_there() -> None:
    data = encode_sf(tone(sr=16_000, duration_s=2.0), 16_000)
    waveform = load_audio(data[: 44 + 2 * 16_000])  # header + 1 s of 16-bit samples
    assert_16k_mono(waveform, 1.0)


# Magic numbers of wav, flac, ogg, mp3 (id3) and webm, so that the decoders get past their first check.
HEADERS = [b"", b"RIFF\x00\x10\x00\x00WAVEfmt ", b"fLaC", b"OggS\x00\x02", b"ID3\x04", b"\x1aE\xdf\xa3"]


@given(st.sampled_from(HEADERS), st.binary(min_size=0, max_size=3_000))
@settings(max_examples=30, deadline=None)
def test_garbage_never_escapes_as_a_raw_exception(header: bytes, body: bytes) -> None:
    try:
        waveform = load_audio(header + body)
    except SERError:
        return
    assert waveform.dtype == np.float32 and np.isfinite(waveform).all()


# ----------------------------------------------------------------------------- long recordings


def test_recording_longer_than_the_limit_is_refused_from_its_header() -> None:
    config = dataclasses.replace(AudioConfig(), max_duration_s=90.0)
    data = encode_sf(tone(sr=8_000, duration_s=95.5, amplitude=0.1), 8_000)
    message = r"1 min 36 s \(95\.5 s\) long; the limit is 1 min 30 s \(90 s\)"
    with pytest.raises(AudioContentError, match=message):
        load_audio(data, config=config)


def test_recording_without_a_length_in_its_header_is_stopped_at_the_limit() -> None:
    data = encode_av(tone(sr=48_000, duration_s=3.0), 48_000, "webm", "libopus", live="1")  # like a browser's
    assert describe(data)["duration_s"] is None
    with pytest.raises(AudioContentError, match=r"longer than 2\.00 s, the limit"):
        load_audio(data, config=dataclasses.replace(AudioConfig(), max_duration_s=2.0))


def test_ten_minute_recording_is_decoded_in_blocks(tmp_path: Path, rng: np.random.Generator) -> None:
    sr, minutes = 22_050, 10
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", samplerate=sr, channels=2, subtype="PCM_16") as f:
        for _ in range(minutes):
            minute = 0.01 * rng.standard_normal((60 * sr, 2), dtype=np.float32)
            f.write(minute + 0.1 * tone(200.0, sr, 60.0)[:, None])
    started = time.perf_counter()
    tracemalloc.start()
    try:
        waveform = load_audio(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_16k_mono(waveform, minutes * 60.0)
    native_bytes = minutes * 60 * sr * 2 * 4  # the whole file as float32 at its own rate and channels
    assert peak < 1.2 * waveform.nbytes + 8_000_000 < native_bytes
    assert time.perf_counter() - started < 10


# ----------------------------------------------------------------------------- the header


def test_describe_reads_the_header() -> None:
    wav = describe(encode_sf(np.zeros((24_000, 2), np.float32), 48_000, subtype="PCM_24"))
    assert wav == {
        "sample_rate": 48_000,
        "n_channels": 2,
        "duration_s": 0.5,
        "format": "WAV",
        "codec": "PCM_24",
    }
    m4a = describe(encode_av(tone(sr=44_100), 44_100, "mp4", "aac"))
    assert (m4a["sample_rate"], m4a["n_channels"], m4a["codec"]) == (44_100, 1, "aac")
    assert m4a["duration_s"] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(AudioDecodeError):
        describe(b"not audio at all")


# ----------------------------------------------------------------------------- properties


@given(
    sr=st.sampled_from([8_000, 22_050, 44_100, 48_000]),
    n_channels=st.integers(1, 2),
    duration_s=st.floats(0.3, 2.0),
    seed=st.integers(0, 2**32 - 1),
    amplitude=st.floats(0.05, 1.0),
    dc=st.floats(-0.5, 0.5),
    subtype=st.sampled_from(["PCM_16", "FLOAT"]),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_finite_waveform_comes_back_finite_with_its_duration(
    sr: int, n_channels: int, duration_s: float, seed: int, amplitude: float, dc: float, subtype: str
) -> None:
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    noise = rng.uniform(-1, 1, (n, n_channels)) * rng.uniform(0, 1, (1, n_channels))
    frames = np.clip(dc * (1 - amplitude) + amplitude * noise, -1, 1).astype(np.float32)
    frames[rng.integers(0, n), :] = amplitude  # at least one full-height sample in every channel
    waveform = load_audio(encode_sf(frames, sr, subtype=subtype))
    assert waveform.dtype == np.float32 and np.isfinite(waveform).all()
    assert abs(len(waveform) - n * SAMPLE_RATE / sr) <= FRAME


# ----------------------------------------------------------------------------- real TESS


def _tess_file(pattern: str) -> Path:
    found = sorted(TESS_DIR.rglob(pattern))
    if not found:
        pytest.skip(f"{pattern} not in {TESS_DIR}")
    return found[0]


@requires_tess
def test_tess_96k_file() -> None:
    path = _tess_file("OAF_food_fear.*")
    assert describe(path)["sample_rate"] == 96_000
    waveform = load_audio(path, trim=True)
    assert 0.5 < len(waveform) / SAMPLE_RATE < 4.0


@requires_tess
def test_tess_aiff_named_wav() -> None:
    path = _tess_file("YAF_neat_fear.wav")
    assert describe(path)["format"] == "AIFF"
    waveform = load_audio(path)
    assert 0.5 < len(waveform) / SAMPLE_RATE < 4.0
    assert np.isfinite(waveform).all()


# ----------------------------------------------------------------------------- mp3


def _mp3_parts(n_parts: int, cut_bytes: int = 0, **options: str) -> bytes:
    """``n_parts`` 10 s mp3 streams one after the other, each cut short by ``cut_bytes`` (a stream
    recorder's dropouts), as one file."""
    part = encode_av(voiced(10.0, sr=44_100), 44_100, "mp3", "libmp3lame", **options)
    return part[: len(part) - cut_bytes] * n_parts


@pytest.mark.parametrize(
    ("data", "seconds"),
    [(lambda: _mp3_parts(3, cut_bytes=300, write_xing="0", id3v2_version="0"), 29.9), (lambda: _mp3_parts(3), 30.0)],
    ids=["dropouts", "parts with their own headers"],
)  # fmt: skip
def test_a_long_mp3_decodes_whole_and_quietly(capfd, data, seconds: float) -> None:
    """soundfile's libmpg123 wrote "Note: Illegal Audio-MPEG-Header ..." lines to the terminal for a
    recording with dropouts, and stopped after the first part of one made of several (each with a
    Xing header); ffmpeg decodes both cleanly, and now decodes mp3."""
    waveform = load_audio(data())
    assert len(waveform) / SAMPLE_RATE == pytest.approx(seconds, abs=0.2)
    err = capfd.readouterr().err
    assert "MPEG" not in err and "resync" not in err and "Xing" not in err, err
