"""ser.corpora.datasets: discovering a corpus (a folder or a CSV manifest), errors, the manifest
and its summary, pools of several corpora, and the real corpora in ../shared.

Corpus trees are built from empty files (or tiny wav files): only names matter, nothing is decoded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ser.config import EMOTIONS
from ser.corpora.datasets import Clip, Manifest, corpus_stamp, discover, pool
from ser.corpora.splits import make_splits, split_speakers
from ser.errors import DatasetError
from tests.conftest import DEMO_DIR, TESS_DIR, requires_tess
from tests.corpora.helpers import AUDIO_SUFFIXES, EMODB_NAMES, KAGGLE, by_name, make_kaggle_tess, touch, write_wavs

DATA_DIR = TESS_DIR.parent  # ../shared/data: tess/, ravdess/, emodb/ side by side
EMODB_DIR = DATA_DIR / "emodb"
requires_data = pytest.mark.skipif(
    not all((DATA_DIR / name).is_dir() for name in ("tess", "ravdess", "emodb")),
    reason=f"real corpora not found at {DATA_DIR}/{{tess,ravdess,emodb}} (../shared is absent on this machine)",
)
requires_emodb = pytest.mark.skipif(
    not EMODB_DIR.is_dir(), reason=f"real EmoDB not found at {EMODB_DIR} (../shared is absent on this machine)"
)


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
