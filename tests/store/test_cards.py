"""A model card in a user's words (ser.store.card): headline, caption, version title, creation time."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ser.config import FeatureConfig
from ser.store.card import ModelCard, created, headline_caption, headline_title, version_title

BASE = ModelCard(architecture="cnn", labels=("angry", "sad"), feature_config=FeatureConfig())


def card(**changes) -> ModelCard:
    return dataclasses.replace(BASE, **changes)


@pytest.mark.parametrize(
    ("data", "title", "caption"),
    [
        ({"corpora": ["tess"], "root": "tess", "speakers": ["OAF", "YAF"]}, "Accuracy on an actress it never heard",
         "TESS, leave one speaker out: each of its 2 speakers scored by a model trained without them"),
        ({"corpora": ["tess"], "root": "demo_corpus", "speakers": ["EF1", "EM1"]},
         "Accuracy on a synthetic voice it never heard", "the demo corpus, leave one speaker out"),
        ({"corpora": ["emodb", "ravdess"], "speakers": [str(i) for i in range(40)]},
         "Accuracy on voices it never heard",
         "EmoDB, RAVDESS, held-out speakers"),
    ],
)  # fmt: skip
def test_the_speaker_headline_says_whose_voice_and_how(data, title, caption):
    scored = card(data=data, evaluation={"speaker": {"accuracy": 0.5}})
    assert headline_title(scored, "speaker") == title
    assert headline_caption(scored, "speaker").startswith(caption)


def test_other_headlines():
    adapted = card(adaptation={"speaker": "YAF"}, data={"corpora": ["tess"]})
    assert headline_title(adapted, "speaker-adapted") == "Accuracy on YAF, adapted"
    assert headline_caption(adapted, "speaker-adapted") == "on YAF's own held-out clips, after adapting to YAF's voice"
    assert headline_title(BASE, "corpus") == "Accuracy on corpora it never heard"
    assert headline_caption(BASE, "random") == "its corpus, random split"


def test_created_sorts_a_card_without_a_time_first():
    assert created(BASE) == dt.datetime.min.replace(tzinfo=dt.UTC)
    assert created(card(created_at="2024-05-01T10:00:00")) == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert created(card(created_at="2024-05-01T10:00:00+02:00")).utcoffset() == dt.timedelta(hours=2)


def test_version_title():
    scored = card(evaluation={"speaker": {"accuracy": 0.736}}, created_at="2024-05-01T10:00:00+00:00")
    title = version_title("cnn-1", scored, active="cnn-1")
    assert title.startswith("cnn-1  (active) — cnn, ") and title.endswith(" 73.6%, created 2024-05-01 10:00")
    adapted = card(evaluation={"speaker-adapted": {"accuracy": 0.9}}, adaptation={"speaker": "YAF"})
    assert version_title("x", adapted, active=None) == "x — cnn, adapted to YAF: 90.0% on their held-out clips"
