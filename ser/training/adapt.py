"""Speaker adaptation: a bundle -> a bundle for one speaker, from k labelled clips per emotion (or none).

``choose_clips`` (``ser.corpora.fewshot``) takes k clips per emotion of the speaker (chosen by a
seed) and leaves the rest of that speaker's clips, minus every word the chosen clips say, as the
held-out test clips. The model's kind adapts a copy of it (``Model.adapt``: for a network, AdaBN
and a short fine-tune, ``ser.models.network.adapt``). ``adapt`` does the whole run: before/after
metrics on the held-out clips, a card, and a bundle saved like any other.

With k = 0 no label is used: AdaBN alone on every clip of the speaker, scored on those same clips
(transductive, as a user with a folder of one speaker's recordings would use it).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from ser.config import RunHooks
from ser.corpora.datasets import Manifest
from ser.corpora.fewshot import AdaptationClips, choose_clips
from ser.errors import DatasetError, ModelError
from ser.features.corpus import CorpusFeatures, prepare
from ser.models import Model
from ser.models.bundle import Bundle, save_bundle
from ser.models.network.adapt import AdaptConfig
from ser.store.card import SCHEMA_VERSION, ModelCard, library_versions, utc_now
from ser.store.registry import MODELS_DIR, adapted_name, new_bundle_path
from ser.training.evaluation import score

ADAPTED = "speaker-adapted"  # the protocol an adapted card's evaluation is recorded under


def adapt(
    bundle: Bundle,
    manifest: Manifest,
    speaker: str,
    config: AdaptConfig = AdaptConfig(),
    *,
    models_dir: Path = MODELS_DIR,
    name: str | None = None,
    command: str = "",
    hooks: RunHooks = RunHooks(),
    save: bool = True,
) -> tuple[Path | None, ModelCard, Model]:
    """Adapt ``bundle`` to ``speaker`` of ``manifest`` and save it as a new bundle.

    Scores the base and the adapted model on the speaker's held-out clips (``choose_clips``), whose
    labels serve for scoring only. Returns (bundle path or None when ``save`` is False, card, model).
    The base bundle's model is not changed.
    """
    if not bundle.model.adaptable:
        raise ModelError(
            f"{bundle.name} is not adapted by fine-tuning: it takes the speaker's voice profile instead "
            "(predict --same-speaker or --profile, evaluate --per-speaker, or 'one speaker' on the Classify page)"
        )
    start = time.perf_counter()
    name = name or adapted_name(bundle.name, speaker)
    if save:
        new_bundle_path(models_dir, name)  # a taken or unusable name fails now, not after the work
    clips, labelled, test = _speaker_features(bundle, manifest, speaker, config, hooks)
    labels = bundle.labels
    before = score(bundle.model, test, labels)
    # shots = 0: unsupervised, AdaBN on all the speaker's clips; their labels only score the result
    unlabelled = test.centre if config.shots == 0 else None
    model, done = bundle.model.adapt(labelled, config, unlabelled=unlabelled, on_step=hooks.on_step)
    after = score(model, test, labels)
    record = adaptation_record(bundle, manifest, clips, config, before=before, after=after, done=done)
    card = adapted_card(bundle, record, command=command, adapt_time_s=time.perf_counter() - start)
    path = save_bundle(model, card, models_dir, name) if save else None
    return path, card, model


def _speaker_features(
    bundle: Bundle, manifest: Manifest, speaker: str, config: AdaptConfig, hooks: RunHooks
) -> tuple[AdaptationClips, CorpusFeatures, CorpusFeatures]:
    """The speaker's adaptation and test clips (``choose_clips``), and their features by the
    bundle's recipe (the adaptation clips with the training warps). Raises DatasetError."""
    labels, feature_config, audio_config = bundle.labels, bundle.feature_config, bundle.card.audio_config
    clips = choose_clips(manifest, speaker, labels, shots=config.shots, seed=config.seed)
    labelled, test = (
        prepare(part, labels, feature_config, augment=augment, audio_config=audio_config, hooks=hooks)
        for part, augment in ((clips.labelled, True), (clips.test, False))
    )
    if labelled.errors or test.errors:
        raise DatasetError(f"some clips of {speaker} cannot be used: {(labelled.errors + test.errors)[0]}")
    return clips, labelled, test


def adaptation_record(
    bundle: Bundle, manifest: Manifest, clips: AdaptationClips, config: AdaptConfig, *,
    before: dict[str, Any], after: dict[str, Any], done: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """What the adaptation did and how it scored on the speaker's held-out clips, for the card."""
    root = manifest.root.parent if manifest.root.suffix.lower() == ".csv" else manifest.root
    if config.shots == 0:
        test_note = (
            f"all {len(clips.test)} clips of {clips.speaker}, the same clips whose audio (not labels) set the "
            "BatchNorm statistics: transductive"
        )
    else:
        test_note = (
            f"{speaker_clips(manifest, clips.speaker)} clips of {clips.speaker} minus the {len(clips.labelled)} "
            f"adaptation clips and every clip of their {len(clips.excluded_words)} words"
        )
    return {
        "base_model": bundle.name,
        "base_created_at": bundle.card.created_at,
        "speaker": clips.speaker,
        "shots": config.shots,
        "seed": config.seed,
        "method": config.method,
        "config": config.to_dict(),
        "data_root": manifest.root.name,  # clip paths below are relative to it (no local absolute paths)
        "clips": [{"path": _relative(c.path, root), "emotion": c.emotion, "word": c.text} for c in clips.labelled],
        "excluded_words": clips.excluded_words,
        "test": test_note,
        "before": before,
        "after": after,
        **done,
    }


def adapted_card(bundle: Bundle, record: dict[str, Any], *, command: str, adapt_time_s: float) -> ModelCard:
    """The base card, derived: what the adaptation did, and its score as the card's evaluation."""
    base, speaker, after, before = bundle.card, record["speaker"], record["after"], record["before"]
    if record["shots"] == 0:
        tested_on = f"{speaker}'s clips, after AdaBN on them without their labels"
    else:
        tested_on = f"{speaker}'s held-out clips, after adapting on {record['shots']} per emotion"
    evaluation = {
        "accuracy": after["accuracy"],
        "macro_f1": after["macro_f1"],
        "before": {"accuracy": before["accuracy"], "macro_f1": before["macro_f1"]},
        "description": tested_on,
    }
    return dataclasses.replace(
        base,
        description=f"{base.description}; adapted to speaker {speaker} ({record['method']})",
        base_evaluation=base.evaluation,
        evaluation={ADAPTED: evaluation},
        adaptation={**record, "adapt_time_s": round(adapt_time_s, 1)},
        versions=library_versions(),
        created_at=utc_now(),
        command=command,
        schema_version=SCHEMA_VERSION,  # written by this version, whatever its base's
    )


def speaker_clips(manifest: Manifest, speaker: str) -> int:
    return sum(1 for c in manifest.clips if manifest.speaker_of(c) == speaker)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
