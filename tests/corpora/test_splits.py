"""ser.corpora.splits: speaker-independent, leave-one-corpus-out, random, word and no-test splits of
a manifest, stratified and deterministic, on synthetic manifests (nothing is read from disk)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ser.config import EMOTIONS
from ser.corpora.datasets import Clip, Manifest
from ser.corpora.layouts import parse_path
from ser.corpora.splits import (
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
from ser.errors import DatasetError


def synthetic_manifest(n_speakers: int = 3, n_words: int = 20) -> Manifest:
    """A balanced TESS-like manifest: every speaker says every word in every emotion."""
    clips = [
        Clip(Path(f"/c/S{s}_w{w}_{e}.wav"), "tess", f"S{s}", f"w{w}", e)
        for s in range(n_speakers)
        for w in range(n_words)
        for e in EMOTIONS
    ]
    return Manifest(sorted(clips), Path("/c"), [])


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
