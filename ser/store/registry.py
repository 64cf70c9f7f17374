"""The models folder, read without Keras: bundle cards, the active pointer, the list of bundles.

Kept apart from ``ser.models.network.layers`` so the app's sidebar and pages can show models without loading
TensorFlow. ``models/active.json`` names the active bundle and is replaced atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import importlib.metadata
import json
import os
import platform
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser import __version__
from ser.config import PROJECT_DIR, AudioConfig, FeatureConfig
from ser.errors import ModelError

MODELS_DIR = PROJECT_DIR / "models"  # bundled models and active.json
MODELS_DIR_ENV = "SER_MODELS_DIR"  # where the app reads and writes bundles, when set
MODEL_FILE = "model.keras"  # a network's (ser.models.network)
SVM_FILE = "model.skops"  # the pooled SVM's (ser.models.svm)
MODEL_FILES = (MODEL_FILE, SVM_FILE)  # a bundle holds one of these beside its card
ARCHIVE_SUFFIXES = (".keras", ".skops", ".npz")  # the bundle files that are zip archives, checked whole
CARD_FILE = "card.json"
ACTIVE_FILE = "active.json"


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


def bundle_name(arch: str) -> str:
    """ARCH-DATE-TIME, the default name of a trained bundle."""
    return f"{arch}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def adapted_name(base: str, speaker: str) -> str:
    """BASE-SPEAKER-DATE-TIME, the speaker reduced to characters a folder name can hold."""
    plain = re.sub(r"[^A-Za-z0-9_-]+", "_", speaker).strip("_") or "speaker"
    return f"{base}-{plain}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def models_folder() -> Path:
    """The models folder the app serves from and trains into: $SER_MODELS_DIR or the bundled one."""
    configured = os.environ.get(MODELS_DIR_ENV, "").strip()
    return Path(configured).expanduser() if configured else MODELS_DIR


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


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk, so a rename that follows never exposes unwritten data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def active_name(models_dir: Path = MODELS_DIR) -> str:
    """The bundle named in ``models_dir/active.json``."""
    try:
        return json.loads((models_dir / ACTIVE_FILE).read_text())["model"]
    except FileNotFoundError as e:
        raise ModelError(f"no active model: {models_dir / ACTIVE_FILE} is missing") from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{models_dir / ACTIVE_FILE} is damaged ({e})") from e


def active_path(models_dir: Path = MODELS_DIR) -> Path:
    return models_dir / active_name(models_dir)


def set_active(name: str, models_dir: Path = MODELS_DIR) -> None:
    """Point ``active.json`` at an existing, readable bundle; atomic replace, so a crash leaves
    either the old or the new pointer."""
    read_card(models_dir / name)
    tmp = models_dir / f".{ACTIVE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"model": name}) + "\n")
    fsync_path(tmp)
    os.replace(tmp, models_dir / ACTIVE_FILE)


def new_bundle_path(models_dir: Path, name: str) -> Path:
    """The folder a new bundle called ``name`` will take in ``models_dir``. Checked before a run
    starts, not only when it saves: a taken or unusable name used to be refused after the whole
    training. Raises ModelError for a name that is not one visible folder name, or is taken."""
    if not name or name != Path(name).name or name.startswith("."):
        raise ModelError(f"{name!r} cannot name a model bundle: use a plain folder name, without '/' or a leading '.'")
    target = Path(models_dir) / name
    if target.exists():
        raise ModelError(f"a model named {name!r} already exists in {models_dir}; choose another name")
    return target


def delete_bundle(name: str, models_dir: Path = MODELS_DIR) -> Path:
    """Remove the bundle folder ``models_dir/name``; returns the path it had. Renamed aside first,
    so no listing sees half a bundle. The active pointer is left as it is (serving falls back to
    another bundle; make one active). Raises ModelError for a name that is not a bundle folder
    directly inside ``models_dir`` (a path, a link, a file, a folder without a card or model)."""
    folder = Path(models_dir)
    path = folder / name
    if not name or name != Path(name).name or name.startswith(".") or path.is_symlink() or not path.is_dir():
        raise ModelError(f"{name!r} is not a model bundle in {folder}; nothing was deleted")
    files = (CARD_FILE, *MODEL_FILES)
    if path.resolve().parent != folder.resolve() or not any((path / f).is_file() for f in files):
        raise ModelError(f"{path} has no {CARD_FILE} and no model file: not a model bundle; nothing was deleted")
    aside = folder / f".{name}.{os.getpid()}.deleted.tmp"
    try:
        os.replace(path, aside)
    except OSError as e:
        raise ModelError(f"{path} could not be deleted ({e.strerror})") from e
    shutil.rmtree(aside, ignore_errors=True)  # what is left is a dot-folder, which no listing shows
    return path


def check_bundle(path: Path) -> ModelCard:
    """The card of a bundle whose files are whole: a readable card, a model file, and every archive
    of the bundle (``model.keras``, ``model.skops`` and the parts beside it) a complete zip with
    matching checksums (a half-written or truncated file fails). Reads no Keras, so the app can vet
    bundles before TensorFlow loads. Raises ModelError."""
    card = read_card(path)
    path = Path(path)
    if not any((path / name).is_file() for name in MODEL_FILES):
        raise ModelError(f"{path} has no {' or '.join(MODEL_FILES)}; the bundle is incomplete")
    for archive in sorted(p for p in path.iterdir() if p.suffix in ARCHIVE_SUFFIXES and p.is_file()):
        stat = archive.stat()
        _check_archive(archive, stat.st_size, stat.st_mtime_ns)
    return card


@functools.lru_cache(maxsize=64)
def _check_archive(model_file: Path, size: int, mtime_ns: int) -> None:
    """Checksums of every member of ``model_file``, once per version of the file (size, mtime):
    the app vets the served bundle on every page run. Raises ModelError (not cached)."""
    try:
        with zipfile.ZipFile(model_file) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ModelError(f"{model_file} is damaged or half-written ({e})") from e
    if bad is not None:
        raise ModelError(f"{model_file} is damaged: {bad} fails its checksum")


def serving_bundle(models_dir: Path = MODELS_DIR) -> tuple[Path, list[str]]:
    """The bundle to serve and what was skipped on the way, as messages for the user.

    The bundle ``active.json`` names, when its files are whole; otherwise the most recently
    written whole bundle, so a damaged bundle or pointer never stops the app from serving.
    Raises ModelError when no bundle in ``models_dir`` is usable.
    """
    problems = []
    try:
        name = active_name(models_dir)
        check_bundle(models_dir / name)
        return models_dir / name, problems
    except ModelError as e:
        problems.append(f"the active model cannot be served: {e}")
    usable = [path for path, card in list_bundles(models_dir, check=True) if not isinstance(card, ModelError)]
    if not usable:
        raise ModelError(f"no usable model bundle in {models_dir} ({problems[0]})")
    newest = max(usable, key=lambda path: ((path / CARD_FILE).stat().st_mtime, path.name))
    problems.append(f"serving {newest.name} instead")
    return newest, problems


def list_bundles(models_dir: Path = MODELS_DIR, *, check: bool = False) -> list[tuple[Path, ModelCard | ModelError]]:
    """Every bundle folder with its card, or the error that makes it unusable (reported, skipped).
    Folders starting with a dot (bundles being written) are not bundles yet. ``check`` also
    verifies the model file (``check_bundle``)."""
    if not models_dir.is_dir():
        return []
    found = []
    for path in sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            found.append((path, check_bundle(path) if check else read_card(path)))
        except ModelError as e:
            found.append((path, e))
    return found


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
