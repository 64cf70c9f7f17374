"""Speaker-adapted, k-shot accuracy on TESS: how far a few labelled clips of the test speaker go.

For each direction (train on OAF, adapt to YAF; train on YAF, adapt to OAF) the zero-shot base is
trained exactly as bench/accuracy.py's speaker protocol does (``ser.training.train.run_fold``). Then, for each
k, a copy of the base is adapted with ``ser.training.adapt``:

- k = 0: AdaBN only, on the test speaker's clips without their labels (transductive: the audio of
  the test clips sets the BatchNorm statistics; no label of the test speaker is used);
- k >= 1: k labelled clips per emotion of the test speaker (whole words, chosen by the seed), AdaBN
  on those clips, then the fixed fine-tuning of ``AdaptConfig`` (what ``python -m ser adapt`` does;
  "adapted"); scored on the test speaker's clips whose words are not among the adaptation clips'
  words. "transductive" is the same with the test clips' audio (not their labels) added to the
  BatchNorm statistics, as a user with unlabelled recordings of the speaker could.

The zero-shot base is scored on the same test clips as each adapted model. Seeds pick the base's
initialisation and the adaptation clips; per k, the two-direction mean is reported per seed and as
a median over seeds. This is not the speaker-independent headline: the adapted model has heard
the test speaker.

    .venv/bin/python bench/adapt.py [--seeds 0,1,2] [--shots 0,1,3,5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from common import TESS_DIR, emit

from ser.config import TrainConfig
from ser.corpora.datasets import Manifest, discover
from ser.corpora.fewshot import choose_clips
from ser.corpora.splits import make_splits
from ser.features.corpus import CorpusFeatures, prepare
from ser.models.archs import ARCHITECTURES
from ser.models.network.adapt import AdaptConfig, adapt_model, copy_model
from ser.training.evaluation import score
from ser.training.train import model_labels, run_fold

KINDS = ("zero_shot", "adapted", "transductive")


def accuracy(model, data: CorpusFeatures, labels: list[str]) -> float:
    return round(score(model, data, labels)["accuracy"], 4)


def adapt_direction(manifest: Manifest, split, labels: list[str], shots: list[int], seed: int) -> dict:
    """Train the base on one speaker, adapt it to the other for each k; accuracies per k."""
    config = TrainConfig(seed=seed)
    fold = run_fold(split, labels, ARCHITECTURES[config.arch].features, config)
    speaker = split.test[0].speaker
    # Every clip of the test speaker with the training warps: the same cached features run_fold used.
    everything = prepare(split.test, labels, ARCHITECTURES[config.arch].features, augment=True)
    row = {"direction": split.description, "zero_shot_all_clips": round(fold.metrics["accuracy"], 4)}
    for k in shots:
        model = copy_model(fold.model, seed=seed)
        if k == 0:
            test = everything
            adapt_model(model, everything.subset([]), AdaptConfig(shots=0, seed=seed), unlabelled=test.centre)
            row["k0"] = {"n_test": len(test.y), "zero_shot": accuracy(fold.model, test, labels)}
            row["k0"]["adapted"] = row["k0"]["transductive"] = accuracy(model, test, labels)
        else:
            chosen = choose_clips(Manifest(split.test, manifest.root, []), speaker, labels, shots=k, seed=seed)
            test, labelled = everything.subset(chosen.test), everything.subset(chosen.labelled)
            adapt_model(model, labelled, AdaptConfig(shots=k, seed=seed))
            row[f"k{k}"] = {
                "n_test": len(test.y),
                "zero_shot": accuracy(fold.model, test, labels),
                "adapted": accuracy(model, test, labels),
            }
            # The same, with the test clips' audio (never their labels) in the BatchNorm statistics too.
            model = copy_model(fold.model, seed=seed)
            adapt_model(model, labelled, AdaptConfig(shots=k, seed=seed), unlabelled=test.centre)
            row[f"k{k}"]["transductive"] = accuracy(model, test, labels)
        print(seed, speaker, k, row[f"k{k}"], file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--shots", default="0,1,3,5")
    args = parser.parse_args()
    if not TESS_DIR.is_dir():
        sys.exit(f"TESS not found at {TESS_DIR}; set SER_DATA_DIR")
    manifest = discover(TESS_DIR)
    labels = model_labels(manifest)
    shots = [int(k) for k in args.shots.split(",")]
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        splits = make_splits(manifest, "speaker", seed=seed)
        directions = [adapt_direction(manifest, split, labels, shots, seed) for split in splits]
        mean = {
            f"k{k}": {kind: round(float(np.mean([d[f"k{k}"][kind] for d in directions])), 4) for kind in KINDS}
            for k in shots
        }
        zero_shot = round(float(np.mean([d["zero_shot_all_clips"] for d in directions])), 4)
        runs.append({"seed": seed, "zero_shot_all_clips": zero_shot, "mean": mean, "directions": directions,
                     "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
        # Written after every seed, so an interrupted run still leaves its finished seeds.
        medians = {
            f"k{k}": {kind: statistics.median(r["mean"][f"k{k}"][kind] for r in runs) for kind in KINDS} for k in shots
        }
        emit(
            "adapt",
            {
                "protocol": "speaker-adapted, k-shot (not speaker-independent: the model has heard the test speaker)",
                "data": "TESS (../shared/data/tess)",
                "method": AdaptConfig().method,
                "adapt_config": AdaptConfig().to_dict(),
                "notes": {
                    "k0": "AdaBN on the test speaker's unlabelled clips (transductive, no labels), scored on all",
                    "k>=1": "k labelled clips per emotion (k whole words, every emotion); scored on the test speaker's "
                    "clips of the other words; zero_shot is the base model on those same clips; transductive adds "
                    "the test clips' audio (no labels) to the BatchNorm statistics",
                },
                "seeds": [r["seed"] for r in runs],
                "zero_shot_all_clips_median": statistics.median(r["zero_shot_all_clips"] for r in runs),
                "medians": medians,
                "runs": runs,
            },
        )


if __name__ == "__main__":
    main()
