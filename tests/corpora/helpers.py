"""Helpers shared by the tests of ser.corpora: corpus trees made of empty files or tiny wav files
(only names matter, nothing is decoded), and the file names of some corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ser.corpora.datasets import Clip, Manifest

KAGGLE = "TESS Toronto emotional speech set data"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


def touch(root: Path, *names: str) -> list[Path]:
    """Create empty files (and their folders) under ``root``."""
    paths = [root / name for name in names]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return paths


def write_wavs(root: Path, *names: str) -> list[Path]:
    """Create tiny real audio files (50 ms of silence, 16 kHz) under ``root``."""
    paths = [root / name for name in names]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(800, np.float32), 16_000)
    return paths


def by_name(manifest: Manifest) -> dict[str, Clip]:
    return {clip.path.name: clip for clip in manifest.clips}


def make_kaggle_tess(root: Path) -> None:
    """A small TESS tree with the quirks of real downloads."""
    touch(
        root / KAGGLE,
        "OAF_Fear/OAF_chair_fear.wav",
        "OAF_Pleasant_surprise/OAF_chair_ps.wav",
        "YAF_pleasant_surprised/YAF_chair_ps.wav",
        "OAF_Sad/OAF_chair_sad.wav",
        "OAF_neutral/OA_bite_neutral.wav",
        "OAF_neutral/OAF_chair_neutral.wav",
        "YAF_fear/YAF_neat_fear.wav",
        "YAF_angry/YAF_chair_angry.flac",
        "YAF_angry/._YAF_chair_angry.wav",  # macOS resource fork: hidden, ignored
        "YAF_angry/YAF_chair_angry (1).wav",  # matches no layout: reported
        "README.md",
        "notes.txt",
        "labels.json",
    )
    touch(root, ".DS_Store", "recording.wav", "__MACOSX/._OAF_chair_sad.wav")


# EmoDB: every letter once, speakers 03 and 16, versions a-c.
EMODB_NAMES = {
    "03a01Wa.wav": "angry",
    "03a01Lb.wav": "boredom",
    "03a02Ec.wav": "disgust",
    "03b01Aa.wav": "fear",
    "16a01Fa.wav": "happy",
    "16b10Ta.wav": "sad",
    "16a07Nc.wav": "neutral",
}
# EMOVO: emotion-speaker-sentence, one folder per speaker.
EMOVO_NAMES = {
    "f1/dis-f1-b1.wav": "disgust",
    "f1/gio-f1-l2.wav": "happy",
    "f2/neu-f2-n3.wav": "neutral",
    "m1/pau-m1-d1.wav": "fear",
    "m2/rab-m2-b3.wav": "angry",
    "m3/sor-m3-l4.wav": "surprise",
    "f3/tri-f3-n5.wav": "sad",
}
