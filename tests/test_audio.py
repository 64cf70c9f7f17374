"""ser.audio: every format, rate and channel count in; 16 kHz mono float32 out; bad input refused."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser.audio import load_audio, resample, to_mono_16k, validate
from ser.config import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioConfig
from ser.decode import describe
from ser.errors import AudioContentError, AudioDecodeError, SERError
from ser.speech import trim_silence
from ser.units import SILENCE_FLOOR_DBFS, dbfs
from tests.conftest import TESS_DIR, requires_tess, voiced

FRAME = SAMPLE_RATE // 100  # one 10 ms frame at 16 kHz: the tolerance on lossless durations
LOSSY_SLACK = int(0.05 * SAMPLE_RATE)  # aac pads to whole 1024-sample frames; opus/mp3 are exact or close
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


# ----------------------------------------------------------------------------- helpers


def tone(hz: float = 440.0, sr: int = 44_100, duration_s: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(duration_s * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def encode_sf(waveform: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, waveform, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def encode_av(waveform: np.ndarray, sr: int, fmt: str, codec: str, **options: str) -> bytes:
    """Encode [shape=(n,) or (n, channels)] float32 with PyAV into a container held in memory."""
    frames = waveform if waveform.ndim == 2 else waveform[:, None]
    layout = LAYOUTS[frames.shape[1]]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt, options=options) as container:
        stream = container.add_stream(codec, rate=sr, layout=layout)
        frame = av.AudioFrame.from_ndarray(frames.reshape(1, -1).copy(), format="flt", layout=layout)
        frame.sample_rate, frame.pts = sr, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:  # PyAV cuts the codec's frames
            container.mux(packet)
    return buf.getvalue()


def dominant_hz(waveform: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * sr / len(waveform))


def assert_16k_mono(waveform: np.ndarray, duration_s: float, slack: int = FRAME) -> None:
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - duration_s * SAMPLE_RATE) <= slack
    assert np.isfinite(waveform).all()


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


# ----------------------------------------------------------------------------- sources


class Unseekable(io.RawIOBase):
    """A pipe-like binary stream: read works, seek does not."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        return self._inner.readinto(buffer)


def test_path_bytes_and_file_objects_give_the_same_waveform(tmp_path: Path) -> None:
    data = encode_sf(tone(sr=22_050), 22_050)
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    at_end = io.BytesIO(data)
    at_end.seek(0, io.SEEK_END)  # a file object someone already read: decoded from its start
    with path.open("rb") as opened:
        sources = [str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data), at_end, opened]
        results = [load_audio(source) for source in sources]
        assert not opened.closed  # the caller's file is left open
    results.append(load_audio(Unseekable(data)))
    for waveform in results[1:]:
        np.testing.assert_array_equal(waveform, results[0])


def test_file_object_left_open_after_pyav_decode() -> None:
    upload = io.BytesIO(encode_av(tone(sr=44_100), 44_100, "mp4", "aac"))
    upload.name = "recording.m4a"  # what a Streamlit UploadedFile looks like
    assert len(load_audio(upload)) > 0
    assert not upload.closed


@pytest.mark.parametrize("name", ["my clip.wav", "émotion – clip ü.flac", "感情 テスト.m4a", "note (1).webm"])
def test_file_names_with_spaces_and_non_ascii(tmp_path: Path, name: str) -> None:
    waveform = tone(sr=48_000)
    encoders = {
        ".wav": lambda: encode_sf(waveform, 48_000),
        ".flac": lambda: encode_sf(waveform, 48_000, "FLAC"),
        ".m4a": lambda: encode_av(waveform, 48_000, "ipod", "aac"),
        ".webm": lambda: encode_av(waveform, 48_000, "webm", "libopus"),
    }
    path = tmp_path / name
    path.write_bytes(encoders[path.suffix]())
    assert_16k_mono(load_audio(path), 1.0, slack=LOSSY_SLACK)
    assert describe(path)["sample_rate"] == 48_000


# ----------------------------------------------------------------------------- bad input


def _zip_of_a_wav() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("clip.wav", encode_sf(tone(), 44_100))
    return buf.getvalue()


def _float_wav_with(value: float) -> bytes:
    waveform = tone(sr=16_000)
    waveform[1000:1010] = value
    return encode_sf(waveform, 16_000, subtype="FLOAT")


_RANDOM = np.random.default_rng(7).bytes(8_000)
_WAV = encode_sf(tone(sr=16_000), 16_000)
_FLAC = encode_sf(tone(sr=16_000), 16_000, "FLAC")
_PNG = b"\x89PNG\r\n\x1a\n" + _RANDOM[:500]
_UNKNOWN_CODEC = _WAV[:20] + b"\x34\x12" + _WAV[22:]  # a wav header naming format tag 0x1234

BAD_INPUTS = {
    "empty": ("clip.wav", b"", AudioDecodeError, r"is empty \(0 bytes\)"),
    "header only": ("clip.wav", _WAV[:44], AudioDecodeError, "no audio samples"),
    "wav cut in its header": ("clip.wav", _WAV[:30], AudioDecodeError, "could not be decoded as audio"),
    "flac cut in half": ("clip.flac", _FLAC[: len(_FLAC) // 2], AudioDecodeError, "lost sync"),
    "random .wav": ("noise.wav", _RANDOM, AudioDecodeError, "'.*noise.wav' could not be decoded as audio"),
    "random .mp3": ("noise.mp3", _RANDOM, AudioDecodeError, "'.*noise.mp3' could not be decoded as audio"),
    "random .flac": ("noise.flac", _RANDOM, AudioDecodeError, "'.*noise.flac' could not be decoded as audio"),
    "unknown codec": ("clip.wav", _UNKNOWN_CODEC, AudioDecodeError, "codec is unknown or not supported"),
    "png": ("photo.png", _PNG, AudioDecodeError, "it is a PNG image, not a recording"),
    "text": ("notes.txt", b"this is not audio\n" * 40, AudioDecodeError, "could not be decoded as audio"),
    "zip": ("clips.zip", _zip_of_a_wav(), AudioDecodeError, "could not be decoded as audio"),
    "0.05 s": (
        "short.wav",
        encode_sf(tone(sr=16_000, duration_s=0.05), 16_000),
        AudioContentError,
        r"0\.05 s long; at least 0\.30 s of speech is needed",
    ),
    "silence": ("quiet.wav", encode_sf(np.zeros(16_000, np.float32), 16_000), AudioContentError, "silent"),
    "nearly silent": (
        "quiet.wav",
        encode_sf(tone(amplitude=1e-4), 44_100, subtype="FLOAT"),
        AudioContentError,
        r"silent \(peak -80 dBFS; at least -60 dBFS is needed",
    ),
    "dc offset only": (
        "dc.wav",
        encode_sf(np.full(16_000, 0.25, np.float32), 16_000),
        AudioContentError,
        r"only a constant offset \(\+0\.250\)",
    ),
    "nan": ("nan.wav", _float_wav_with(np.nan), AudioContentError, "10 non-finite samples"),
    "inf": ("inf.wav", _float_wav_with(np.inf), AudioContentError, "non-finite samples"),
}


@pytest.mark.parametrize(("name", "data", "error", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_refused_with_a_message(tmp_path: Path, name, data, error, message) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error, match=message):
        load_audio(path)
    with pytest.raises(error):  # the same verdict from bytes, without the name
        load_audio(data)


def test_a_pipe_is_read_whole_and_a_device_refused(tmp_path: Path) -> None:
    """`cat clip.flac | python -m ser predict /dev/stdin`: a pipe has no size (it was called empty)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = encode_sf(tone(sr=44_100, duration_s=1.0), 44_100, "FLAC")
    writer = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)  # blocks until read
    writer.start()
    try:
        waveform = load_audio(fifo)
    finally:
        writer.join(timeout=10)
    assert_16k_mono(waveform, 1.0)
    with pytest.raises(AudioDecodeError, match="'/dev/zero' is a device or socket, not an audio file"):
        load_audio("/dev/zero")  # never read: it would not end


def test_empty_bytes_message() -> None:
    with pytest.raises(AudioDecodeError, match=r"^the file is empty \(0 bytes\)"):
        load_audio(b"")


def test_decoder_errors_are_chained() -> None:
    with pytest.raises(AudioDecodeError) as caught:
        load_audio(_RANDOM)
    assert isinstance(caught.value.__cause__, av.FFmpegError)
    assert "soundfile: Format not recognised" in str(caught.value)


@pytest.mark.parametrize("make", [lambda p: p / "missing.wav", lambda p: p])
def test_missing_file_or_folder(tmp_path: Path, make) -> None:
    with pytest.raises(AudioDecodeError, match=re.escape(str(make(tmp_path)))):
        load_audio(make(tmp_path))


def test_wav_cut_inside_its_data_keeps_what_is_there() -> None:
    data = encode_sf(tone(sr=16_000, duration_s=2.0), 16_000)
    waveform = load_audio(data[: 44 + 2 * 16_000])  # header + 1 s of 16-bit samples
    assert_16k_mono(waveform, 1.0)


def test_non_audio_types_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        load_audio(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        load_audio(io.StringIO("RIFF"))  # type: ignore[arg-type]


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


# ----------------------------------------------------------------------------- validate, trim, helpers


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (np.zeros(0, np.float32), r"empty \(0 samples\)"),
        (np.full(8_000, np.nan, np.float32), "8000 non-finite samples"),
        (tone(sr=16_000, duration_s=0.1), r"0\.10 s long"),
        (voiced(0.3)[:-1], r"0\.29 s long; at least 0\.30 s"),  # one sample short: not "0.30 s long"
        (np.zeros(16_000, np.float32), "silent"),
        (np.full(16_000, -0.5, np.float32), "constant offset"),
        (0.3 + tone(sr=16_000, amplitude=1e-4), "constant offset"),
    ],
)
def test_validate_refuses(waveform: np.ndarray, message: str) -> None:
    with pytest.raises(AudioContentError, match=message):
        validate(waveform, config=AudioConfig())


def test_validate_accepts_speech_and_rejects_the_wrong_shape(speech_like: np.ndarray) -> None:
    assert validate(speech_like, config=AudioConfig()) is speech_like
    assert validate(speech_like.astype(np.float64), config=AudioConfig()).dtype == np.float32
    with pytest.raises(ValueError, match="mono"):
        validate(np.stack([speech_like, speech_like]), config=AudioConfig())


def test_trim_cuts_silence_around_speech() -> None:
    speech = voiced(1.0, sr=16_000)
    padded = np.concatenate([np.zeros(16_000, np.float32), speech, np.zeros(8_000, np.float32)])
    trimmed = trim_silence(padded, top_db=30)
    assert 0.8 * len(speech) < len(trimmed) < len(speech) + 2_048
    loaded = load_audio(encode_sf(padded, 16_000, subtype="FLOAT"), trim=True)
    assert len(loaded) == len(trimmed)


def test_trim_leaving_too_little_is_refused() -> None:
    click = np.zeros(32_000, np.float32)
    click[16_000:16_400] = tone(1000.0, 16_000, 0.025)
    with pytest.raises(AudioContentError, match=r"after trimming silence only 0\.\d\d s of sound is left"):
        load_audio(encode_sf(click, 16_000, subtype="FLOAT"), trim=True)


@pytest.mark.parametrize("sr", [8_000, 44_100, 48_000])
def test_resample_keeps_pitch_and_length(sr: int) -> None:
    out = resample(tone(sr=sr, duration_s=1.0), sr, SAMPLE_RATE)
    assert out.dtype == np.float32 and len(out) == SAMPLE_RATE
    assert dominant_hz(out) == pytest.approx(440, abs=1)
    same = tone(sr=SAMPLE_RATE)
    assert resample(same, SAMPLE_RATE, SAMPLE_RATE) is same


@pytest.mark.parametrize(
    "frames",
    [
        tone(sr=48_000, duration_s=0.02),  # one WebRTC frame, mono float
        np.stack([tone(sr=48_000, duration_s=0.02)] * 2, axis=1),  # stereo (n, 2)
        (tone(sr=48_000, duration_s=0.02) * 32767).astype(np.int16),  # s16 samples
    ],
)
def test_to_mono_16k(frames: np.ndarray) -> None:
    out = to_mono_16k(frames, 48_000)
    assert out.dtype == np.float32 and out.shape == (320,)
    assert 0.4 < np.max(np.abs(out)) < 0.6


def test_to_mono_16k_refuses_channels_first() -> None:
    with pytest.raises(ValueError, match=r"\(n, channels\)"):
        to_mono_16k(np.zeros((2, 960), np.float32), 48_000)


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


@pytest.mark.parametrize("fmt", ["WAV", "M4A"])
def test_a_recording_past_the_cap_is_cut_there_not_refused(tmp_path, fmt):
    from ser.audio import load_audio_head

    config = AudioConfig(max_duration_s=2.0)
    waveform = voiced(3.5, sr=44_100)
    path = tmp_path / f"long.{fmt.lower()}"
    data = encode_sf(waveform, 44_100) if fmt == "WAV" else encode_av(waveform, 44_100, "mp4", "aac")
    path.write_bytes(data)
    with pytest.raises(AudioContentError, match=r"the limit is 2\.00 s"):
        load_audio(path, config=config)
    head = load_audio_head(path, config=config)
    assert head.truncated and len(head.waveform) == 2 * config.sample_rate
    assert head.duration_s == pytest.approx(3.5, abs=0.1)
    short = load_audio_head(path, config=AudioConfig(max_duration_s=10.0))
    assert not short.truncated and len(short.waveform) == pytest.approx(3.5 * 16_000, abs=1_600)


@pytest.mark.parametrize("top_db", [20, 30, 60])
def test_speech_bounds_match_librosa_trim(top_db):
    import librosa

    from ser.speech import speech_bounds

    rng = np.random.default_rng(top_db)
    for n_lead, n_tail in [(0, 0), (3000, 1234), (511, 4097)]:
        clip = np.concatenate([np.zeros(n_lead, np.float32), voiced(0.8, seed=n_lead), np.zeros(n_tail, np.float32)])
        clip += 1e-6 * rng.standard_normal(len(clip)).astype(np.float32)
        _, expected = librosa.effects.trim(clip, top_db=top_db)
        assert speech_bounds(clip, top_db=top_db) == tuple(int(i) for i in expected)


@pytest.mark.parametrize(
    ("amplitude", "level"), [(1.0, 0.0), (0.1, -20.0), (1e-3, -60.0), (1e-6, -120.0), (1e-9, -120.0), (0.0, -120.0)]
)
def test_dbfs_of_an_amplitude_stops_at_the_silence_floor(amplitude: float, level: float) -> None:
    assert dbfs(amplitude) == pytest.approx(level) and dbfs(amplitude) >= SILENCE_FLOOR_DBFS


# ----------------------------------------------------------------------------- what a person reads


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4.25, "4.25 s"), (60, "1 min"), (95.5, "1 min 36 s"), (3600, "1 h"), (3601, "1 h"), (4330, "1 h 12 min"),
     (7170, "2 h"), (7200, "2 h")],
)  # fmt: skip
def test_format_duration_reads_as_a_person_writes_it(seconds: float, text: str) -> None:
    from ser.units import format_duration

    assert format_duration(seconds) == text  # it said "1 h 0 min (3600 s)"


def test_the_note_of_a_recording_cut_at_the_cap() -> None:
    from ser.units import cut_note

    assert cut_note(3600, 4330) == "only the first hour of this 1 h 12 min recording was classified"
    assert cut_note(3600, None) == "only the first hour of this recording was classified"
    assert cut_note(7200, 9000) == "only the first 2 hours of this 2 h 30 min recording was classified"
    assert cut_note(4.0, 9.6) == "only the first 4.00 s of this 9.60 s recording was classified"


def _image(fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "what"),
    [(lambda: _image("PNG"), "a PNG image"), (lambda: _image("JPEG"), "a JPEG image"),
     (lambda: _image("GIF"), "a GIF image"), (lambda: _image("TIFF"), "a TIFF image"),
     (lambda: _image("WEBP"), "a WebP image"), (lambda: _image("BMP"), "an image (BMP)"),
     (lambda: b"%PDF-1.7\n" + _RANDOM, "a PDF document"), (_zip_of_a_wav, "a ZIP archive")],
    ids=["png", "jpeg", "gif", "tiff", "webp", "bmp", "pdf", "zip"],
)  # fmt: skip
def test_a_file_that_is_not_audio_is_called_what_it_is(tmp_path: Path, capfd, make, what: str) -> None:
    """A PNG renamed .mp3 was "holds no audio stream (found: video)"; and soundfile, trying a
    picture as MPEG audio, left libmpg123's notes in the terminal."""
    path = tmp_path / "song.mp3"
    path.write_bytes(make())
    for call in (load_audio, describe):
        with pytest.raises(
            AudioDecodeError, match=rf"'.*song\.mp3' could not be decoded as audio: it is {re.escape(what)}"
        ):
            call(path)
    assert "MPEG" not in capfd.readouterr().err


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
