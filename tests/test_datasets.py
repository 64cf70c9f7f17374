"""Tests for ser.datasets: layouts, quirks of real downloads, CSV manifests and splits.

Corpus trees are built from empty files: only names matter, nothing is decoded.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ser.config import EMOTIONS
from ser.datasets import (
    Clip,
    Manifest,
    Split,
    canonical_emotion,
    discover,
    make_splits,
    parse_path,
    speaker_folds,
    split_none,
    split_random,
    split_speakers,
    split_words,
)
from ser.errors import DatasetError
from tests.conftest import DEMO_DIR, TESS_DIR, requires_tess

KAGGLE = "TESS Toronto emotional speech set data"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


def touch(root: Path, *names: str) -> list[Path]:
    """Create empty files (and their folders) under ``root``."""
    paths = [root / name for name in names]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return paths


def by_name(manifest: Manifest) -> dict[str, Clip]:
    return {clip.path.name: clip for clip in manifest.clips}


def synthetic_manifest(n_speakers: int = 3, n_words: int = 20) -> Manifest:
    """A balanced TESS-like manifest: every speaker says every word in every emotion."""
    clips = [
        Clip(Path(f"/c/S{s}_w{w}_{e}.wav"), "tess", f"S{s}", f"w{w}", e)
        for s in range(n_speakers)
        for w in range(n_words)
        for e in EMOTIONS
    ]
    return Manifest(sorted(clips), Path("/c"), [])


# ---------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("ps", "surprise"),
        ("PS", "surprise"),
        ("pleasant_surprise", "surprise"),
        ("Pleasant surprise", "surprise"),
        ("pleasant_surprised", "surprise"),
        ("pleasant-surprised", "surprise"),
        ("surprised", "surprise"),
        ("fearful", "fear"),
        ("Fear", "fear"),
        ("anger", "angry"),
        ("happiness", "happy"),
        ("sadness", "sad"),
        ("disgusted", "disgust"),
        ("neutrality", "neutral"),
        (" Neutral ", "neutral"),
        ("calm", "calm"),
        ("boredom", "boredom"),
        ("bored", "boredom"),
    ],
)
def test_canonical_emotion_accepts_synonyms(label: str, expected: str) -> None:
    assert canonical_emotion(label) == expected


@pytest.mark.parametrize("label", ["joyful", "", "contempt", "surprise!"])
def test_canonical_emotion_rejects_unknown_labels(label: str) -> None:
    with pytest.raises(DatasetError, match=f"unknown emotion label {label!r}"):
        canonical_emotion(label)


# ---------------------------------------------------------------------------- TESS


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


def test_discover_tess_kaggle_layout(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path)
    manifest = discover(tmp_path)
    clips = by_name(manifest)
    assert len(manifest) == 8
    assert manifest.corpora == ["tess"]
    assert manifest.speakers == ["OAF", "YAF"]
    assert clips["OAF_chair_fear.wav"] == Clip(
        tmp_path / KAGGLE / "OAF_Fear/OAF_chair_fear.wav", "tess", "OAF", "chair", "fear"
    )
    assert clips["OAF_chair_ps.wav"].emotion == "surprise"
    assert clips["YAF_chair_ps.wav"].emotion == "surprise"
    assert clips["OAF_chair_sad.wav"].emotion == "sad"
    assert clips["YAF_chair_angry.flac"].emotion == "angry"


def test_tess_misspelled_speaker_is_oaf(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path)
    clip = by_name(discover(tmp_path))["OA_bite_neutral.wav"]
    assert (clip.speaker, clip.text, clip.emotion) == ("OAF", "bite", "neutral")


def test_unmatched_audio_is_reported_and_other_files_ignored(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path)
    manifest = discover(tmp_path)
    assert [path.name for path in manifest.unmatched] == ["YAF_chair_angry (1).wav", "recording.wav"]
    assert all(clip.path.suffix in AUDIO_SUFFIXES for clip in manifest.clips)
    assert manifest.summary()["n_unmatched"] == 2


def test_double_nested_download_is_counted_once(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path)
    once = discover(tmp_path)
    make_kaggle_tess(tmp_path / KAGGLE)  # the same files again, one level deeper
    twice = discover(tmp_path)
    assert len(twice) == len(once)
    assert twice.counts() == once.counts()
    # The shallower copy is kept; the deeper one is recorded as a duplicate.
    assert [clip.path for clip in twice.clips] == [clip.path for clip in once.clips]
    assert len(twice.duplicates) == len(once)
    assert all(KAGGLE + "/" + KAGGLE in str(path) for path in twice.duplicates)


def test_tess_style_names_with_other_speakers_and_case(tmp_path: Path) -> None:
    touch(tmp_path, "EM1_angry/EM1_back_angry.ogg", "x/yaf_Chair_PS.WAV", "EF2_ps/EF2_back_ps.mp3")
    clips = by_name(discover(tmp_path))
    assert clips["EM1_back_angry.ogg"] == Clip(
        tmp_path / "EM1_angry/EM1_back_angry.ogg", "tess", "EM1", "back", "angry"
    )
    assert (clips["yaf_Chair_PS.WAV"].speaker, clips["yaf_Chair_PS.WAV"].text) == ("YAF", "chair")
    assert clips["EF2_back_ps.mp3"].emotion == "surprise"


# ---------------------------------------------------------------------------- other corpora


def test_discover_ravdess(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "Actor_01/03-01-05-01-02-01-01.wav",  # speech, angry, statement 02
        "Actor_01/03-01-02-02-01-02-01.wav",  # speech, calm
        "Actor_12/03-02-03-02-01-02-12.wav",  # song, happy, statement 01
        "Actor_12/03-01-08-01-01-01-12.wav",  # surprised
        "Actor_12/03-01-09-01-01-01-12.wav",  # emotion 09 does not exist
        "video/01-01-05-01-02-01-01.wav",  # the same recording from the audio-video zip
    )
    manifest = discover(tmp_path)
    clips = by_name(manifest)
    assert clips["03-01-05-01-02-01-01.wav"] == Clip(
        tmp_path / "Actor_01/03-01-05-01-02-01-01.wav", "ravdess", "A01", "02", "angry"
    )
    assert clips["03-01-02-02-01-02-01.wav"].emotion == "calm"
    song = clips["03-02-03-02-01-02-12.wav"]
    assert (song.speaker, song.text, song.emotion) == ("A12", "song-01", "happy")
    assert clips["03-01-08-01-01-01-12.wav"].emotion == "surprise"
    assert [path.name for path in manifest.unmatched] == ["03-01-09-01-01-01-12.wav"]
    assert [path.name for path in manifest.duplicates] == ["01-01-05-01-02-01-01.wav"]
    assert manifest.emotions == ["happy", "angry", "surprise", "calm"]


def test_discover_crema_d(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "AudioWAV/1001_IEO_HAP_HI.wav",
        "AudioWAV/1091_TSI_NEU_XX.wav",
        "AudioWAV/1002_DFA_FEA_LO.wav",
        "AudioWAV/1002_DFA_XYZ_LO.wav",
    )
    manifest = discover(tmp_path)
    clips = by_name(manifest)
    assert clips["1001_DFA_ANG_XX.wav"] == Clip(
        tmp_path / "AudioWAV/1001_DFA_ANG_XX.wav", "crema-d", "1001", "DFA", "angry"
    )
    assert clips["1001_IEO_HAP_HI.wav"].emotion == "happy"
    assert clips["1091_TSI_NEU_XX.wav"].speaker == "1091"
    assert clips["1002_DFA_FEA_LO.wav"].emotion == "fear"
    assert [path.name for path in manifest.unmatched] == ["1002_DFA_XYZ_LO.wav"]
    assert manifest.speakers == ["1001", "1002", "1091"]


def test_discover_savee_both_layouts(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "AudioData/DC/a01.wav",
        "AudioData/JK/su15.wav",
        "AudioData/ab/a01.wav",  # folder is not a speaker code
        "ALL/JE_sa03.wav",
        "ALL/KL_n30.wav",
        "ALL/KL_h07.wav",
        "ALL/KL_x07.wav",  # no such emotion code
    )
    manifest = discover(tmp_path)
    clips = {(clip.speaker, clip.path.name): clip for clip in manifest.clips}
    assert clips["DC", "a01.wav"] == Clip(tmp_path / "AudioData/DC/a01.wav", "savee", "DC", "01", "angry")
    assert clips["JK", "su15.wav"].emotion == "surprise"
    assert (clips["JE", "JE_sa03.wav"].emotion, clips["JE", "JE_sa03.wav"].text) == ("sad", "03")
    assert clips["KL", "KL_n30.wav"].emotion == "neutral"
    assert clips["KL", "KL_h07.wav"].emotion == "happy"
    assert sorted(path.name for path in manifest.unmatched) == ["KL_x07.wav", "a01.wav"]
    assert manifest.corpora == ["savee"]


def test_mixed_corpora_in_one_folder(tmp_path: Path) -> None:
    touch(tmp_path, "tess/OAF_back_angry.wav", "crema/1001_DFA_ANG_XX.wav", "savee/DC_d02.wav")
    assert discover(tmp_path).corpora == ["crema-d", "savee", "tess"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("OAF_back_angry.wav", ("tess", "OAF", "back", "angry")),
        ("03-01-06-01-01-01-24.wav", ("ravdess", "A24", "01", "fear")),
        ("1015_WSI_DIS_MD.wav", ("crema-d", "1015", "WSI", "disgust")),
        ("DC_f04.wav", ("savee", "DC", "04", "fear")),
        ("my_recording.wav", None),
        ("hello.wav", None),
    ],
)
def test_parse_path(name: str, expected: tuple[str, str, str, str] | None) -> None:
    clip = parse_path(Path("/any/folder") / name)
    got = None if clip is None else (clip.corpus, clip.speaker, clip.text, clip.emotion)
    assert got == expected


# ---------------------------------------------------------------------------- CSV


def test_discover_csv_with_relative_paths_and_synonyms(tmp_path: Path) -> None:
    absolute = touch(tmp_path, "elsewhere/take3.wav")[0]
    touch(tmp_path, "data/clips/a.wav", "data/clips/b.flac", "data/c.ogg")
    csv_path = tmp_path / "data/labels.csv"
    csv_path.write_text(
        "Path,Emotion,Speaker,text\n"
        "clips/a.wav,ps,ann,hello\n"
        "clips/b.flac,Fearful,bob,\n"
        "./c.ogg,pleasant surprise,ann,bye\n"
        f"{absolute},anger,,\n"
    )
    manifest = discover(csv_path)
    clips = by_name(manifest)
    assert len(manifest) == 4
    assert clips["a.wav"] == Clip(tmp_path / "data/clips/a.wav", "csv", "ann", "hello", "surprise")
    assert clips["b.flac"].emotion == "fear"
    assert clips["c.ogg"].path == tmp_path / "data/c.ogg"
    assert clips["take3.wav"] == Clip(absolute, "csv", "unknown", "", "angry")
    assert manifest.unmatched == []
    assert manifest.summary()["corpora"] == ["csv"]


def test_csv_without_speaker_column(tmp_path: Path) -> None:
    touch(tmp_path, "a.wav", "b.wav")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,emotion\na.wav,happy\nb.wav,sadness\n")
    manifest = discover(csv_path)
    assert manifest.speakers == ["unknown"]
    assert [clip.emotion for clip in manifest.clips] == ["happy", "sad"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,label\na.wav,happy\n", "missing column.*path, emotion"),
        ("path,speaker\na.wav,ann\n", "missing column.*emotion"),
        ("", "missing column"),
        ("path,emotion\na.wav,happy\na.wav,joyful\n", "line 3: unknown emotion label 'joyful'"),
        ("path,emotion\n,happy\n", "line 2: the path is empty"),
        ("path,emotion\nnope.wav,happy\n", "do not exist.*line 2: .*nope.wav"),
        ("path,emotion\n", "no clips found"),
    ],
)
def test_bad_csv_is_rejected(tmp_path: Path, content: str, message: str) -> None:
    touch(tmp_path, "a.wav")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        discover(csv_path)


# ---------------------------------------------------------------------------- errors


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"data folder not found: .*nowhere"):
        discover(tmp_path / "nowhere")


def test_empty_folder(tmp_path: Path) -> None:
    touch(tmp_path, "README.md", "sub/notes.txt")
    with pytest.raises(DatasetError, match=r"no clips found in .*no audio files"):
        discover(tmp_path)


def test_folder_of_unknown_audio(tmp_path: Path) -> None:
    touch(tmp_path, "one.wav", "two.mp3", "x/three.flac")
    with pytest.raises(DatasetError, match=r"3 audio files matched no known layout \(TESS.*e\.g\. one\.wav"):
        discover(tmp_path)


def test_root_that_is_neither_folder_nor_csv(tmp_path: Path) -> None:
    path = touch(tmp_path, "OAF_back_angry.wav")[0]
    with pytest.raises(DatasetError, match=r"expected a data folder or a \.csv file"):
        discover(path)


# ---------------------------------------------------------------------------- manifest


def test_manifest_helpers(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path)
    manifest = discover(tmp_path)
    assert manifest.emotions == ["neutral", "sad", "angry", "fear", "surprise"]
    assert manifest.counts()[("OAF", "neutral")] == 2
    assert sum(manifest.counts().values()) == len(manifest)
    only = manifest.filter(emotions=["ps", "Fear"], speakers=["YAF"])
    assert {(c.speaker, c.emotion) for c in only.clips} == {("YAF", "surprise"), ("YAF", "fear")}
    assert only.root == manifest.root and only.unmatched == manifest.unmatched


def test_manifest_summary_is_json_ready(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path)
    summary = discover(tmp_path).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["corpora"] == ["tess"]
    assert summary["speakers"] == ["OAF", "YAF"]
    assert summary["n_clips"] == 8
    assert summary["emotions"] == {"neutral": 2, "sad": 1, "angry": 1, "fear": 2, "surprise": 2}
    assert summary["unmatched_examples"] == [f"{KAGGLE}/YAF_angry/YAF_chair_angry (1).wav", "recording.wav"]


def test_summary_lists_at_most_five_unmatched(tmp_path: Path) -> None:
    touch(tmp_path, "OAF_back_angry.wav", *(f"odd{i}.wav" for i in range(8)))
    summary = discover(tmp_path).summary()
    assert summary["n_unmatched"] == 8
    assert len(summary["unmatched_examples"]) == 5


# ---------------------------------------------------------------------------- splits


def assert_disjoint(split: Split) -> None:
    train, val, test = ({clip.path for clip in part} for part in (split.train, split.val, split.test))
    assert not train & val and not train & test and not val & test


def test_split_speakers_keeps_test_speakers_apart() -> None:
    manifest = synthetic_manifest()
    split = split_speakers(manifest, ["S2"], seed=1)
    assert_disjoint(split)
    assert {clip.speaker for clip in split.test} == {"S2"}
    assert {clip.speaker for clip in split.train + split.val} == {"S0", "S1"}
    assert len(split.train) + len(split.val) + len(split.test) == len(manifest)
    assert split.description == "speaker-independent: train S0, S1, test S2"
    assert split.kind == "speaker"


def test_validation_is_stratified_by_emotion() -> None:
    split = split_speakers(synthetic_manifest(), ["S0"], val_fraction=0.15)
    per_emotion = Counter(clip.emotion for clip in split.val)
    assert set(per_emotion) == set(EMOTIONS)
    assert set(per_emotion.values()) == {6}  # 15% of 40 training clips per emotion


def test_speaker_folds_test_each_speaker_once() -> None:
    manifest = synthetic_manifest(n_speakers=2)
    folds = speaker_folds(manifest)
    assert [fold.description for fold in folds] == [
        "speaker-independent: train S1, test S0",
        "speaker-independent: train S0, test S1",
    ]
    for fold in folds:
        assert_disjoint(fold)
        assert not {c.speaker for c in fold.test} & {c.speaker for c in fold.train + fold.val}
    assert [f.description for f in make_splits(manifest, "speaker")] == [f.description for f in folds]


@pytest.mark.parametrize(
    ("speakers", "message"),
    [([], "at least one test speaker"), (["XX"], r"unknown test speaker\(s\) \['XX'\]")],
)
def test_split_speakers_rejects_bad_speakers(speakers: list[str], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        split_speakers(synthetic_manifest(), speakers)


def test_speaker_split_needs_two_speakers() -> None:
    with pytest.raises(DatasetError, match="at least 2 speakers"):
        make_splits(synthetic_manifest(n_speakers=1), "speaker")
    with pytest.raises(DatasetError, match="leaves no speaker to train on"):
        split_speakers(synthetic_manifest(n_speakers=1), ["S0"])


def test_split_random_is_stratified_and_deterministic() -> None:
    manifest = synthetic_manifest()
    split = split_random(manifest, test_fraction=0.2, seed=3)
    assert_disjoint(split)
    assert len(split.train) + len(split.val) + len(split.test) == len(manifest)
    for part, share in ((split.test, 0.2), (split.val, 0.8 * 0.15)):
        counts = Counter(clip.emotion for clip in part)
        assert all(abs(counts[emotion] / 60 - share) < 0.02 for emotion in EMOTIONS)
    assert split.description.startswith("random, speaker-dependent")
    again = split_random(manifest, test_fraction=0.2, seed=3)
    assert (again.train, again.val, again.test) == (split.train, split.val, split.test)
    other = split_random(manifest, test_fraction=0.2, seed=4)
    assert other.test != split.test


def test_split_words_holds_out_whole_words() -> None:
    manifest = synthetic_manifest()
    split = split_words(manifest, seed=2)
    assert_disjoint(split)
    texts = [{clip.text for clip in part} for part in (split.train, split.val, split.test)]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    assert all(texts)
    assert len(split.train) + len(split.val) + len(split.test) == len(manifest)
    assert split_words(manifest, seed=2).test == split.test


def test_split_words_needs_texts() -> None:
    clips = [Clip(Path(f"/c/{i}.wav"), "csv", "a", "", "happy") for i in range(10)]
    with pytest.raises(DatasetError, match="needs the word or sentence of every clip; 10 have none"):
        split_words(Manifest(clips, Path("/c/x.csv"), []))
    with pytest.raises(DatasetError, match="needs 3 or more different words"):
        split_words(synthetic_manifest(n_words=2))


def test_split_none_has_no_test_set() -> None:
    manifest = synthetic_manifest()
    split = split_none(manifest, seed=5)
    assert split.test == []
    assert_disjoint(split)
    assert len(split.train) + len(split.val) == len(manifest)
    assert set(Counter(clip.emotion for clip in split.val).values()) == {9}  # 15% of 60
    assert split.summary() == {
        "kind": "none",
        "description": split.description,
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": 0,
    }


@pytest.mark.parametrize("kind", ["random", "words", "none"])
def test_make_splits_single_split_kinds(kind: str) -> None:
    splits = make_splits(synthetic_manifest(), kind, seed=7)
    assert len(splits) == 1 and splits[0].kind == kind


def test_make_splits_rejects_unknown_kind() -> None:
    with pytest.raises(DatasetError, match="unknown split kind 'speakers'"):
        make_splits(synthetic_manifest(), "speakers")


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_bad_fractions_are_rejected(fraction: float) -> None:
    with pytest.raises(DatasetError, match=f"val_fraction must be in .*{fraction}"):
        split_none(synthetic_manifest(), val_fraction=fraction)


def test_zero_val_fraction_gives_empty_validation() -> None:
    assert split_random(synthetic_manifest(), val_fraction=0.0).val == []


# ---------------------------------------------------------------------------- real corpora


@requires_tess
def test_real_tess() -> None:
    manifest = discover(TESS_DIR)
    assert len(manifest) == 2240
    assert manifest.speakers == ["OAF", "YAF"]
    assert manifest.emotions == list(EMOTIONS)
    assert manifest.summary()["emotions"] == {emotion: 320 for emotion in EMOTIONS}
    assert set(manifest.counts().values()) == {160}
    assert len(manifest.counts()) == 14
    assert manifest.unmatched == [] and manifest.duplicates == []
    odd = [clip for clip in manifest.clips if clip.path.stem == "OA_bite_neutral"]
    assert [(clip.speaker, clip.emotion) for clip in odd] == [("OAF", "neutral")]


@requires_tess
def test_real_tess_speaker_folds() -> None:
    folds = make_splits(discover(TESS_DIR), "speaker")
    assert [fold.description for fold in folds] == [
        "speaker-independent: train YAF, test OAF",
        "speaker-independent: train OAF, test YAF",
    ]
    assert all(len(fold.test) == 1120 for fold in folds)


def test_demo_corpus() -> None:
    has_audio = DEMO_DIR.is_dir() and any(
        path.suffix.lower() in AUDIO_SUFFIXES for path in DEMO_DIR.rglob("*") if path.is_file()
    )
    if not has_audio:
        pytest.skip(f"no demo corpus audio at {DEMO_DIR} (generate it with assets/make_demo_corpus.py)")
    manifest = discover(DEMO_DIR)
    assert manifest.corpora == ["tess"]
    assert manifest.unmatched == []
    assert len(manifest.speakers) >= 2
    assert len(manifest) > 0
    assert len(make_splits(manifest, "speaker")) == len(manifest.speakers)
