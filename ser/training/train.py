"""Training: a manifest -> split -> corpus features -> fitted model -> scores -> a bundle with its card.

``train`` reads top to bottom: the protocol's splits, each fold's features (``ser.features.corpus``,
cached), a fit (``ser.models.network.fit``) with early stopping on a validation part carved from the training
side, the test part scored as ``predict`` answers (``ser.training.evaluation``), then the bundle and its card.
Progress goes to plain callables (``RunHooks``), so the command line and the app observe the
same run. Nothing here imports Streamlit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser.config import EMOTIONS, AudioConfig, EpochCallback, EpochLog, FeatureConfig, RunHooks, TrainConfig
from ser.corpora.datasets import Manifest
from ser.corpora.splits import PROTOCOLS, Split, make_splits
from ser.errors import ConfigError, TrainingError
from ser.features.corpus import prepare
from ser.models import Model, kind_of
from ser.models.archs import get_architecture
from ser.models.bundle import save_bundle
from ser.store.card import ModelCard, library_versions, utc_now
from ser.store.registry import MODELS_DIR, bundle_name, new_bundle_path
from ser.training.evaluation import score, summarise

ONE_GO = "; fitted in one go, not early-stopped, so the validation clips train it too"


def model_labels(manifest: Manifest) -> list[str]:
    """The modelled emotions present in a corpus, in the canonical order."""
    present = {c.emotion for c in manifest.clips}
    labels = [e for e in EMOTIONS if e in present]
    if len(labels) < 2:
        raise TrainingError(f"need at least two of {', '.join(EMOTIONS)} to train; found {labels or 'none'}")
    return labels


@dataclass
class FoldResult:
    split: Split
    model: Model
    history: list[EpochLog]
    metrics: dict[str, Any] | None  # on the test part; None when the split has no test part
    n_train: int
    n_val: int


def run_fold(
    split: Split, labels: Sequence[str], feature_config: FeatureConfig, config: TrainConfig, *,
    audio_config: AudioConfig = AudioConfig(), hooks: RunHooks = RunHooks(),
) -> FoldResult:  # fmt: skip
    """Features, fit and test for one split."""
    kind = kind_of(config.arch)
    augment = config.augment and get_architecture(config.arch).augment
    # A kind fitted in one go is not early-stopped, so its validation clips train it too.
    parts = (split.train, split.val, split.test) if kind.early_stopped else ([*split.train, *split.val], [], split.test)
    # The test part gets the training warps too, so another fold that trains on its clips finds them cached.
    train_data, val_data, test_data = (
        prepare(part, labels, feature_config, augment=augment, audio_config=audio_config, hooks=hooks,
                progress=i == 0)
        for i, part in enumerate(parts)
    )  # fmt: skip
    model, history = kind.fit(train_data, val_data, labels, feature_config, config, hooks=hooks)
    metrics = None
    if split.test:
        metrics = score(model, test_data, labels)
        if model.takes_profiles:
            metrics["per_speaker"] = score(model, test_data, labels, per_speaker=True)
    return FoldResult(split, model, history, metrics, len(train_data.y), len(val_data.y))


def build_card(
    manifest: Manifest, labels: Sequence[str], feature_config: FeatureConfig, config: TrainConfig, *,
    split_kind: str, fold: FoldResult, evaluation: dict[str, Any], command: str, train_time_s: float,
) -> ModelCard:  # fmt: skip
    """The one place a trained model's card is made (an adapted card is derived from it)."""
    data = {
        **manifest.summary(),
        "root": manifest.root.name,  # no local absolute paths in a card that may be shared
        "clips_per_speaker": manifest.clips_per_speaker(),
        "split": split_kind,
        "trained_on": fold.split.description + ("" if fold.model.early_stopped else ONE_GO),
        "n_train": fold.n_train,
        "n_val": fold.n_val,
        "balance": fold.model.balance,
    }
    history = tuple(dataclasses.asdict(e) for e in fold.history)
    return ModelCard(
        architecture=config.arch, labels=tuple(labels), feature_config=feature_config,
        description=get_architecture(config.arch).description, train_config=config.to_dict(), data=data,
        history=history, best_epoch=int(np.argmin([e.val_loss for e in fold.history])) + 1 if history else None,
        evaluation=evaluation, train_time_s=round(train_time_s, 1), versions=library_versions(),
        created_at=utc_now(), command=command, **fold.model.card_fields(),
    )  # fmt: skip


def train(
    manifest: Manifest,
    *,
    split: str = "none",
    config: TrainConfig = TrainConfig(),
    feature_config: FeatureConfig | None = None,
    evaluate_protocols: Sequence[str] = (),
    models_dir: Path = MODELS_DIR,
    name: str | None = None,
    command: str = "",
    hooks: RunHooks = RunHooks(),
) -> tuple[Path, ModelCard]:
    """Train on ``manifest`` under a split protocol and save a bundle; returns (bundle path, card).

    ``split`` is one of ``ser.corpora.datasets.PROTOCOLS``: "none" (every clip trains the saved model, a
    validation part aside), or a protocol with test parts (the saved model is the first fold's;
    test metrics are reported). ``evaluate_protocols`` are further protocols to measure and record
    in the card, each training its own throw-away models.
    """
    start = time.perf_counter()
    for protocol in (split, *evaluate_protocols):
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    name = name or bundle_name(config.arch)
    new_bundle_path(models_dir, name)  # a taken name is refused now, not after the whole run
    feature_config = feature_config or get_architecture(config.arch).features
    labels = model_labels(manifest)
    protocols = [split] + [p for p in evaluate_protocols if p != split]
    results = run_protocols(manifest, protocols, labels, feature_config, config, hooks=hooks)
    evaluation = {
        p: summarise([(f.split.description, f.metrics) for f in results[p] if f.metrics is not None])
        for p in protocols if p != "none"
    }  # fmt: skip
    folds = results[split]
    card = build_card(
        manifest, labels, feature_config, config, split_kind=split, fold=folds[0], evaluation=evaluation,
        command=command, train_time_s=time.perf_counter() - start,
    )  # fmt: skip
    return save_bundle(folds[0].model, card, models_dir, name), card


def run_protocols(
    manifest: Manifest, protocols: Sequence[str], labels: Sequence[str], feature_config: FeatureConfig,
    config: TrainConfig, *, hooks: RunHooks = RunHooks(),
) -> dict[str, list[FoldResult]]:  # fmt: skip
    """Every fold of every protocol, one after the other: {protocol: [FoldResult, ...]}. Raises
    TrainingError when the run is stopped."""
    plan = [
        (p, s) for p in protocols for s in make_splits(manifest, p, seed=config.seed, val_fraction=config.val_fraction)
    ]
    results: dict[str, list[FoldResult]] = {protocol: [] for protocol in protocols}
    for i, (protocol, s) in enumerate(plan, start=1):
        if hooks.on_fit is not None:
            hooks.on_fit(s.description, i, len(plan))
        fold_hooks = dataclasses.replace(hooks, on_epoch=_in_fold(hooks.on_epoch, s.description, i, len(plan)))
        results[protocol].append(run_fold(s, labels, feature_config, config, hooks=fold_hooks))
        if hooks.stopped():
            raise TrainingError("training was stopped before it finished; the active model is unchanged")
    return results


def _in_fold(on_epoch: EpochCallback | None, fold: str, index: int, n_folds: int) -> EpochCallback | None:
    """``on_epoch`` with each entry labelled by the fit it belongs to."""
    if on_epoch is None:
        return None
    return lambda entry: on_epoch(dataclasses.replace(entry, fold=fold, fold_index=index, n_folds=n_folds))
