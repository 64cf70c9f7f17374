"""The Keras networks as a kind of model: each clip's windows normalised by themselves, fitted epoch by
epoch with early stopping (``ser.fit``), adapted to one speaker by AdaBN and fine-tuning (``ser.adapt``).

TensorFlow is imported only when a network is fitted, loaded or adapted (``ser.model``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.config import EpochLog, FeatureConfig, RunHooks, TrainConfig
from ser.models.base import Answer, Model, StepCallback
from ser.profile import VoiceProfile

if TYPE_CHECKING:
    from ser.prepare import Features
    from ser.registry import ModelCard


class NetworkModel(Model):
    """A Keras network on frame features (log-mel or MFCC windows)."""

    adaptable = True

    def __init__(self, network: Any, labels: Sequence[str], feature_config: FeatureConfig) -> None:
        self.network = network  # a keras.Model
        self.labels = tuple(labels)
        self.feature_config = feature_config

    @classmethod
    def fit(
        cls, train: Features, val: Features, labels: Sequence[str], feature_config: FeatureConfig,
        config: TrainConfig, *, hooks: RunHooks = RunHooks(),
    ) -> tuple[NetworkModel, list[EpochLog]]:  # fmt: skip
        from ser.fit import fit

        network, history = fit(train, val, labels, feature_config, config, hooks=hooks)
        return cls(network, labels, feature_config), history

    def save(self, folder: Path) -> None:
        from ser.model import save_network

        save_network(self.network, folder)

    @classmethod
    def load(cls, folder: Path, card: ModelCard) -> NetworkModel:
        from ser.model import load_network

        return cls(load_network(folder, card.feature_config, len(card.labels)), card.labels, card.feature_config)

    def answer(
        self, features: np.ndarray, *, contours: np.ndarray | None = None, profile: VoiceProfile | None = None
    ) -> Answer:
        from ser.model import network_proba

        return Answer(network_proba(self.network, features))

    def adapt(
        self, labelled: Features, config: Any, *, unlabelled: np.ndarray | None = None,
        on_step: StepCallback | None = None,
    ) -> tuple[NetworkModel, dict[str, Any]]:  # fmt: skip
        from ser.adapt import adapt_model, copy_model

        network = copy_model(self.network, seed=config.seed)
        done = adapt_model(network, labelled, config, unlabelled=unlabelled, on_step=on_step)
        return NetworkModel(network, self.labels, self.feature_config), done


KIND = NetworkModel
