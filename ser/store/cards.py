"""A model card in a user's words: what its headline accuracy measures and where it was
measured, a model version's one-line title, and its creation time (for sorting versions).

No Streamlit here: ``ser.app.ui`` and the Train page show what these return.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ser.corpora.datasets import DEMO_CORPUS
from ser.corpora.layouts import LAYOUTS
from ser.corpora.splits import N_SPEAKER_FOLDS, PROTOCOLS
from ser.store.registry import ModelCard


def _on_demo_corpus(card: ModelCard) -> bool:
    return Path(str(card.data.get("root", ""))).name == DEMO_CORPUS.name


def _voice(card: ModelCard) -> str:
    """Whom a card's speaker-independent score is about: TESS is two actresses, one scored by a
    model trained on the other; the demo corpus is laid out as TESS but its voices are synthetic."""
    if _on_demo_corpus(card):
        return "a synthetic voice"
    return "an actress" if card.data.get("corpora") == ["tess"] else "voices"


def headline_title(card: ModelCard, protocol: str) -> str:
    """What a card's headline accuracy measures, in a user's words."""
    if protocol == "speaker-adapted":
        return f"Accuracy on {(card.adaptation or {}).get('speaker', '?')}, adapted"
    return {
        "corpus": "Accuracy on corpora it never heard",
        "speaker": f"Accuracy on {_voice(card)} it never heard",
    }.get(protocol, f"Accuracy ({protocol})")


def headline_caption(card: ModelCard, protocol: str) -> str:
    """Where and how the headline was measured: "TESS, leave one speaker out: ..."."""
    data = card.data
    names = {layout.lower(): layout for layout in LAYOUTS}  # "emodb" -> "EmoDB"
    corpora = ", ".join(names.get(c, c) for c in data.get("corpora", [])) or "its corpus"
    if _on_demo_corpus(card):
        corpora = "the demo corpus"
    speakers = data.get("speakers", [])
    if protocol == "speaker" and 0 < len(speakers) < N_SPEAKER_FOLDS:
        who = f"each of its {len(speakers)} speakers"
        return f"{corpora}, leave one speaker out: {who} scored by a model trained without them"
    if protocol == "speaker":
        return f"{corpora}, held-out speakers: each speaker scored by a model trained without them"
    if protocol == "corpus":
        return f"{corpora}, leave one corpus out: each corpus scored by a model trained on the others"
    if protocol == "speaker-adapted":
        speaker = (card.adaptation or {}).get("speaker", "?")
        return f"on {speaker}'s own held-out clips, after adapting to {speaker}'s voice"
    return f"{corpora}, {protocol} split"


def created(card: ModelCard) -> dt.datetime:
    """A card's creation time (its "created_at"), for sorting; the oldest possible when it has none."""
    try:
        when = dt.datetime.fromisoformat(card.created_at)
    except (TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def version_title(name: str, card: ModelCard, active: str | None) -> str:
    """A model version's title: "NAME  (active) — ARCH, PROTOCOL ACCURACY, created WHEN"."""
    title = f"{name}{'  (active)' if name == active else ''} — {card.architecture}"
    headline = card.headline()
    if headline is not None:
        protocol, scores = headline
        if card.adaptation is not None:
            speaker = card.adaptation.get("speaker", "?")
            title += f", adapted to {speaker}: {scores['accuracy']:.1%} on their held-out clips"
        else:
            title += f", {PROTOCOLS.get(protocol, protocol)} {scores['accuracy']:.1%}"
    if card.created_at:
        title += f", created {created(card):%Y-%m-%d %H:%M}"
    return title
