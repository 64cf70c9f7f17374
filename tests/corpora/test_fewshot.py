"""ser.corpora.fewshot: the k labelled clips per emotion of one speaker that adapt a model, and the rest
of that speaker's clips, never seen by the adaptation, that score it."""

from __future__ import annotations

import pytest

from ser.corpora.datasets import discover
from ser.corpora.fewshot import choose_clips
from ser.errors import DatasetError
from tests.conftest import DEMO_DIR

LABELS = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]


@pytest.fixture(scope="module")
def demo():
    return discover(DEMO_DIR)


def test_adaptation_clips_are_whole_words_and_never_tested(demo):
    clips = choose_clips(demo, "EF1", LABELS, shots=3, seed=0)
    assert len(clips.labelled) == 21 and len(clips.excluded_words) == 3
    assert {c.speaker for c in clips.labelled + clips.test} == {"EF1"}
    assert sorted(c.emotion for c in clips.labelled) == sorted(LABELS * 3)
    assert {c.text for c in clips.labelled} == set(clips.excluded_words)
    assert not {c.text for c in clips.test} & set(clips.excluded_words)
    assert len(clips.test) == 140 - 7 * 3  # 20 words x 7 emotions, 3 words set aside
    assert choose_clips(demo, "EF1", LABELS, shots=3, seed=1).labelled != clips.labelled


@pytest.mark.parametrize(
    ("speaker", "shots", "drop", "message"),
    [
        ("NOBODY", 1, None, "unknown speaker 'NOBODY'"),
        ("EF1", 20, None, "needs more than 20 clips of each emotion"),
        ("EF1", 1, "sad", "has no clips of sad"),
    ],
)
def test_choose_clips_refuses_what_cannot_be_adapted(demo, speaker, shots, drop, message):
    manifest = demo.filter(emotions=[e for e in LABELS if e != drop]) if drop else demo
    with pytest.raises(DatasetError, match=message):
        choose_clips(manifest, speaker, LABELS, shots=shots, seed=0)


def test_clips_without_words_are_drawn_per_emotion(demo):
    from dataclasses import replace

    from ser.corpora.datasets import Manifest

    untexted = Manifest([replace(c, text="") for c in demo.clips], demo.root, [])
    clips = choose_clips(untexted, "EM2", LABELS, shots=2, seed=0)
    assert sorted(c.emotion for c in clips.labelled) == sorted(LABELS * 2)
    assert clips.excluded_words == [] and len(clips.test) == 140 - 14
    assert not set(clips.labelled) & set(clips.test)
