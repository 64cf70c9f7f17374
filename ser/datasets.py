"""Find emotional-speech corpora on disk, parse them into a manifest, and split them.

``discover(root) -> Manifest`` walks a folder (or reads a CSV) and turns every audio
file whose *name* follows a known layout into a ``Clip``; folder names vary between
downloads, so only the file name is trusted. Audio files that match no layout are
kept in ``Manifest.unmatched`` and reported, never silently dropped.

Layouts (file stem -> speaker, text, emotion):

- TESS     ``OAF_back_angry``           speaker OAF, word "back" (``OA_`` is OAF's misspelling)
- RAVDESS  ``03-01-05-01-02-01-12``     speaker A12, statement "02" ("song-02" when sung)
- CREMA-D  ``1001_DFA_ANG_XX``          speaker 1001, sentence "DFA"
- SAVEE    ``DC_a01`` or ``DC/a01``     speaker DC, sentence "01"
- CSV      ``path,emotion[,speaker][,text]`` rows, paths relative to the CSV's folder

Splits (``make_splits(manifest, kind)``) never take the validation set, used for
early stopping, from the test set: it is carved from the training side, stratified
by emotion, and everything is deterministic for a given ``seed``.

This module only looks at names and paths; it never decodes audio.
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.config import ALL_EMOTIONS, AUDIO_EXTENSIONS
from ser.errors import DatasetError

LAYOUTS = ("TESS", "RAVDESS", "CREMA-D", "SAVEE", "CSV")
# The evaluation protocols (``make_splits``), each with what it measures, in the words the app uses.
PROTOCOLS = {
    "speaker": "speaker-independent (leave one speaker out)",
    "random": "random split (speaker-dependent)",
    "words": "held-out words",
    "none": "none (every clip trains)",
}
N_EXAMPLES = 5  # unmatched paths quoted in errors and summaries
UNKNOWN_SPEAKER = "unknown"  # speaker of CSV rows without a speaker column or value

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
    "pleasant_surprise": "surprise",
    "pleasant_surprised": "surprise",
    "pleasantly_surprised": "surprise",
    "bored": "boredom",
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
CREMA_EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprise",
}

TESS_RE = re.compile(r"([a-z0-9]+)_([a-z0-9]+)_(angry|disgust|fear|happy|neutral|ps|sad)", re.IGNORECASE)
RAVDESS_RE = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")
CREMA_RE = re.compile(r"(\d{4})_([a-z]{3})_([a-z]{3})_([a-z]{1,2})", re.IGNORECASE)
SAVEE_RE = re.compile(r"(?:([A-Z]{2})_)?(?i:(sa|su|a|d|f|h|n))(\d{1,2})")
SAVEE_SPEAKER_RE = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True, order=True)
class Clip:
    path: Path  # the audio file
    corpus: str  # "tess", "ravdess", "crema-d", "savee" or "csv"
    speaker: str  # speaker code as the corpus spells it ("OAF", "A01", "1001", "DC")
    text: str  # word or sentence id; "" if unknown
    emotion: str  # canonical label, one of config.ALL_EMOTIONS


@dataclass
class Manifest:
    clips: list[Clip]  # one per recording, sorted by path
    root: Path  # the folder or CSV file it was discovered from
    unmatched: list[Path]  # audio files that matched no layout
    duplicates: list[Path] = field(default_factory=list)  # second copies of a recording, not counted

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def speakers(self) -> list[str]:
        return sorted({clip.speaker for clip in self.clips})

    @property
    def emotions(self) -> list[str]:
        """The emotions present, in ``config.ALL_EMOTIONS`` order."""
        present = {clip.emotion for clip in self.clips}
        return [emotion for emotion in ALL_EMOTIONS if emotion in present]

    @property
    def corpora(self) -> list[str]:
        return sorted({clip.corpus for clip in self.clips})

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of clips per ``(speaker, emotion)``."""
        return dict(sorted(Counter((clip.speaker, clip.emotion) for clip in self.clips).items()))

    def filter(
        self,
        emotions: Iterable[str] | None = None,
        speakers: Iterable[str] | None = None,
    ) -> Manifest:
        """The clips with one of ``emotions`` (synonyms accepted) and one of ``speakers``."""
        keep_emotions = None if emotions is None else {canonical_emotion(e) for e in emotions}
        keep_speakers = None if speakers is None else set(speakers)
        clips = [
            clip
            for clip in self.clips
            if (keep_emotions is None or clip.emotion in keep_emotions)
            and (keep_speakers is None or clip.speaker in keep_speakers)
        ]
        return Manifest(clips, self.root, list(self.unmatched), list(self.duplicates))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the data, for model cards and the explore page."""
        per_emotion = Counter(clip.emotion for clip in self.clips)
        base = self.root.parent if self.root.suffix.lower() == ".csv" else self.root
        return {
            "root": str(self.root),
            "corpora": self.corpora,
            "speakers": self.speakers,
            "n_clips": len(self.clips),
            "emotions": {emotion: per_emotion[emotion] for emotion in self.emotions},
            "n_unmatched": len(self.unmatched),
            "unmatched_examples": [_relative(path, base) for path in self.unmatched[:N_EXAMPLES]],
            "n_duplicates": len(self.duplicates),
        }


@dataclass
class Split:
    train: list[Clip]  # clips to fit on
    val: list[Clip]  # carved from the training side, for early stopping; never test clips
    test: list[Clip]  # held out for the reported metrics; empty for kind "none"
    kind: str  # one of PROTOCOLS
    description: str  # human readable, e.g. "speaker-independent: train OAF, test YAF"

    def summary(self) -> dict[str, Any]:
        """Sizes and description, JSON-ready, for model cards."""
        return {
            "kind": self.kind,
            "description": self.description,
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
        }


# ---------------------------------------------------------------------------- labels


def canonical_emotion(label: str) -> str:
    """Map a corpus or CSV emotion label (any case, synonyms, "ps") to its canonical name."""
    key = re.sub(r"[\s\-]+", "_", str(label).strip().lower())
    if key not in EMOTION_SYNONYMS:
        known = ", ".join(ALL_EMOTIONS)
        raise DatasetError(f"unknown emotion label {label!r}; use one of {known} (or a common synonym)")
    return EMOTION_SYNONYMS[key]


# ---------------------------------------------------------------------------- file names


def parse_path(path: str | Path) -> Clip | None:
    """The clip a file name describes under any known layout, or None if it matches none."""
    parsed = _parse(Path(path))
    return None if parsed is None else parsed[0]


def _parse(path: Path) -> tuple[Clip, Hashable] | None:
    """Clip and identity key (equal for two copies of one recording), or None."""
    for parser in (_parse_ravdess, _parse_crema, _parse_tess, _parse_savee):
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


# ---------------------------------------------------------------------------- discovery


def discover(root: str | Path) -> Manifest:
    """Find every clip under a corpus folder, or list the clips of a CSV file.

    A folder is walked recursively; each audio file is parsed by its name (TESS,
    RAVDESS, CREMA-D, SAVEE layouts). A second copy of a recording (a download
    nested twice) is counted once, keeping the shallowest path. A CSV file needs
    a header with ``path`` and ``emotion`` columns, optionally ``speaker`` and ``text``.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"data folder not found: {root}")
    root = root.resolve()
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DatasetError(f"expected a data folder or a .csv file, got {root}")
        return _discover_csv(root)
    return _discover_folder(root)


def corpus_stamp(root: str | Path) -> tuple:
    """What ``discover(root)`` depends on, cheaply: a CSV's size and modification time, or the
    modification time of every folder of a corpus (a file added, removed or renamed changes its
    folder's). Equal stamps, equal manifests: a cache keyed on it sees an edited corpus."""
    root = Path(root).expanduser()
    try:
        if not root.is_dir():
            stat = root.stat()
            return (stat.st_size, stat.st_mtime_ns)
    except OSError:
        return ()  # discover says what is wrong
    stamp, visited = [], set()
    for dirpath, dirnames, _ in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = [name for name in dirnames if not name.startswith(".") and name != "__MACOSX"]
        with contextlib.suppress(OSError):  # a folder removed meanwhile
            stamp.append((dirpath, os.stat(dirpath).st_mtime_ns))
    return tuple(sorted(stamp))


def _discover_folder(root: Path) -> Manifest:
    audio = _audio_files(root)
    if not audio:
        extensions = ", ".join(sorted(AUDIO_EXTENSIONS))
        raise DatasetError(f"no clips found in {root}: no audio files ({extensions}) in it or below")
    clips: list[Clip] = []
    unmatched: list[Path] = []
    duplicates: list[Path] = []
    seen: set[Hashable] = set()
    for path in audio:  # shallowest first, so the first copy of a recording is kept
        parsed = _parse(path)
        if parsed is None:
            unmatched.append(path)
        elif parsed[1] in seen:
            duplicates.append(path)
        else:
            seen.add(parsed[1])
            clips.append(parsed[0])
    if not clips:
        examples = ", ".join(_relative(path, root) for path in unmatched[:N_EXAMPLES])
        raise DatasetError(
            f"no clips found in {root}: {len(unmatched)} audio files matched no known layout "
            f"({', '.join(LAYOUTS)}), e.g. {examples}"
        )
    return Manifest(sorted(clips), root, sorted(unmatched), sorted(duplicates))


def _audio_files(root: Path) -> list[Path]:
    """Audio files under ``root``, skipping hidden ones; shallowest first, then by path."""
    found: list[Path] = []
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # a symlink loop, or a second link to the same folder
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(name for name in dirnames if not name.startswith(".") and name != "__MACOSX")
        found += [Path(dirpath, name) for name in filenames if _is_audio(name)]
    return sorted(found, key=lambda path: (len(path.parts), str(path)))


def _is_audio(name: str) -> bool:
    # "._OAF_back_angry.wav" are macOS resource forks, not audio.
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def _discover_csv(csv_path: Path) -> Manifest:
    clips: list[Clip] = []
    duplicates: list[Path] = []
    missing: list[str] = []
    seen: set[Path] = set()
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _check_columns(csv_path, reader.fieldnames)
        for row in reader:
            clip = _csv_row_clip(csv_path, reader.line_num, row)
            if not clip.path.is_file():
                missing.append(f"line {reader.line_num}: {clip.path}")
            elif clip.path in seen:
                duplicates.append(clip.path)
            else:
                seen.add(clip.path)
                clips.append(clip)
    if missing:
        raise DatasetError(
            f"{csv_path}: {len(missing)} listed files do not exist, e.g. {'; '.join(missing[:N_EXAMPLES])}"
        )
    if not clips:
        raise DatasetError(f"no clips found in {csv_path}: the file has a header but no rows")
    return Manifest(sorted(clips), csv_path, [], duplicates)


def _check_columns(csv_path: Path, fieldnames: Sequence[str] | None) -> None:
    header = [_column(name) for name in fieldnames or []]
    lacking = [name for name in ("path", "emotion") if name not in header]
    if lacking:
        raise DatasetError(
            f"{csv_path}: missing column(s) {', '.join(lacking)}; the header is {fieldnames}, "
            "expected path,emotion[,speaker][,text]"
        )


def _csv_row_clip(csv_path: Path, line: int, row: dict[str | None, Any]) -> Clip:
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
    return Clip(path, "csv", speaker, cells.get("text", ""), emotion)


def _column(name: str | None) -> str:
    return (name or "").strip().lower()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- splits


def make_splits(
    manifest: Manifest,
    kind: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> list[Split]:
    """The split(s) of one evaluation protocol.

    ``"speaker"``: leave-one-speaker-out, one split per speaker (TESS: test OAF, test YAF);
    ``"random"``: stratified by emotion, speaker-dependent; ``"words"``: whole words or
    sentences held out; ``"none"``: no test set. All but "speaker" give a single split.
    """
    if kind == "speaker":
        return speaker_folds(manifest, val_fraction=val_fraction, seed=seed)
    if kind == "random":
        return [split_random(manifest, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)]
    if kind == "words":
        return [split_words(manifest, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)]
    if kind == "none":
        return [split_none(manifest, val_fraction=val_fraction, seed=seed)]
    raise DatasetError(f"unknown split kind {kind!r}; use one of {', '.join(PROTOCOLS)}")


def speaker_folds(manifest: Manifest, *, val_fraction: float = 0.15, seed: int = 0) -> list[Split]:
    """Leave-one-speaker-out: for each speaker, a split that tests on that speaker alone."""
    speakers = manifest.speakers
    if len(speakers) < 2:
        raise DatasetError(
            f"a speaker-independent split needs at least 2 speakers, the data has {len(speakers)}: {speakers}"
        )
    return [split_speakers(manifest, [speaker], val_fraction=val_fraction, seed=seed) for speaker in speakers]


def split_speakers(
    manifest: Manifest, test_speakers: Sequence[str], *, val_fraction: float = 0.15, seed: int = 0
) -> Split:
    """Test on ``test_speakers``, train (and validate) on everyone else."""
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    held = {test_speakers} if isinstance(test_speakers, str) else set(test_speakers)
    if not held:
        raise DatasetError("split_speakers needs at least one test speaker")
    unknown = sorted(held - set(manifest.speakers))
    if unknown:
        raise DatasetError(f"unknown test speaker(s) {unknown}; the data has {manifest.speakers}")
    train_side = [clip for clip in manifest.clips if clip.speaker not in held]
    if not train_side:
        raise DatasetError(f"testing on {sorted(held)} leaves no speaker to train on")
    test = sorted(clip for clip in manifest.clips if clip.speaker in held)
    train, val = _stratified_take(train_side, val_fraction, random.Random(seed))
    train_speakers = sorted({clip.speaker for clip in train_side})
    description = f"speaker-independent: train {_names(train_speakers)}, test {_names(sorted(held))}"
    return Split(train, val, test, "speaker", description)


def split_random(
    manifest: Manifest,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    seed: int = 0,
) -> Split:
    """A random test set stratified by emotion; the same speakers and words are on both sides."""
    _check_fraction("test_fraction", test_fraction, allow_zero=False)
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    rng = random.Random(seed)
    train_side, test = _stratified_take(manifest.clips, test_fraction, rng)
    if not test or not train_side:
        raise DatasetError(f"too few clips ({len(manifest)}) to hold out test_fraction {test_fraction}")
    train, val = _stratified_take(train_side, val_fraction, rng)
    description = f"random, speaker-dependent: {test_fraction:.0%} of the clips per emotion held out for test"
    return Split(train, val, test, "random", description)


def split_words(
    manifest: Manifest,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    seed: int = 0,
) -> Split:
    """Hold out whole words or sentences: no text is in more than one of train, val and test."""
    _check_fraction("test_fraction", test_fraction, allow_zero=False)
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    untexted = [clip.path for clip in manifest.clips if not clip.text]
    if untexted:
        raise DatasetError(
            f"a word split needs the word or sentence of every clip; {len(untexted)} have none, "
            f"e.g. {untexted[0]}; add a text column to the CSV or use another split kind"
        )
    texts = sorted({clip.text for clip in manifest.clips})
    random.Random(seed).shuffle(texts)
    n_test = _n_take(len(texts), test_fraction)
    n_val = _n_take(len(texts) - n_test, val_fraction)
    if n_test == 0 or len(texts) - n_test - n_val < 1 or (val_fraction > 0 and n_val == 0):
        needed = 3 if val_fraction > 0 else 2
        raise DatasetError(f"a word split needs {needed} or more different words or sentences, not {texts}")
    test_texts, val_texts = set(texts[:n_test]), set(texts[n_test : n_test + n_val])
    test = sorted(clip for clip in manifest.clips if clip.text in test_texts)
    val = sorted(clip for clip in manifest.clips if clip.text in val_texts)
    train = sorted(clip for clip in manifest.clips if clip.text not in test_texts | val_texts)
    description = (
        f"held-out words, speaker-dependent: {n_test} of {len(texts)} words or sentences for test, "
        f"{n_val} for validation"
    )
    return Split(train, val, test, "words", description)


def split_none(manifest: Manifest, *, val_fraction: float = 0.15, seed: int = 0) -> Split:
    """No test set: every clip trains, except a validation part stratified by emotion."""
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    if not manifest.clips:
        raise DatasetError(f"no clips to split in {manifest.root}")
    train, val = _stratified_take(manifest.clips, val_fraction, random.Random(seed))
    description = f"no test set: all clips train, {val_fraction:.0%} per emotion for validation"
    return Split(train, val, [], "none", description)


def _stratified_take(
    clips: Sequence[Clip],
    fraction: float,
    rng: random.Random,
    key: Callable[[Clip], Hashable] = lambda clip: clip.emotion,
) -> tuple[list[Clip], list[Clip]]:
    """Split ``clips`` into (kept, taken), taking ``fraction`` of each group at random."""
    groups: defaultdict[Hashable, list[Clip]] = defaultdict(list)
    for clip in sorted(clips):
        groups[key(clip)].append(clip)
    kept: list[Clip] = []
    taken: list[Clip] = []
    for name in sorted(groups, key=str):
        group = groups[name]
        rng.shuffle(group)
        n_take = _n_take(len(group), fraction)
        taken += group[:n_take]
        kept += group[n_take:]
    return sorted(kept), sorted(taken)


def _n_take(n: int, fraction: float) -> int:
    """How many of ``n`` items make ``fraction``: at least one, and never all of them."""
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(fraction * n)))


def _check_fraction(name: str, value: float, *, allow_zero: bool) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        bounds = "[0, 1)" if allow_zero else "(0, 1)"
        raise DatasetError(f"{name} must be in {bounds}, got {value!r}")


def _names(speakers: Sequence[str]) -> str:
    """'OAF' or 'OAF, YAF', shortened for corpora with many speakers."""
    if len(speakers) <= 6:
        return ", ".join(speakers)
    return f"{len(speakers)} speakers ({', '.join(speakers[:3])}, ...)"
