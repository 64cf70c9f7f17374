"""The model card: everything a reader, or the predictor, needs to know about a bundle (``card.json``).

``ModelCard`` is the card's type, read and written here for every schema so far; a training run
makes one (``ser.training.train.build_card``) and an adaptation derives one from its base's
(``ser.training.adapt.adapted_card``). Below the type, the card in a user's words: what its headline
measures and where, a model version's one-line title, and its creation time (for sorting versions).
No Keras and no Streamlit here: the sidebar, the Train page and ``models`` show what these return.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import importlib.metadata
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser import __version__
from ser.config import AudioConfig, FeatureConfig
from ser.corpora.datasets import DEMO_CORPUS
from ser.corpora.layouts import LAYOUTS
from ser.corpora.splits import N_SPEAKER_FOLDS, PROTOCOLS
from ser.errors import ModelError

CARD_FILE = "card.json"
# 1: the untyped dict of the first bundles (no schema_version, no audio_config); 2: typed; 3: the answer
# settings in the card (``settings``, the normalisation's caps) and each part of a model in its own file
SCHEMA_VERSION = 3
# How a bundle's scores were measured: exactly what ``predict`` answers for each clip.
EVALUATION_POLICY = (
    "clip: trimmed speech in windows, mean of the speech windows' probabilities; a corpus clip with no "
    "speech window is scored on all its windows (serving answers such a recording 'no speech')"
)
# Which recorded protocol headlines a card, best first: voices the model never heard before any other.
HEADLINE_ORDER = ("corpus", "speaker", "speaker-adapted", "words", "random")


@dataclass(frozen=True)
class ModelCard:
    """Everything a reader, or the predictor, needs to know about a bundle; ``card.json`` on disk."""

    architecture: str  # a name in ser.models.archs.ARCHITECTURES
    labels: tuple[str, ...]  # the model's outputs, in order
    feature_config: FeatureConfig  # how the model's input is computed
    audio_config: AudioConfig = AudioConfig()  # trimming and the clip limits it was trained with
    description: str = ""
    train_config: dict[str, Any] = field(default_factory=dict)  # ser.config.TrainConfig, as a dict
    data: dict[str, Any] = field(default_factory=dict)  # what it was trained on (Manifest.summary + split)
    history: tuple[dict[str, Any], ...] = ()  # one ser.config.EpochLog per epoch, as dicts
    best_epoch: int | None = None
    evaluation: dict[str, dict[str, Any]] = field(default_factory=dict)  # protocol -> scores
    evaluation_policy: str = EVALUATION_POLICY
    train_time_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""  # ISO 8601, UTC
    command: str = ""  # the command line (or page action) that made it
    normalisation: dict[str, Any] | None = None  # ser.voice.profile.Normalisation, for a speaker-normalised model
    settings: dict[str, Any] | None = None  # the kind's answer settings (ser.models.svm.AnswerSettings)
    adaptation: dict[str, Any] | None = None  # ser.training.adapt: base model, speaker, clips, before/after
    base_evaluation: dict[str, dict[str, Any]] | None = None  # an adapted card: its base's evaluation
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """A card from ``card.json``'s contents, any schema version so far. Raises ModelError."""
        missing = [k for k in ("labels", "feature_config", "architecture") if k not in data]
        if missing:
            raise ModelError(f"the card lacks {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["labels"] = tuple(data["labels"])
            values["feature_config"] = FeatureConfig.from_dict(data["feature_config"])
            values["audio_config"] = _audio_config(data.get("audio_config"))
            values["history"] = tuple(data.get("history") or ())
            values["schema_version"] = int(data.get("schema_version", 1))
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise ModelError(f"the card is malformed ({e})") from e

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data.update(
            labels=list(self.labels),
            feature_config=self.feature_config.to_dict(),
            audio_config=dataclasses.asdict(self.audio_config),
            history=list(self.history),
        )
        return {k: v for k, v in data.items() if v is not None}

    def headline(self) -> tuple[str, dict[str, Any]] | None:
        """The protocol and scores that headline this card (``HEADLINE_ORDER``), or None."""
        for protocol in HEADLINE_ORDER:
            if "accuracy" in self.evaluation.get(protocol, {}):
                return protocol, self.evaluation[protocol]
        return None


def _audio_config(data: dict[str, Any] | None) -> AudioConfig:
    if not data:  # schema 1 cards were all trained with the defaults
        return AudioConfig()
    known = {f.name for f in dataclasses.fields(AudioConfig)}
    return AudioConfig(**{k: v for k, v in data.items() if k in known})


# The distributions a package's code can come from: requirements.txt installs TensorFlow's CPU build
# (80-90 MB less memory, 1 s less to import, no GPU kernels); a GPU machine may have the full one.
DISTRIBUTIONS = {"tensorflow": ("tensorflow-cpu", "tensorflow")}
PACKAGES = ("tensorflow", "keras", "librosa", "numpy", "scikit-learn", "opensmile", "onnxruntime", "silero-vad")


def library_versions() -> dict[str, str]:
    """The versions that made a bundle, read from package metadata (no import of TensorFlow)."""
    versions = {"ser": __version__, "python": platform.python_version()}
    for package in PACKAGES:
        for distribution in DISTRIBUTIONS.get(package, (package,)):
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions[package] = importlib.metadata.version(distribution)
                break
    return versions


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_card(path: Path) -> ModelCard:
    """The card of a bundle folder, checked for the fields serving needs. Parsed once per version
    of the file (the app reads the served card on every page run)."""
    card_path = Path(path) / CARD_FILE
    try:
        stat = card_path.stat()
    except FileNotFoundError as e:
        raise ModelError(f"{path} is not a model bundle: {CARD_FILE} is missing") from e
    except OSError as e:
        raise ModelError(f"the card of {path} cannot be read ({e}); the bundle is damaged") from e
    return _parse_card(card_path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _parse_card(card_path: Path, size: int, mtime_ns: int) -> ModelCard:
    try:
        data = json.loads(card_path.read_text())
    except FileNotFoundError as e:
        raise ModelError(f"{card_path.parent} is not a model bundle: {CARD_FILE} is missing") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"the card of {card_path.parent} cannot be read ({e}); the bundle is damaged") from e
    if not isinstance(data, dict):
        raise ModelError(f"the card of {card_path.parent} is not a JSON object; the bundle is damaged")
    try:
        return ModelCard.from_dict(data)
    except ModelError as e:
        raise ModelError(f"the card of {card_path.parent} cannot be used: {e}; the bundle is incomplete") from e


def write_card(card: ModelCard, folder: Path) -> None:
    (Path(folder) / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n")


def compare_on_protocol(cards: dict[str, ModelCard], protocol: str) -> list[dict[str, Any]]:
    """One row per named card: accuracy and macro-F1 under ``protocol`` as its card records them,
    with the corpus they were measured on (None where the card has no such evaluation), so two
    models are compared on the same protocol and a difference of corpus is visible."""
    rows = []
    for name, card in cards.items():
        scores, data = card.evaluation.get(protocol, {}), card.data
        rows.append(
            {
                "model": name,
                "architecture": card.architecture,
                "accuracy": scores.get("accuracy"),
                "macro_f1": scores.get("macro_f1"),
                "corpus": data.get("root"),
                "speakers": ", ".join(data.get("speakers", [])),
                "clips": data.get("n_clips"),
            }
        )
    return rows


# --- the card in a user's words ------------------------------------------------------------


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
