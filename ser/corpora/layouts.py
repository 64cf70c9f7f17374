"""File-name layouts of emotional-speech corpora: one audio path -> one ``Clip``.

Folder names vary between downloads, so only the file name is trusted (SAVEE's original
layout, a speaker folder with ``a01.wav`` inside, is the one exception). Layouts (file stem ->
speaker, text, emotion):

- TESS     ``OAF_back_angry``           speaker OAF, word "back" (``OA_`` is OAF's misspelling)
- RAVDESS  ``03-01-05-01-02-01-12``     speaker A12, statement "02" ("song-02" when sung)
- CREMA-D  ``1001_DFA_ANG_XX``          speaker 1001, sentence "DFA"
- SAVEE    ``DC_a01`` or ``DC/a01``     speaker DC, sentence "01"
- EmoDB    ``03a01Fa``                  speaker 03, text a01, emotion letter F, version a
- EMOVO    ``dis-f1-b1``                speaker f1, sentence b1, emotion dis
- ASED     ``f2-03-02-02-65``           speaker 65, sentence 03, emotion letter f (with its folder number 2),
                                        repetition 02, gender code 02 (not part of who the speaker is)
- CSV      ``path,emotion[,speaker][,text][,corpus]`` rows (``parse_csv_row``)

Speaker codes are the corpus's own; ``Clip.speaker_id`` qualifies them by corpus ("emodb/03"),
so two corpora's "03" stay two people. This module only looks at names and CSV rows; it never decodes audio.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser.config import ALL_EMOTIONS
from ser.errors import DatasetError

LAYOUTS = ("TESS", "RAVDESS", "CREMA-D", "SAVEE", "EmoDB", "EMOVO", "ASED", "CSV")
UNKNOWN_SPEAKER = "unknown"  # speaker of CSV rows without a speaker column or value
CSV_CORPUS = "csv"  # corpus of CSV rows without a corpus column or value

# Every spelling a corpus or a hand-made CSV uses, lower-case with "_" for spaces and dashes.
EMOTION_SYNONYMS = {
    **{emotion: emotion for emotion in ALL_EMOTIONS},
    "neu": "neutral",
    "neutrality": "neutral",
    "hap": "happy",
    "happiness": "happy",
    "sadness": "sad",
    "anger": "angry",
    "ang": "angry",
    "fearful": "fear",
    "fea": "fear",
    "disgusted": "disgust",
    "dis": "disgust",
    "ps": "surprise",
    "surprised": "surprise",
    "sur": "surprise",
    "pleasant_surprise": "surprise",
    "pleasant_surprised": "surprise",
    "pleasantly_surprised": "surprise",
    "bored": "boredom",
    "fru": "frustrated",  # IEMOCAP's abbreviations
    "frustration": "frustrated",
    "exc": "excited",
    "excitement": "excited",
    "oth": "other",
}

TESS_SPEAKER_FIXES = {"OA": "OAF", "YA": "YAF"}  # OA_bite_neutral is OAF's, prefix misspelled
RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
RAVDESS_CHANNELS = {"01": "", "02": "song-"}  # vocal channel: speech, song (text prefix)
CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprise",
}
# German initials: Wut/Ärger, Langeweile, Ekel, Angst, Freude, Trauer, Neutral.
EMODB_EMOTIONS = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
# Italian: disgusto, gioia, neutro, paura, rabbia, sorpresa, tristezza.
EMOVO_EMOTIONS = {
    "dis": "disgust",
    "gio": "happy",
    "neu": "neutral",
    "pau": "fear",
    "rab": "angry",
    "sor": "surprise",
    "tri": "sad",
}
# Amharic ASED: the emotion's letter and its folder's number (01Neutral ... 05Angry) together.
ASED_EMOTIONS = {"n1": "neutral", "f2": "fear", "h3": "happy", "s4": "sad", "a5": "angry"}
# Names of one recording (an upstream copy): (corpus, stem) -> the name the copies share.
SAME_RECORDING = {
    ("ravdess", "03-01-03-01-02-01-07"): "ravdess/03-01-03-01-02-01-07",
    ("ravdess", "03-01-03-01-02-02-07"): "ravdess/03-01-03-01-02-01-07",
}

TESS_RE = re.compile(r"([a-z0-9]+)_([a-z0-9]+)_(angry|disgust|fear|happy|neutral|ps|sad)", re.IGNORECASE)
RAVDESS_RE = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")
CREMA_RE = re.compile(r"(\d{4})_([a-z]{3})_([a-z]{3})_([a-z]{1,2})", re.IGNORECASE)
SAVEE_RE = re.compile(r"(?:([A-Z]{2})_)?(?i:(sa|su|a|d|f|h|n))(\d{1,2})")
SAVEE_SPEAKER_RE = re.compile(r"[A-Z]{2}")
EMODB_RE = re.compile(r"(\d\d)([ab]\d\d)([WLEAFTN])([a-z])")
ASED_RE = re.compile(r"([a-z][1-5])-(\d\d)-(\d\d)-(\d\d)-(\d\d)", re.IGNORECASE)
EMOVO_RE = re.compile(r"(dis|gio|neu|pau|rab|sor|tri)-([fm][1-3])-([a-z]+\d+)", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Clip:
    path: Path  # the audio file
    corpus: str  # "tess", "ravdess", "crema-d", "savee", "emodb", "emovo", "ased", or a CSV's corpus ("csv")
    speaker: str  # speaker code as the corpus spells it ("OAF", "A01", "1001", "DC", "03", "f1")
    text: str  # word or sentence id; "" if unknown
    emotion: str  # canonical label, one of config.ALL_EMOTIONS

    @property
    def speaker_id(self) -> str:
        """The speaker qualified by corpus ("emodb/03", "ravdess/A03", "tess/OAF"): unique in any pool."""
        return f"{self.corpus}/{self.speaker}"

    @property
    def recording(self) -> Hashable:
        """Equal for two names of one recording (RAVDESS Actor_07's copy), which splits keep together."""
        return SAME_RECORDING.get((self.corpus, self.path.stem), str(self.path))


def canonical_emotion(label: str) -> str:
    """Map a corpus or CSV emotion label (any case, synonyms, "ps") to its canonical name."""
    key = re.sub(r"[\s\-]+", "_", str(label).strip().lower())
    if key not in EMOTION_SYNONYMS:
        known = ", ".join(ALL_EMOTIONS)
        raise DatasetError(f"unknown emotion label {label!r}; use one of {known} (or a common synonym)")
    return EMOTION_SYNONYMS[key]


def parse_path(path: str | Path) -> Clip | None:
    """The clip a file name describes under any known layout, or None if it matches none."""
    parsed = parse_clip(Path(path))
    return None if parsed is None else parsed[0]


def parse_clip(path: Path) -> tuple[Clip, Hashable] | None:
    """Clip and identity key (equal for two copies of one recording in a download), or None."""
    for parser in PARSERS:
        parsed = parser(path)
        if parsed is not None:
            return parsed
    return None


def _parse_tess(path: Path) -> tuple[Clip, Hashable] | None:
    match = TESS_RE.fullmatch(path.stem)
    if match is None:
        return None
    speaker, word, label = match.group(1).upper(), match.group(2).lower(), match.group(3)
    speaker = TESS_SPEAKER_FIXES.get(speaker, speaker)
    clip = Clip(path, "tess", speaker, word, canonical_emotion(label))
    return clip, ("tess", speaker, word, clip.emotion)


def _parse_ravdess(path: Path) -> tuple[Clip, Hashable] | None:
    match = RAVDESS_RE.fullmatch(path.stem)
    if match is None:
        return None
    _modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    if emotion not in RAVDESS_EMOTIONS or channel not in RAVDESS_CHANNELS:
        return None
    text = RAVDESS_CHANNELS[channel] + statement
    clip = Clip(path, "ravdess", f"A{actor}", text, RAVDESS_EMOTIONS[emotion])
    # The modality (audio-video, audio-only) does not change the recording's sound.
    return clip, ("ravdess", channel, emotion, intensity, statement, repetition, actor)


def _parse_crema(path: Path) -> tuple[Clip, Hashable] | None:
    match = CREMA_RE.fullmatch(path.stem)
    if match is None or match.group(3).upper() not in CREMA_EMOTIONS:
        return None
    speaker, sentence, emotion, level = (part.upper() for part in match.groups())
    clip = Clip(path, "crema-d", speaker, sentence, CREMA_EMOTIONS[emotion])
    return clip, ("crema-d", speaker, sentence, emotion, level)


def _parse_savee(path: Path) -> tuple[Clip, Hashable] | None:
    match = SAVEE_RE.fullmatch(path.stem)
    if match is None:
        return None
    speaker, code, number = match.groups()
    if speaker is None:  # the original layout: speaker folder, "a01.wav" inside
        speaker = path.parent.name
        if not SAVEE_SPEAKER_RE.fullmatch(speaker):
            return None
    text = f"{int(number):02d}"
    clip = Clip(path, "savee", speaker, text, SAVEE_EMOTIONS[code.lower()])
    return clip, ("savee", speaker, code.lower(), text)


def _parse_emodb(path: Path) -> tuple[Clip, Hashable] | None:
    match = EMODB_RE.fullmatch(path.stem)
    if match is None:
        return None
    speaker, text, letter, version = match.groups()
    clip = Clip(path, "emodb", speaker, text, EMODB_EMOTIONS[letter])
    return clip, ("emodb", speaker, text, letter, version)


def _parse_emovo(path: Path) -> tuple[Clip, Hashable] | None:
    match = EMOVO_RE.fullmatch(path.stem)
    if match is None:
        return None
    emotion, speaker, sentence = (part.lower() for part in match.groups())
    clip = Clip(path, "emovo", speaker, sentence, EMOVO_EMOTIONS[emotion])
    return clip, ("emovo", speaker, sentence, emotion)


def _parse_ased(path: Path) -> tuple[Clip, Hashable] | None:
    match = ASED_RE.fullmatch(path.stem)
    if match is None or match.group(1).lower() not in ASED_EMOTIONS:
        return None
    code, sentence, repetition, _gender, speaker = match.groups()
    # The speaker number names a person; five speakers have a file whose gender code disagrees.
    clip = Clip(path, "ased", speaker, sentence, ASED_EMOTIONS[code.lower()])
    return clip, ("ased", speaker, code.lower(), sentence, repetition)


# ---------------------------------------------------------------------------- CSV rows


def check_csv_header(csv_path: Path, fieldnames: Sequence[str] | None) -> None:
    """Refuse a CSV header without ``path`` and ``emotion`` columns (any case)."""
    header = [_column(name) for name in fieldnames or []]
    lacking = [name for name in ("path", "emotion") if name not in header]
    if lacking:
        raise DatasetError(
            f"{csv_path}: missing column(s) {', '.join(lacking)}; the header is {fieldnames}, "
            "expected path,emotion[,speaker][,text][,corpus]"
        )


def parse_csv_row(csv_path: Path, line: int, row: dict[str | None, Any]) -> Clip:
    """The clip of one CSV row (``csv.DictReader``); a relative path is relative to the CSV's folder."""
    cells = {_column(key): str(value).strip() for key, value in row.items() if key and value is not None}
    if not cells.get("path"):
        raise DatasetError(f"{csv_path} line {line}: the path is empty")
    try:
        emotion = canonical_emotion(cells.get("emotion", ""))
    except DatasetError as error:
        raise DatasetError(f"{csv_path} line {line}: {error}") from error
    path = Path(cells["path"].replace("\\", "/")).expanduser()  # CSVs written on Windows
    path = Path(os.path.normpath(path if path.is_absolute() else csv_path.parent / path))
    speaker = cells.get("speaker") or UNKNOWN_SPEAKER
    corpus = cells.get("corpus", "").lower() or CSV_CORPUS
    return Clip(path, corpus, speaker, cells.get("text", ""), emotion)


def _column(name: str | None) -> str:
    return (name or "").strip().lower()


# Tried in order; no two layouts match the same name.
PARSERS: tuple[Callable[[Path], tuple[Clip, Hashable] | None], ...] = (
    _parse_ravdess,
    _parse_ased,
    _parse_crema,
    _parse_emodb,
    _parse_emovo,
    _parse_tess,
    _parse_savee,
)
