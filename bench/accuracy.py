"""Accuracy on TESS for the default cnn and each seed architecture, under three protocols.

speaker: train on one actress, test on the other, both ways (the headline number);
random: stratified 80/20 split (speaker-dependent); words: held-out words (the test words are
never heard in training). Each (architecture, protocol) is run for every seed; medians are reported.

    .venv/bin/python bench/accuracy.py [--arch cnn,seed-lstm,...] [--split speaker,random,words] [--seeds 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from common import TESS_DIR, emit

from ser.config import TrainConfig
from ser.corpora.datasets import discover
from ser.corpora.splits import make_splits
from ser.models.archs import ARCHITECTURES
from ser.training.evaluation import summarise
from ser.training.train import model_labels, run_fold


def per_class_recall(metrics: dict) -> dict[str, float]:
    """Each emotion's recall in one fold: which emotions a protocol gets wrong, not only how many."""
    return {label: round(m["recall"], 4) for label, m in metrics["per_class"].items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default=",".join(ARCHITECTURES))
    parser.add_argument("--split", default="speaker,random,words")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--tag", default="", help="suffix of the results file, e.g. cnn -> accuracy-cnn.json")
    args = parser.parse_args()
    if not TESS_DIR.is_dir():
        sys.exit(f"TESS not found at {TESS_DIR}; set SER_DATA_DIR")
    manifest = discover(TESS_DIR)
    labels = model_labels(manifest)
    rows = []
    for arch in args.arch.split(","):
        for protocol in args.split.split(","):
            runs = []
            for seed in (int(s) for s in args.seeds.split(",")):
                config = TrainConfig(arch=arch, seed=seed)
                start = time.perf_counter()
                folds = [
                    run_fold(split, labels, ARCHITECTURES[arch].features, config)
                    for split in make_splits(manifest, protocol, seed=seed)
                ]
                summary = summarise([(f.split.description, f.metrics) for f in folds])
                runs.append(
                    {
                        "seed": seed,
                        "accuracy": summary["accuracy"],
                        "macro_f1": summary["macro_f1"],
                        "folds": {f["split"]: round(f["accuracy"], 4) for f in summary["folds"]},
                        "recall": {f["split"]: per_class_recall(f) for f in summary["folds"]},
                        "confusion": {f["split"]: f["confusion"] for f in summary["folds"]},
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                print(arch, protocol, runs[-1], file=sys.stderr, flush=True)
            rows.append(
                {
                    "arch": arch,
                    "split": protocol,
                    "accuracy_median": statistics.median(r["accuracy"] for r in runs),
                    "macro_f1_median": statistics.median(r["macro_f1"] for r in runs),
                    "recall_median": {
                        label: statistics.median(rec[label] for r in runs for rec in r["recall"].values())
                        for label in labels
                    },
                    "runs": runs,
                }
            )
    emit(
        f"accuracy-{args.tag}" if args.tag else "accuracy",
        {"data": "TESS (../shared/data/tess)", "n_clips": len(manifest), "results": rows},
    )


if __name__ == "__main__":
    main()
