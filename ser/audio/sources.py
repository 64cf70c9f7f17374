"""What an audio source is, before any decoder reads it: a path, bytes or a file object checked
and made seekable, and a file that is plainly not audio (a photo, a PDF, an archive) told by its
first bytes. Also the guard that keeps libmpg123's complaints out of the terminal."""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

from ser.errors import AudioDecodeError

AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO
SUPPORTED_FORMATS = "wav, flac, ogg, mp3, m4a, aac, webm, opus, aiff"

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


def open_source(source: AudioSource) -> tuple[str | BinaryIO, str]:
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


def check_path(path: Path) -> os.stat_result:
    """What can be told of ``path`` without reading from it: that it is there, a file or a pipe,
    and, for a file, not empty. The command line asks this of every file before it loads a model.
    Returns its ``stat``; raises AudioDecodeError."""
    try:
        info = path.stat()
    except OSError as e:
        raise AudioDecodeError(f"the file '{path}' could not be read: {e.strerror}") from e
    if stat.S_ISDIR(info.st_mode):
        raise AudioDecodeError(f"'{path}' is a folder, not an audio file")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):  # /dev/zero would never end
        raise AudioDecodeError(f"'{path}' is a device or socket, not an audio file")
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        raise AudioDecodeError(f"the file '{path}' is empty (0 bytes); choose a file that holds a recording")
    return info


def _check_path(path: Path) -> str | BinaryIO:
    if stat.S_ISREG(check_path(path).st_mode):
        return str(path)
    # A pipe (/dev/stdin, <(...)) has no size and cannot seek, and both decoders seek: read it whole.
    try:
        source = io.BytesIO(path.read_bytes())
    except OSError as e:
        raise AudioDecodeError(f"the file '{path}' could not be read: {e.strerror}") from e
    if len(source.getbuffer()) == 0:
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


def rewind(src: str | BinaryIO) -> str | BinaryIO:
    if not isinstance(src, str):
        src.seek(0)
    return src


def first_bytes(src: str | BinaryIO) -> bytes:
    if isinstance(src, str):
        with open(src, "rb") as file:
            return file.read(SNIFF_BYTES)
    start = rewind(src).read(SNIFF_BYTES)
    src.seek(0)
    return start


def is_mpeg_audio(start: bytes) -> bool:
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


def refuse_not_audio(start: bytes, subject: str) -> None:
    what = _not_audio(start)
    if what is not None:
        raise AudioDecodeError(
            f"{subject} could not be decoded as audio: it is {what}, not a recording; "
            f"choose an audio file ({SUPPORTED_FORMATS})"
        )


_stderr_lock = threading.Lock()
_stderr_users = 0  # decodes under way with the process' stderr set aside
_stderr_saved: tuple[int, Any] | None = None  # (the real stderr's fd, the file holding what was written)


@contextlib.contextmanager
def libmpg123_quiet():
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
