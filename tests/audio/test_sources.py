"""ser.audio.sources: what an audio source is before a decoder reads it: a path, bytes or a file
object (seekable or not, left open), a pipe read whole and a device refused, a missing or empty
file, and a file that is plainly not audio, named for what it is from its first bytes."""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from ser.audio.decode import describe
from ser.audio.load import load_audio
from ser.errors import AudioDecodeError
from tests.audio.helpers import (
    _RANDOM,
    LOSSY_SLACK,
    _zip_of_a_wav,
    assert_16k_mono,
    encode_av,
    encode_sf,
    tone,
)

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


# ----------------------------------------------------------------------------- pipes, devices, missing and empty files


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


@pytest.mark.parametrize("make", [lambda p: p / "missing.wav", lambda p: p])
def test_missing_file_or_folder(tmp_path: Path, make) -> None:
    with pytest.raises(AudioDecodeError, match=re.escape(str(make(tmp_path)))):
        load_audio(make(tmp_path))


def test_non_audio_types_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        load_audio(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        load_audio(io.StringIO("RIFF"))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- not audio


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
