"""ser.audio.load: load_audio, the one door audio comes in by, and its verdict on bad input;
``validate``, trimming, ``resample``, ``to_mono_16k``, and ``load_audio_head``'s cut at the cap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser.audio.load import load_audio, resample, to_mono_16k, validate
from ser.audio.speech import trim_silence
from ser.config import SAMPLE_RATE, AudioConfig
from ser.errors import AudioContentError, AudioDecodeError
from tests.audio.helpers import _RANDOM, _zip_of_a_wav, dominant_hz, encode_av, encode_sf, tone
from tests.conftest import voiced

# ----------------------------------------------------------------------------- bad input


def _float_wav_with(value: float) -> bytes:
    waveform = tone(sr=16_000)
    waveform[1000:1010] = value
    return encode_sf(waveform, 16_000, subtype="FLOAT")


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


# ----------------------------------------------------------------------------- the cap


@pytest.mark.parametrize("fmt", ["WAV", "M4A"])
def test_a_recording_past_the_cap_is_cut_there_not_refused(tmp_path, fmt):
    from ser.audio.load import load_audio_head

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
