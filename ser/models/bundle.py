"""The model bundle: a kind's model files and ``card.json`` in one folder, loaded and saved whole.

A bundle carries everything needed to serve it (label order, feature and audio config, the kind's
answer settings), so prediction reads nothing from defaults. Bundles are written to a temporary
folder and renamed into place. Loading a bundle imports only what its kind needs (``ser.models``):
the SVM loads no TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ser.config import FeatureConfig
from ser.errors import ModelError
from ser.models import Model, load_model
from ser.store.card import CARD_FILE, ModelCard, read_card, write_card
from ser.store.recovery import remove_stale_bundles, temp_bundle_prefix
from ser.store.registry import fsync_path, new_bundle_path


@dataclass
class Bundle:
    path: Path
    model: Model  # of the kind its card's architecture names
    card: ModelCard

    @property
    def labels(self) -> list[str]:
        return list(self.card.labels)

    @property
    def feature_config(self) -> FeatureConfig:
        return self.card.feature_config

    @property
    def name(self) -> str:
        return self.path.name


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder (safe mode: no arbitrary code from the file) and check it against its card."""
    path = Path(path)
    if path.is_file():  # --model DIR/model.keras: the bundle is the folder
        raise ModelError(f"{path} is a file, not a model bundle: give the folder with its model file and {CARD_FILE}")
    if not path.is_dir():
        raise ModelError(f"model bundle not found: {path}")
    card = read_card(path)
    return Bundle(path, load_model(path, card), card)


def save_bundle(model: Model, card: ModelCard, models_dir: Path, name: str) -> Path:
    """Write ``models_dir/name`` completely in a temporary folder, then rename it into place."""
    target = new_bundle_path(models_dir, name)
    models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_bundles(models_dir)  # what earlier runs that were killed while saving left
    tmp = Path(tempfile.mkdtemp(prefix=temp_bundle_prefix(name), suffix=".tmp", dir=models_dir))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
        model.save(tmp)
        write_card(card, tmp)
        for path in [*tmp.iterdir(), tmp]:
            fsync_path(path)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_path(models_dir)
    return target
