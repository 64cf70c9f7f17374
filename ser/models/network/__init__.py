"""The Keras networks as a kind of model: each clip's windows normalised by themselves, fitted epoch
by epoch with early stopping (``ser.models.network.fit``), adapted to one speaker by AdaBN and
fine-tuning (``ser.models.network.adapt``).

TensorFlow is imported only when a network is fitted, loaded or adapted (``ser.models.network.layers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.config import EpochLog, FeatureConfig, RunHooks, TrainConfig
from ser.models.base import Answer, Model, StepCallback
from ser.voice.profile import VoiceProfile

if TYPE_CHECKING:
    from ser.features.corpus import CorpusFeatures
    from ser.store.card import ModelCard


class NetworkModel(Model):
    """A Keras network on frame features (log-mel or MFCC windows)."""

    adaptable = True

    def __init__(self, network: Any, labels: Sequence[str], feature_config: FeatureConfig) -> None:
        self.network = network  # a keras.Model
        self.labels = tuple(labels)
        self.feature_config = feature_config

    @classmethod
    def fit(
        cls, train: CorpusFeatures, val: CorpusFeatures, labels: Sequence[str], feature_config: FeatureConfig,
        config: TrainConfig, *, hooks: RunHooks = RunHooks(),
    ) -> tuple[NetworkModel, list[EpochLog]]:  # fmt: skip
        from ser.models.network.fit import fit

        network, history = fit(train, val, labels, feature_config, config, hooks=hooks)
        return cls(network, labels, feature_config), history

    def save(self, folder: Path) -> None:
        from ser.models.network.layers import save_network

        save_network(self.network, folder)

    @classmethod
    def load(cls, folder: Path, card: ModelCard) -> NetworkModel:
        from ser.models.network.layers import load_network

        return cls(load_network(folder, card.feature_config, len(card.labels)), card.labels, card.feature_config)

    def answer(
        self, features: np.ndarray, *, contours: np.ndarray | None = None, profile: VoiceProfile | None = None
    ) -> Answer:
        from ser.models.network.layers import network_proba

        return Answer(network_proba(self.network, features))

    def adapt(
        self, labelled: CorpusFeatures, config: Any, *, unlabelled: np.ndarray | None = None,
        on_step: StepCallback | None = None,
    ) -> tuple[NetworkModel, dict[str, Any]]:  # fmt: skip
        from ser.models.network.adapt import adapt_model, copy_model

        network = copy_model(self.network, seed=config.seed)
        done = adapt_model(network, labelled, config, unlabelled=unlabelled, on_step=on_step)
        return NetworkModel(network, self.labels, self.feature_config), done


KIND = NetworkModel
