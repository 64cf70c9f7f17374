"""Find emotional-speech corpora on disk and list their clips in a manifest.

``discover(*roots) -> Manifest`` walks each folder (or reads each CSV) and turns every audio
file whose name follows a known layout (``ser.corpora.layouts``) into a ``Clip``; several roots, or a
folder holding several corpora side by side, pool into one manifest. Audio files that match no
layout are kept in ``Manifest.unmatched`` and reported, never silently dropped. A CSV lists
``path,emotion[,speaker][,text][,corpus]`` rows, paths relative to the CSV's folder.

Speakers are people of one corpus: every grouping goes by ``Clip.speaker_id`` ("emodb/03"), and a
manifest names them as the user reads them (``Manifest.speaker_of``): the corpus's own code when
it holds one corpus ("OAF"), qualified by corpus in a pool ("tess/OAF").

Splits of a manifest are in ``ser.corpora.splits``. This module only looks at names; it never decodes audio.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import os
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.config import ALL_EMOTIONS, AUDIO_EXTENSIONS, EMOTIONS, EXTRA_EMOTIONS, PROJECT_DIR
from ser.corpora.layouts import LAYOUTS, Clip, canonical_emotion, check_csv_header, parse_clip, parse_csv_row
from ser.errors import DatasetError

N_EXAMPLES = 5  # unmatched paths quoted in errors and summaries
# The bundled demo corpus: synthetic voices laid out as TESS, for trying the workbench out of the box.
DEMO_CORPUS = PROJECT_DIR / "assets" / "demo_corpus"


@dataclass
class Manifest:
    clips: list[Clip]  # one per recording, sorted by path
    root: Path  # the folder or CSV file it was discovered from; a pool's: the folder holding all its roots
    unmatched: list[Path]  # audio files that matched no layout
    duplicates: list[Path] = field(default_factory=list)  # second copies of a recording, not counted
    roots: list[Path] = field(default_factory=list)  # every folder or CSV pooled here; [root] for one

    def __post_init__(self) -> None:
        self.roots = list(self.roots) or [self.root]

    def __len__(self) -> int:
        return len(self.clips)

    @functools.cached_property
    def pooled(self) -> bool:
        """More than one corpus: speakers are named with their corpus ("emodb/03")."""
        return len({clip.corpus for clip in self.clips}) > 1

    def speaker_of(self, clip: Clip) -> str:
        """The clip's speaker as this manifest names it: "OAF" alone, "tess/OAF" in a pool."""
        return clip.speaker_id if self.pooled else clip.speaker

    @property
    def speakers(self) -> list[str]:
        return sorted({self.speaker_of(clip) for clip in self.clips})

    @property
    def emotions(self) -> list[str]:
        """The emotions present, in ``config.ALL_EMOTIONS`` order."""
        present = {clip.emotion for clip in self.clips}
        return [emotion for emotion in ALL_EMOTIONS if emotion in present]

    @property
    def corpora(self) -> list[str]:
        return sorted({clip.corpus for clip in self.clips})

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of clips per ``(speaker, emotion)``, speakers named as in ``speakers``."""
        return dict(sorted(Counter((self.speaker_of(clip), clip.emotion) for clip in self.clips).items()))

    def clips_per_speaker(self) -> dict[str, int]:
        return dict(sorted(Counter(self.speaker_of(clip) for clip in self.clips).items()))

    def matching_speakers(self, name: str) -> list[str]:
        """Every ``Clip.speaker_id`` a name may mean: none, one, or several corpora's speakers of that code."""
        return sorted({clip.speaker_id for clip in self.clips if name in (clip.speaker_id, clip.speaker)})

    def speaker_id(self, name: str) -> str:
        """The ``Clip.speaker_id`` a user's speaker name means: a name from ``speakers``, a qualified
        id ("emodb/03"), or a corpus's own code where only one corpus has it ("OAF" in a pool)."""
        ids = self.matching_speakers(name)
        if len(ids) == 1:
            return ids[0]
        if ids:
            raise DatasetError(f"speaker {name!r} is in several corpora; name one of {', '.join(ids)}")
        raise DatasetError(f"unknown speaker {name!r}; the data has {', '.join(self.speakers) or 'none'}")

    def filter(
        self,
        emotions: Iterable[str] | None = None,
        speakers: Iterable[str] | None = None,
    ) -> Manifest:
        """The clips with one of ``emotions`` (synonyms accepted) and one of ``speakers`` (names as
        ``speaker_id`` takes them; an unknown name matches nothing, an ambiguous one is refused)."""
        keep_emotions = None if emotions is None else {canonical_emotion(e) for e in emotions}
        keep_speakers = None if speakers is None else set(self._known_ids(speakers))
        clips = [
            clip
            for clip in self.clips
            if (keep_emotions is None or clip.emotion in keep_emotions)
            and (keep_speakers is None or clip.speaker_id in keep_speakers)
        ]
        return Manifest(clips, self.root, list(self.unmatched), list(self.duplicates), list(self.roots))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the data, for model cards and the explore page. Only "root"
        holds an absolute path (a card keeps its name); "sources" are the roots relative to it."""
        per_emotion = Counter(clip.emotion for clip in self.clips)
        base = _folder(self.root)
        return {
            "root": str(self.root),
            "sources": [_relative(root, base) if root != self.root else root.name for root in self.roots],
            "corpora": self.corpora,
            "clips_per_corpus": dict(sorted(Counter(clip.corpus for clip in self.clips).items())),
            "speakers": self.speakers,
            "n_clips": len(self.clips),
            "emotions": {emotion: per_emotion[emotion] for emotion in self.emotions},
            "n_modelled": sum(per_emotion[emotion] for emotion in EMOTIONS),
            "not_modelled": {emotion: per_emotion[emotion] for emotion in EXTRA_EMOTIONS if per_emotion[emotion]},
            "n_unmatched": len(self.unmatched),
            "unmatched_examples": [_relative(path, base) for path in self.unmatched[:N_EXAMPLES]],
            "n_duplicates": len(self.duplicates),
        }

    def _known_ids(self, names: Iterable[str]) -> list[str]:
        ids: list[str] = []
        for name in names:
            named = self.matching_speakers(name)
            if len(named) > 1:
                self.speaker_id(name)  # raises: two people are refused, not merged
            ids += named
        return ids


# ---------------------------------------------------------------------------- discovery


def is_demo_corpus(path: str | Path) -> bool:
    return Path(path).expanduser().resolve() == DEMO_CORPUS.resolve()


def discover(*roots: str | Path) -> Manifest:
    """Find every clip under one or more corpus folders or CSV files, pooled into one manifest.

    A folder is walked recursively; each audio file is parsed by its name (``ser.corpora.layouts``:
    TESS, RAVDESS, CREMA-D, SAVEE, EmoDB, EMOVO), so a folder may hold several corpora side by
    side. A second copy of a recording (a download nested twice) is counted once, keeping the
    shallowest path. A CSV file needs a header with ``path`` and ``emotion`` columns, optionally
    ``speaker``, ``text`` and ``corpus`` (default "csv"). Several roots pool as ``pool`` does.
    """
    if not roots:
        raise DatasetError("no data given: name a corpus folder or a CSV file")
    return pool([_discover_root(root) for root in roots])


def pool(manifests: Sequence[Manifest]) -> Manifest:
    """One manifest of several. Speakers keep their corpus (``Clip.speaker_id``), so two corpora's
    "03" stay two people; a file listed by two roots counts once. The pool's ``root`` is the folder
    holding all the roots, its ``roots`` every one of them."""
    if not manifests:
        raise DatasetError("nothing to pool: no manifests given")
    if len(manifests) == 1:
        return manifests[0]
    clips: list[Clip] = []
    duplicates: list[Path] = []
    seen: set[Path] = set()
    for manifest in manifests:
        for clip in manifest.clips:
            if clip.path in seen:
                duplicates.append(clip.path)
            else:
                seen.add(clip.path)
                clips.append(clip)
        duplicates += manifest.duplicates
    roots = list(dict.fromkeys(root for manifest in manifests for root in manifest.roots))
    unmatched = sorted({path for manifest in manifests for path in manifest.unmatched})
    root = Path(os.path.commonpath([_folder(root) for root in roots]))
    return Manifest(sorted(clips), root, unmatched, sorted(duplicates), roots)


def _discover_root(root: str | Path) -> Manifest:
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"data folder not found: {root}")
    root = root.resolve()
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DatasetError(f"expected a data folder or a .csv file, got {root}")
        return _discover_csv(root)
    return _discover_folder(root)


def corpus_stamp(*roots: str | Path) -> tuple:
    """What ``discover(*roots)`` depends on, cheaply: a CSV's size and modification time, or the
    modification time of every folder of a corpus (a file added, removed or renamed changes its
    folder's). Equal stamps, equal manifests: a cache keyed on it sees an edited corpus."""
    if len(roots) != 1:
        return tuple(corpus_stamp(root) for root in roots)
    root = Path(roots[0]).expanduser()
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
        parsed = parse_clip(path)
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
        check_csv_header(csv_path, reader.fieldnames)
        for row in reader:
            clip = parse_csv_row(csv_path, reader.line_num, row)
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


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _folder(root: Path) -> Path:
    """A root's folder: itself, or a CSV file's folder."""
    return root.parent if root.suffix.lower() == ".csv" else root
