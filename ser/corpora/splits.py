"""Evaluation protocols: a manifest -> train, validation and test parts.

``make_splits(manifest, kind)`` gives the split(s) of one protocol (``PROTOCOLS``). The
validation set, used for early stopping, is never taken from the test set: it is carved from
the training side, stratified by corpus and emotion. Speakers are grouped by ``Clip.speaker_id``,
so two corpora's "03" are two people, and two names of one recording (``Clip.recording``) always
land in the same part. Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from ser.corpora.datasets import Manifest
from ser.corpora.layouts import Clip
from ser.errors import DatasetError

# The evaluation protocols, each with what it measures, in the words the app uses.
PROTOCOLS = {
    "speaker": "speaker-independent (held-out speakers)",
    "corpus": "cross-corpus (leave one corpus out)",
    "random": "random split (speaker-dependent)",
    "words": "held-out words",
    "none": "none (every clip trains)",
}
N_SPEAKER_FOLDS = 5  # speaker-grouped folds; fewer speakers than this: leave one speaker out


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


def make_splits(
    manifest: Manifest,
    kind: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    n_folds: int = N_SPEAKER_FOLDS,
) -> list[Split]:
    """The split(s) of one evaluation protocol.

    ``"speaker"``: held-out speakers (``speaker_folds``: one per speaker below ``n_folds``
    speakers, else ``n_folds`` speaker-grouped folds); ``"corpus"``: leave one corpus out, one
    split per corpus; ``"random"``: stratified by emotion, speaker-dependent; ``"words"``: whole
    words or sentences held out; ``"none"``: no test set. The last three give a single split.
    """
    if kind == "speaker":
        return speaker_folds(manifest, val_fraction=val_fraction, seed=seed, n_folds=n_folds)
    if kind == "corpus":
        return corpus_folds(manifest, val_fraction=val_fraction, seed=seed)
    if kind == "random":
        return [split_random(manifest, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)]
    if kind == "words":
        return [split_words(manifest, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)]
    if kind == "none":
        return [split_none(manifest, val_fraction=val_fraction, seed=seed)]
    raise DatasetError(f"unknown split kind {kind!r}; use one of {', '.join(PROTOCOLS)}")


def applicable_protocols(manifest: Manifest) -> list[str]:
    """The protocols ``manifest`` can be split by: "corpus" needs two corpora, "speaker" two speakers,
    "words" a word or sentence for every clip."""
    needs = {
        "speaker": len({clip.speaker_id for clip in manifest.clips}) >= 2,
        "corpus": len(manifest.corpora) >= 2,
        "words": all(clip.text for clip in manifest.clips),
    }
    return [kind for kind in PROTOCOLS if needs.get(kind, True)]


def speaker_folds(
    manifest: Manifest, *, val_fraction: float = 0.15, seed: int = 0, n_folds: int = N_SPEAKER_FOLDS
) -> list[Split]:
    """Held-out speakers. Fewer than ``n_folds`` speakers: leave one speaker out, one split per
    speaker (TESS: test OAF, test YAF). Otherwise ``n_folds`` folds: the speakers of each corpus
    are shuffled with ``seed`` and dealt in turn, so every fold mixes corpora; each is tested once."""
    if n_folds < 2:
        raise DatasetError(f"speaker folds need n_folds of 2 or more, got {n_folds}")
    ids = sorted({clip.speaker_id for clip in manifest.clips})
    if len(ids) < 2:
        raise DatasetError(
            f"a speaker-independent split needs at least 2 speakers, the data has {len(ids)}: {manifest.speakers}"
        )
    if len(ids) < n_folds:
        return [_split_speaker_ids(manifest, {i}, val_fraction=val_fraction, seed=seed) for i in ids]
    groups = _deal_speakers(manifest, n_folds, random.Random(seed))
    return [
        _split_speaker_ids(manifest, group, val_fraction=val_fraction, seed=seed, fold=f"fold {i} of {n_folds}")
        for i, group in enumerate(groups, start=1)
    ]


def split_speakers(
    manifest: Manifest, test_speakers: Sequence[str], *, val_fraction: float = 0.15, seed: int = 0
) -> Split:
    """Test on ``test_speakers`` (named as ``Manifest.speaker_id`` takes them), train on everyone else."""
    names = [test_speakers] if isinstance(test_speakers, str) else list(test_speakers)
    if not names:
        raise DatasetError("split_speakers needs at least one test speaker")
    unknown = [name for name in names if not manifest.matching_speakers(name)]
    if unknown:
        raise DatasetError(f"unknown test speaker(s) {sorted(unknown)}; the data has {manifest.speakers}")
    held = {manifest.speaker_id(name) for name in names}
    return _split_speaker_ids(manifest, held, val_fraction=val_fraction, seed=seed)


def corpus_folds(manifest: Manifest, *, val_fraction: float = 0.15, seed: int = 0) -> list[Split]:
    """Leave one corpus out: for each corpus, a split that tests on all of it and trains on the
    others; validation comes from the training corpora, never from the test corpus."""
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    corpora = manifest.corpora
    if len(corpora) < 2:
        raise DatasetError(
            f"leaving one corpus out needs at least 2 corpora, the data has {len(corpora)}: {corpora}; "
            "pool several (e.g. `train tess/ ravdess/`) or use another split kind"
        )
    splits = []
    for corpus in corpora:
        test = sorted(clip for clip in manifest.clips if clip.corpus == corpus)
        train_side = [clip for clip in manifest.clips if clip.corpus != corpus]
        train, val = _stratified_take(train_side, val_fraction, random.Random(seed))
        others = "+".join(c for c in corpora if c != corpus)
        splits.append(Split(train, val, test, "corpus", f"leave one corpus out: train {others}, test {corpus}"))
    return splits


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


def _split_speaker_ids(manifest: Manifest, held: set[str], *, val_fraction: float, seed: int, fold: str = "") -> Split:
    """Test on the speakers ``held`` (``Clip.speaker_id``), train and validate on everyone else."""
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    train_side = [clip for clip in manifest.clips if clip.speaker_id not in held]
    test = sorted(clip for clip in manifest.clips if clip.speaker_id in held)
    if not train_side:
        raise DatasetError(f"testing on {sorted(held)} leaves no speaker to train on")
    train, val = _stratified_take(train_side, val_fraction, random.Random(seed))
    test_names = sorted({manifest.speaker_of(clip) for clip in test})
    train_names = sorted({manifest.speaker_of(clip) for clip in train_side})
    if fold:
        description = f"speaker-independent, {fold}: train {len(train_names)} speakers, test {_names(test_names)}"
    else:
        description = f"speaker-independent: train {_names(train_names)}, test {_names(test_names)}"
    return Split(train, val, test, "speaker", description)


def _deal_speakers(manifest: Manifest, n_folds: int, rng: random.Random) -> list[set[str]]:
    """``n_folds`` groups of speaker ids: each corpus's speakers shuffled, then dealt round the
    groups, the deal running on from one corpus to the next so group sizes differ by one at most."""
    groups: list[set[str]] = [set() for _ in range(n_folds)]
    turn = 0
    for corpus in manifest.corpora:
        ids = sorted({clip.speaker_id for clip in manifest.clips if clip.corpus == corpus})
        rng.shuffle(ids)
        for speaker_id in ids:
            groups[turn % n_folds].add(speaker_id)
            turn += 1
    return groups


def _stratified_take(
    clips: Sequence[Clip],
    fraction: float,
    rng: random.Random,
    key: Callable[[Clip], Hashable] = lambda clip: (clip.corpus, clip.emotion),
) -> tuple[list[Clip], list[Clip]]:
    """Split ``clips`` into (kept, taken), taking ``fraction`` of each group at random; two names
    of one recording (``Clip.recording``) are taken or kept together."""
    recordings: defaultdict[Hashable, list[Clip]] = defaultdict(list)
    for clip in sorted(clips):
        recordings[clip.recording].append(clip)
    groups: defaultdict[Hashable, list[list[Clip]]] = defaultdict(list)
    for unit in recordings.values():
        groups[key(unit[0])].append(unit)
    kept: list[Clip] = []
    taken: list[Clip] = []
    for name in sorted(groups, key=str):
        group = groups[name]
        rng.shuffle(group)
        n_take = _n_take(len(group), fraction)
        taken += [clip for unit in group[:n_take] for clip in unit]
        kept += [clip for unit in group[n_take:] for clip in unit]
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
