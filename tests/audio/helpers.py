"""Helpers shared by the tests of ser.audio: tones, recordings encoded in memory (soundfile and
PyAV), bytes that are not audio, and the check that a waveform came out 16 kHz mono float32."""

from __future__ import annotations

import io
import zipfile

import av
import numpy as np
import soundfile as sf

from ser.config import SAMPLE_RATE

FRAME = SAMPLE_RATE // 100  # one 10 ms frame at 16 kHz: the tolerance on lossless durations
LOSSY_SLACK = int(0.05 * SAMPLE_RATE)  # aac pads to whole 1024-sample frames; opus/mp3 are exact or close
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


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


def _zip_of_a_wav() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("clip.wav", encode_sf(tone(), 44_100))
    return buf.getvalue()


_RANDOM = np.random.default_rng(7).bytes(8_000)
