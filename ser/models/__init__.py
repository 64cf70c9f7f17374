"""Kinds of model behind one interface (``ser.models.base.Model``), one sub-package per kind.

An architecture (``ser.models.archs``) names its kind; the kind's package defines ``KIND``, its ``Model``
subclass. A new kind is a new package here and one ``ArchSpec`` line in ``ser.models.archs``. Importing a
kind loads no TensorFlow: a kind that needs it imports it when it fits or loads a model.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from ser.models.archs import get_architecture
from ser.models.base import Answer, Model

if TYPE_CHECKING:
    from ser.store.card import ModelCard

__all__ = ["Answer", "Model", "kind_of", "load_model"]


def kind_of(arch: str) -> type[Model]:
    """The kind of model architecture ``arch`` is. Raises ConfigError for an unknown name."""
    return importlib.import_module(f"ser.models.{get_architecture(arch).kind}").KIND


def load_model(folder: Path, card: ModelCard) -> Model:
    """The model of a bundle folder, by its card's kind. Raises ModelError."""
    return kind_of(card.architecture).load(folder, card)
