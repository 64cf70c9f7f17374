"""Tests for ser.datasets, ser.layouts and ser.splits: layouts, quirks of real downloads, CSV
manifests, pools of several corpora, and splits.

Corpus trees are built from empty files (or tiny wav files): only names matter, nothing is decoded.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.config import EMOTIONS
from ser.datasets import Clip, Manifest, corpus_stamp, discover, pool
from ser.errors import DatasetError
from ser.layouts import canonical_emotion, parse_path
from ser.splits import (
    Split,
    applicable_protocols,
    corpus_folds,
    make_splits,
    speaker_folds,
    split_none,
    split_random,
    split_speakers,
    split_words,
)
from tests.conftest import DEMO_DIR, TESS_DIR, requires_tess

DATA_DIR = TESS_DIR.parent  # ../shared/data: tess/, ravdess/, emodb/ side by side
EMODB_DIR = DATA_DIR / "emodb"
requires_data = pytest.mark.skipif(
    not all((DATA_DIR / name).is_dir() for name in ("tess", "ravdess", "emodb")),
    reason=f"real corpora not found at {DATA_DIR}/{{tess,ravdess,emodb}} (../shared is absent on this machine)",
)
requires_emodb = pytest.mark.skipif(
    not EMODB_DIR.is_dir(), reason=f"real EmoDB not found at {EMODB_DIR} (../shared is absent on this machine)"
)

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
        ("sur", "surprise"),
        ("fru", "frustrated"),
        ("Exc", "excited"),
        ("contempt", "contempt"),
        ("oth", "other"),
    ],
)
def test_canonical_emotion_accepts_synonyms(label: str, expected: str) -> None:
    assert canonical_emotion(label) == expected


@pytest.mark.parametrize("label", ["joyful", "", "xxx", "surprise!"])
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


def test_discover_emodb(tmp_path: Path) -> None:
    write_wavs(tmp_path, *EMODB_NAMES, "03a01Wa-copy.wav")
    manifest = discover(tmp_path)
    assert {clip.path.name: clip.emotion for clip in manifest.clips} == EMODB_NAMES
    assert by_name(manifest)["03b01Aa.wav"] == Clip(tmp_path / "03b01Aa.wav", "emodb", "03", "b01", "fear")
    assert manifest.corpora == ["emodb"] and manifest.speakers == ["03", "16"]
    assert [path.name for path in manifest.unmatched] == ["03a01Wa-copy.wav"]
    assert manifest.summary()["not_modelled"] == {"boredom": 1}
    assert manifest.summary()["n_modelled"] == 6


def test_discover_emovo(tmp_path: Path) -> None:
    write_wavs(tmp_path, *EMOVO_NAMES)
    manifest = discover(tmp_path)
    assert {f"{clip.path.parent.name}/{clip.path.name}": clip.emotion for clip in manifest.clips} == EMOVO_NAMES
    clip = by_name(manifest)["dis-f1-b1.wav"]
    assert clip == Clip(tmp_path / "f1/dis-f1-b1.wav", "emovo", "f1", "b1", "disgust")
    assert clip.speaker_id == "emovo/f1"
    assert manifest.speakers == ["f1", "f2", "f3", "m1", "m2", "m3"]
    assert manifest.emotions == list(EMOTIONS)


def test_discover_ased_names_a_speaker_by_number_not_gender_code(tmp_path: Path) -> None:
    touch(tmp_path, "01Neutral/n1-01-01-01-29.flac", "04Sad/S4-04-02-01-29.flac", "05Angry/a5-02-01-02-29.flac",
          "03Happy/h3-05-01-02-07.flac")  # fmt: skip
    manifest = discover(tmp_path)
    assert manifest.corpora == ["ased"] and manifest.speakers == ["07", "29"] and manifest.unmatched == []
    assert Counter(clip.speaker_id for clip in manifest.clips) == {"ased/29": 3, "ased/07": 1}
    assert manifest.emotions == ["neutral", "happy", "sad", "angry"]


def test_corpora_side_by_side_are_each_parsed_by_their_own_layout(tmp_path: Path) -> None:
    write_wavs(tmp_path / "emodb", *EMODB_NAMES)
    write_wavs(tmp_path / "emovo", *EMOVO_NAMES)
    touch(tmp_path, "tess/OAF_angry/OAF_back_angry.wav", "ravdess/Actor_03/03-01-02-01-01-01-03.wav")
    manifest = discover(tmp_path)
    assert manifest.corpora == ["emodb", "emovo", "ravdess", "tess"]
    assert Counter(clip.corpus for clip in manifest.clips) == {"emodb": 7, "emovo": 7, "ravdess": 1, "tess": 1}
    assert all(clip.path.relative_to(tmp_path).parts[0] == clip.corpus for clip in manifest.clips)
    assert manifest.speakers[:3] == ["emodb/03", "emodb/16", "emovo/f1"]
    assert "ravdess/A03" in manifest.speakers and "tess/OAF" in manifest.speakers
    assert manifest.summary()["not_modelled"] == {"calm": 1, "boredom": 1}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("OAF_back_angry.wav", ("tess", "OAF", "back", "angry")),
        ("03-01-06-01-01-01-24.wav", ("ravdess", "A24", "01", "fear")),
        ("1015_WSI_DIS_MD.wav", ("crema-d", "1015", "WSI", "disgust")),
        ("DC_f04.wav", ("savee", "DC", "04", "fear")),
        ("03a01Fa.wav", ("emodb", "03", "a01", "happy")),
        ("16b10Lb.flac", ("emodb", "16", "b10", "boredom")),
        ("dis-f1-b1.wav", ("emovo", "f1", "b1", "disgust")),
        ("SOR-M3-N5.wav", ("emovo", "m3", "n5", "surprise")),
        ("f2-03-02-02-65.flac", ("ased", "65", "03", "fear")),
        ("n1-01-01-01-01.flac", ("ased", "01", "01", "neutral")),
        ("S4-04-02-01-29.flac", ("ased", "29", "04", "sad")),  # ASED's one upper-case letter
        ("a5-07-03-02-12.wav", ("ased", "12", "07", "angry")),
        ("h2-01-01-01-01.flac", None),  # a letter with another emotion's folder number
        ("03a01Xa.wav", None),  # no such EmoDB emotion letter
        ("dis-f4-b1.wav", None),  # EMOVO has speakers f1-f3, m1-m3
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


def test_csv_with_iemocap_labels_keeps_and_counts_the_emotions_not_modelled(tmp_path: Path) -> None:
    """IEMOCAP's categories as its sessions' label files abbreviate them: frustrated and excited are kept
    in the manifest and counted, and only the model's seven are trained and scored."""
    labels = ["neu", "fru", "ang", "sad", "hap", "exc", "sur", "fea", "dis", "oth", "fru"]
    touch(tmp_path, *(f"Ses01F_{i:03d}.wav" for i in range(len(labels))))
    csv_path = tmp_path / "labels.csv"
    rows = "".join(f"Ses01F_{i:03d}.wav,{label},Ses01F\n" for i, label in enumerate(labels))
    csv_path.write_text("path,emotion,speaker\n" + rows)
    manifest = discover(csv_path)
    summary = manifest.summary()
    assert summary["not_modelled"] == {"frustrated": 2, "excited": 1, "other": 1}
    assert summary["n_modelled"] == 7
    assert manifest.filter(emotions=EMOTIONS).emotions == list(EMOTIONS)


def test_csv_corpus_column(tmp_path: Path) -> None:
    touch(tmp_path, "a.wav", "b.wav", "c.wav")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,emotion,speaker,corpus\na.wav,happy,03,Studio\nb.wav,sad,03,\nc.wav,sad,04,studio\n")
    manifest = discover(csv_path)
    assert [clip.corpus for clip in manifest.clips] == ["studio", "csv", "studio"]
    assert manifest.speakers == ["csv/03", "studio/03", "studio/04"]  # two corpora: named with them


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


# ---------------------------------------------------------------------------- pools


def clashing_pool(tmp_path: Path) -> Manifest:
    """EmoDB (speakers 03, 16) and a studio CSV corpus whose speakers are also called 03 and 16."""
    write_wavs(tmp_path / "emodb", *EMODB_NAMES)
    write_wavs(tmp_path / "studio", "x1.wav", "x2.wav", "x3.wav", "x4.wav")
    csv_path = tmp_path / "studio/labels.csv"
    csv_path.write_text(
        "path,emotion,speaker,corpus\nx1.wav,happy,03,studio\nx2.wav,sad,03,studio\n"
        "x3.wav,surprise,16,studio\nx4.wav,angry,16,studio\n"
    )
    return discover(tmp_path / "emodb", csv_path)


def test_pooled_speakers_with_the_same_code_never_merge(tmp_path: Path) -> None:
    manifest = clashing_pool(tmp_path)
    assert manifest.pooled and manifest.corpora == ["emodb", "studio"]
    assert manifest.speakers == ["emodb/03", "emodb/16", "studio/03", "studio/16"]
    assert manifest.clips_per_speaker() == {"emodb/03": 4, "emodb/16": 3, "studio/03": 2, "studio/16": 2}
    assert manifest.counts()[("studio/03", "happy")] == 1 and manifest.counts()[("emodb/03", "angry")] == 1
    assert manifest.speaker_id("emodb/03") == "emodb/03"
    with pytest.raises(DatasetError, match="speaker '03' is in several corpora; name one of emodb/03, studio/03"):
        manifest.speaker_id("03")
    with pytest.raises(DatasetError, match="unknown speaker 'OAF'"):
        manifest.speaker_id("OAF")
    with pytest.raises(DatasetError, match="in several corpora"):
        manifest.filter(speakers=["16"])
    assert {clip.path.name for clip in manifest.filter(speakers=["studio/03"]).clips} == {"x1.wav", "x2.wav"}
    folds = make_splits(manifest, "speaker")  # 4 speakers: leave one out, by corpus-qualified speaker
    assert [fold.description.split("test ")[1] for fold in folds] == manifest.speakers
    for fold in folds:
        (held,) = {clip.speaker_id for clip in fold.test}
        assert held not in {clip.speaker_id for clip in fold.train + fold.val}


def test_pool_root_sources_and_summary(tmp_path: Path) -> None:
    manifest = clashing_pool(tmp_path)
    assert manifest.root == tmp_path.resolve()
    assert manifest.roots == [(tmp_path / "emodb").resolve(), (tmp_path / "studio/labels.csv").resolve()]
    summary = manifest.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["sources"] == ["emodb", "studio/labels.csv"]
    assert summary["corpora"] == ["emodb", "studio"]
    assert summary["clips_per_corpus"] == {"emodb": 7, "studio": 4}
    assert summary["not_modelled"] == {"boredom": 1} and summary["n_modelled"] == 10
    assert all(str(tmp_path) not in json.dumps(value) for key, value in summary.items() if key != "root")


def test_single_corpus_names_stay_plain_and_qualified_names_work(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path)
    manifest = discover(tmp_path)
    assert not manifest.pooled and manifest.speakers == ["OAF", "YAF"]
    assert manifest.speaker_id("OAF") == manifest.speaker_id("tess/OAF") == "tess/OAF"
    assert manifest.filter(speakers=["tess/YAF"]).clips == manifest.filter(speakers=["YAF"]).clips
    assert manifest.filter(speakers=["nobody"]).clips == []
    assert split_speakers(manifest, ["tess/YAF"]).description == "speaker-independent: train OAF, test YAF"


def test_discover_several_roots_counts_a_file_once(tmp_path: Path) -> None:
    make_kaggle_tess(tmp_path / "tess")
    write_wavs(tmp_path / "emodb", *EMODB_NAMES)
    both = discover(tmp_path / "tess", tmp_path / "emodb", tmp_path)  # the last root holds the first two
    alone = discover(tmp_path)
    assert both.clips == alone.clips and both.root == alone.root
    assert len(both.duplicates) == len(alone.clips) + len(alone.duplicates)
    assert pool([alone]) is alone
    with pytest.raises(DatasetError, match="no data given"):
        discover()
    with pytest.raises(DatasetError, match="data folder not found"):
        discover(tmp_path / "emodb", tmp_path / "nowhere")


def test_corpus_stamp_of_several_roots(tmp_path: Path) -> None:
    write_wavs(tmp_path / "a", "03a01Wa.wav")
    write_wavs(tmp_path / "b", "f1/dis-f1-b1.wav")
    assert corpus_stamp(tmp_path / "a", tmp_path / "b") == (corpus_stamp(tmp_path / "a"), corpus_stamp(tmp_path / "b"))


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


def synthetic_pool(
    corpora: tuple[str, ...] = ("a", "b", "c"), n_speakers: int = 4, lacking: dict[str, str] | None = None
) -> Manifest:
    """Corpora whose speakers share the codes S0, S1, ...; ``lacking``: corpus -> an emotion it has none of."""
    lacking = lacking or {}
    clips = [
        Clip(Path(f"/c/{c}/S{s}_w{w}_{e}.wav"), c, f"S{s}", f"w{w}", e)
        for c in corpora
        for s in range(n_speakers)
        for w in range(10)
        for e in EMOTIONS
        if lacking.get(c) != e
    ]
    return Manifest(sorted(clips), Path("/c"), [])


def test_corpus_folds_never_train_or_validate_on_the_test_corpus() -> None:
    manifest = synthetic_pool()
    folds = make_splits(manifest, "corpus", seed=3)
    assert [fold.description for fold in folds] == [
        "leave one corpus out: train b+c, test a",
        "leave one corpus out: train a+c, test b",
        "leave one corpus out: train a+b, test c",
    ]
    for fold, corpus in zip(folds, ("a", "b", "c"), strict=True):
        assert_disjoint(fold)
        assert {clip.corpus for clip in fold.test} == {corpus} and len(fold.test) == len(manifest) / 3
        assert corpus not in {clip.corpus for clip in fold.train + fold.val}
        assert {clip.corpus for clip in fold.val} == {"a", "b", "c"} - {corpus}  # every training corpus validates
        assert fold.kind == "corpus"
    with pytest.raises(DatasetError, match="leaving one corpus out needs at least 2 corpora"):
        corpus_folds(synthetic_manifest())


def test_speaker_folds_of_a_pool_group_corpus_qualified_speakers() -> None:
    manifest = synthetic_pool()  # 3 corpora x S0-S3: 12 people, 4 codes
    folds = make_splits(manifest, "speaker", seed=1)
    assert len(folds) == 5
    tested = [{clip.speaker_id for clip in fold.test} for fold in folds]
    assert sorted(len(group) for group in tested) == [2, 2, 2, 3, 3]
    assert sorted(i for group in tested for i in group) == sorted({clip.speaker_id for clip in manifest.clips})
    for fold, group in zip(folds, tested, strict=True):
        assert_disjoint(fold)
        assert not group & {clip.speaker_id for clip in fold.train + fold.val}
        assert len({clip.corpus for clip in fold.test}) >= 2  # each fold mixes corpora
        assert fold.description.startswith("speaker-independent, fold ")
        assert ", ".join(sorted(group)) in fold.description
    again = [{c.speaker_id for c in fold.test} for fold in make_splits(manifest, "speaker", seed=1)]
    assert again == tested
    assert [{c.speaker_id for c in f.test} for f in make_splits(manifest, "speaker", seed=2)] != tested
    assert len(speaker_folds(manifest, n_folds=12)) == 12
    assert len(speaker_folds(manifest, n_folds=13)) == 12  # fewer speakers than folds: leave one out
    with pytest.raises(DatasetError, match="n_folds of 2 or more"):
        speaker_folds(manifest, n_folds=1)


@pytest.mark.parametrize("kind", ["speaker", "corpus", "random", "words", "none"])
def test_a_pool_where_one_corpus_lacks_an_emotion_splits(kind: str) -> None:
    manifest = synthetic_pool(corpora=("emodb", "tess"), lacking={"emodb": "surprise"})
    for fold in make_splits(manifest, kind, seed=4):
        assert_disjoint(fold)
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(manifest)
        val = Counter(clip.emotion for clip in fold.val)
        assert set(val) >= set(EMOTIONS) - {"surprise"}
        assert all(clip.corpus == "tess" for clip in fold.train + fold.val + fold.test if clip.emotion == "surprise")


def test_two_names_of_one_ravdess_recording_stay_together() -> None:
    same = ("03-01-03-01-02-01-07", "03-01-03-01-02-02-07")  # upstream, the very same recording
    clips = [parse_path(f"/r/Actor_07/{stem}.flac") for stem in same]
    clips += [parse_path(f"/r/Actor_07/03-01-03-01-{s}-{r}-07.flac") for s in ("01", "02") for r in ("01", "02")]
    clips += [parse_path(f"/r/Actor_08/03-01-03-01-{s}-{r}-08.flac") for s in ("01", "02") for r in ("01", "02")]
    manifest = Manifest(sorted(set(clips)), Path("/r"), [])
    assert len(manifest) == 8 and len({clip.recording for clip in manifest.clips}) == 7
    for seed in range(30):
        split = split_random(manifest, test_fraction=0.3, val_fraction=0.3, seed=seed)
        parts = [{clip.path.stem for clip in part} for part in (split.train, split.val, split.test)]
        assert sum(set(same) <= part for part in parts) == 1, parts


def test_applicable_protocols() -> None:
    assert applicable_protocols(synthetic_pool()) == ["speaker", "corpus", "random", "words", "none"]
    assert applicable_protocols(synthetic_manifest()) == ["speaker", "random", "words", "none"]
    untexted = Manifest([Clip(Path("/c/a.wav"), "csv", "unknown", "", "happy")], Path("/c/x.csv"), [])
    assert applicable_protocols(untexted) == ["random", "none"]


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


@requires_emodb
def test_real_emodb() -> None:
    manifest = discover(EMODB_DIR)
    assert len(manifest) == 535 and manifest.unmatched == [] and manifest.corpora == ["emodb"]
    assert manifest.speakers == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    assert manifest.summary()["emotions"] == {
        "neutral": 79, "happy": 71, "sad": 62, "angry": 127, "fear": 69, "disgust": 46, "boredom": 81,
    }  # fmt: skip
    assert "surprise" not in manifest.emotions


@requires_data
def test_real_corpora_side_by_side() -> None:
    manifest = discover(DATA_DIR)
    summary = manifest.summary()
    assert manifest.corpora == ["ased", "emodb", "ravdess", "tess"]
    assert len(manifest.speakers) == 93 and manifest.speakers[:2] == ["ased/01", "ased/02"]
    assert summary["clips_per_corpus"] == {"ased": 1256, "emodb": 535, "ravdess": 960, "tess": 2240}
    assert summary["n_modelled"] == 3526 + 1256
    assert summary["not_modelled"] == {"calm": 128, "boredom": 81}
    assert manifest.unmatched == [] and manifest.duplicates == []
    corpora = (DATA_DIR / name for name in ("tess", "ravdess", "emodb", "ased"))
    assert discover(*corpora).clips == manifest.clips
    folds = make_splits(manifest, "corpus")
    assert [len(fold.test) for fold in folds] == [1256, 535, 960, 2240]
    speaker = make_splits(manifest, "speaker")
    assert len(speaker) == 5
    assert sum(len({clip.speaker_id for clip in fold.test}) for fold in speaker) == 93
