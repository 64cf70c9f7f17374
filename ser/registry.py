"""The models folder, read without Keras: bundle cards, the active pointer, the list of bundles.

Kept apart from ``ser.model`` so the app's sidebar and pages can show models without loading
TensorFlow. ``models/active.json`` names the active bundle and is replaced atomically.
"""

from __future__ import annotations

import functools
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from ser.errors import ModelError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"  # bundled models and active.json
MODELS_DIR_ENV = "SER_MODELS_DIR"  # where the app reads and writes bundles, when set
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
ACTIVE_FILE = "active.json"


def models_folder() -> Path:
    """The models folder the app serves from and trains into: $SER_MODELS_DIR or the bundled one."""
    configured = os.environ.get(MODELS_DIR_ENV, "").strip()
    return Path(configured).expanduser() if configured else MODELS_DIR


def read_card(path: Path) -> dict[str, Any]:
    """The card of a bundle folder, checked for the fields serving needs. Parsed once per version
    of the file (the app reads the served card on every page run); treat it as read-only."""
    card_path = Path(path) / CARD_FILE
    try:
        stat = card_path.stat()
    except FileNotFoundError as e:
        raise ModelError(f"{path} is not a model bundle: {CARD_FILE} is missing") from e
    except OSError as e:
        raise ModelError(f"the card of {path} cannot be read ({e}); the bundle is damaged") from e
    card = _parse_card(card_path, stat.st_size, stat.st_mtime_ns)
    missing = [k for k in ("labels", "feature_config", "architecture") if k not in card]
    if missing:
        raise ModelError(f"the card of {path} lacks {', '.join(missing)}; the bundle is incomplete")
    return card


@functools.lru_cache(maxsize=64)
def _parse_card(card_path: Path, size: int, mtime_ns: int) -> dict[str, Any]:
    try:
        return json.loads(card_path.read_text())
    except FileNotFoundError as e:
        raise ModelError(f"{card_path.parent} is not a model bundle: {CARD_FILE} is missing") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"the card of {card_path.parent} cannot be read ({e}); the bundle is damaged") from e


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


def check_bundle(path: Path) -> dict[str, Any]:
    """The card of a bundle whose files are whole: a readable card and a ``model.keras`` archive
    that is a complete zip with matching checksums (a half-written or truncated file fails).
    Reads no Keras, so the app can vet bundles before TensorFlow loads. Raises ModelError."""
    card = read_card(path)
    model_file = Path(path) / MODEL_FILE
    try:
        stat = model_file.stat()
    except FileNotFoundError as e:
        raise ModelError(f"{path} has no {MODEL_FILE}; the bundle is incomplete") from e
    _check_archive(model_file, stat.st_size, stat.st_mtime_ns)
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


def list_bundles(
    models_dir: Path = MODELS_DIR, *, check: bool = False
) -> list[tuple[Path, dict[str, Any] | ModelError]]:
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


def compare_on_protocol(cards: dict[str, dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    """One row per named card: accuracy and macro-F1 under ``protocol`` as its card records them,
    with the corpus they were measured on (None where the card has no such evaluation), so two
    models are compared on the same protocol and a difference of corpus is visible."""
    rows = []
    for name, card in cards.items():
        scores = card.get("evaluation", {}).get(protocol, {})
        data = card.get("data", {})
        rows.append(
            {
                "model": name,
                "architecture": card.get("architecture"),
                "accuracy": scores.get("accuracy"),
                "macro_f1": scores.get("macro_f1"),
                "corpus": data.get("root"),
                "speakers": ", ".join(data.get("speakers", [])),
                "clips": data.get("n_clips"),
            }
        )
    return rows
