"""The models folder, read without Keras: its bundles, the active pointer, their checks and removal.

The app's sidebar and pages show models through this module without loading TensorFlow. Each
bundle's card is ``ser.store.card``'s; ``models/active.json`` names the active bundle and is
replaced atomically.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

from ser.config import PROJECT_DIR
from ser.errors import ModelError
from ser.store.card import CARD_FILE, ModelCard, read_card

MODELS_DIR = PROJECT_DIR / "models"  # bundled models and active.json
MODELS_DIR_ENV = "SER_MODELS_DIR"  # where the app reads and writes bundles, when set
MODEL_FILE = "model.keras"  # a network's (ser.models.network)
SVM_FILE = "model.skops"  # the pooled SVM's (ser.models.svm)
MODEL_FILES = (MODEL_FILE, SVM_FILE)  # a bundle holds one of these beside its card
ARCHIVE_SUFFIXES = (".keras", ".skops", ".npz")  # the bundle files that are zip archives, checked whole
ACTIVE_FILE = "active.json"


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
