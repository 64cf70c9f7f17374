"""ser.corpora.layouts: the file-name layouts of the corpora (TESS, RAVDESS, CREMA-D, SAVEE, EmoDB,
EMOVO, ASED), emotion labels and their synonyms, and the quirks of real downloads.

Corpus trees are built from empty files (or tiny wav files): only names matter, nothing is decoded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ser.config import EMOTIONS
from ser.corpora.datasets import Clip, discover
from ser.corpora.layouts import canonical_emotion, parse_path
from ser.errors import DatasetError
from tests.corpora.helpers import (
    AUDIO_SUFFIXES,
    EMODB_NAMES,
    EMOVO_NAMES,
    KAGGLE,
    by_name,
    make_kaggle_tess,
    touch,
    write_wavs,
)

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
