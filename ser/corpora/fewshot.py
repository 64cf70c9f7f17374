"""Few-shot clips: k labelled clips per emotion of one speaker to adapt a model on, and the
held-out clips to score it on (``ser.training.adapt``).

``choose_clips`` takes k clips per emotion of the speaker (chosen by a seed) and leaves the rest
of that speaker's clips, minus every word the chosen clips say, as the held-out test clips. No
Keras here: choosing the clips needs only the manifest.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ser.corpora.datasets import Clip, Manifest
from ser.errors import DatasetError


@dataclass
class AdaptationClips:
    labelled: list[Clip]  # k per emotion, for fine-tuning
    test: list[Clip]  # the speaker's other clips, minus every word said in ``labelled``
    speaker: str
    excluded_words: list[str]  # words of the labelled clips; no test clip says one of them


def choose_clips(
    manifest: Manifest, speaker: str, labels: Sequence[str], *, shots: int, seed: int = 0
) -> AdaptationClips:
    """k clips per emotion of ``speaker`` for adaptation, and the held-out test clips.

    Where the speaker says the same words in every emotion (TESS, the demo corpus), k whole words
    are taken in every emotion, so only k words leave the test set; otherwise k clips are drawn per
    emotion. Raises DatasetError for an unknown speaker, a missing emotion or too few clips.
    """
    by_emotion = _clips_by_emotion(manifest, speaker, labels, shots)
    rng = random.Random(seed)
    labelled = _whole_words(by_emotion, labels, shots, rng) or _per_emotion(by_emotion, labels, shots, rng)
    words = sorted({c.text for c in labelled if c.text})
    chosen = set(labelled)
    test = sorted(c for e in labels for c in by_emotion[e] if c not in chosen and c.text not in words)
    if not test:
        raise DatasetError(
            f"no test clips of {speaker} are left once the {len(words)} words of the adaptation clips are "
            "set aside; use fewer shots or add clips of other words"
        )
    return AdaptationClips(sorted(labelled), test, speaker, words)


def _clips_by_emotion(manifest: Manifest, speaker: str, labels: Sequence[str], shots: int) -> dict[str, list[Clip]]:
    """The clips of ``speaker`` per emotion of ``labels``, each emotion with more than ``shots``
    of them (the rest are the test clips); DatasetError otherwise."""
    if speaker not in manifest.speakers:
        raise DatasetError(f"unknown speaker {speaker!r}; the data has {', '.join(manifest.speakers) or 'none'}")
    by_emotion: defaultdict[str, list[Clip]] = defaultdict(list)
    for clip in manifest.clips:
        if manifest.speaker_of(clip) == speaker and clip.emotion in labels:
            by_emotion[clip.emotion].append(clip)
    missing = [e for e in labels if e not in by_emotion]
    if missing:
        raise DatasetError(
            f"speaker {speaker} has no clips of {', '.join(missing)}; adapting the model needs every emotion "
            f"it knows ({', '.join(labels)})"
        )
    short = {e: len(by_emotion[e]) for e in labels if len(by_emotion[e]) <= shots}
    if short:
        found = ", ".join(f"{e} {n}" for e, n in short.items())
        raise DatasetError(
            f"--shots {shots} needs more than {shots} clips of each emotion of {speaker} (the rest are the test "
            f"clips); found {found}; use fewer shots or add clips"
        )
    return by_emotion


def _whole_words(
    by_emotion: dict[str, list[Clip]], labels: Sequence[str], shots: int, rng: random.Random
) -> list[Clip]:
    """k words said in every emotion, each in every emotion; [] when there are not enough such words."""
    texts = [{c.text for c in by_emotion[e]} for e in labels]
    complete = sorted(set.intersection(*texts) - {""})
    # A word must also be left over, in every emotion, for the test set.
    if shots == 0 or len(complete) <= shots:
        return []
    words = set(rng.sample(complete, shots))
    picked = {}
    for e in labels:
        for clip in sorted(by_emotion[e]):
            if clip.text in words:
                picked.setdefault((e, clip.text), clip)  # one clip per (emotion, word)
    return list(picked.values())


def _per_emotion(
    by_emotion: dict[str, list[Clip]], labels: Sequence[str], shots: int, rng: random.Random
) -> list[Clip]:
    return [clip for e in labels for clip in rng.sample(sorted(by_emotion[e]), shots)]
