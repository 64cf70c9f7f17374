"""Voices it never heard: the pool of ../shared/data (TESS, RAVDESS 01-16, EmoDB; ASED with
--corpora) under the honest protocols, for the default, the plain reference and each seed architecture.

corpus: leave one corpus out (train on the other two, test the third, for each);
speaker: 5 speaker-grouped folds over the pool's 28 speakers;
tess-speaker: one TESS actress out, the rest of the pool in training (both ways);
tess-words: TESS alone, held-out words (speaker-dependent: the same actresses, other words).
Each is scored zero-shot and, for a model that takes voice profiles, per speaker (each test
speaker normalised by their own unlabelled clips: transductive). Medians over --seeds.

    .venv/bin/python bench/pool.py [--arch egemaps-svm,egemaps-plain,...] [--protocol corpus,speaker,...]
                                   [--seeds 0,1,2] [--corpora tess,ravdess,emodb,ased]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from common import ROOT, emit

from ser.config import EMOTIONS, TrainConfig
from ser.corpora.datasets import Manifest, discover
from ser.corpora.splits import make_splits, split_speakers, split_words
from ser.models.archs import ARCHITECTURES
from ser.training.evaluation import summarise
from ser.training.train import run_fold

DATA = ROOT.parent / "shared" / "data"
EXAMPLE_SPEAKER = "ravdess/A16"  # the voice of assets/examples: never trained on
KEYS = ("accuracy", "macro_f1", "uar")
CORPORA = ("tess", "ravdess", "emodb")  # the pool the bundled model was chosen and trained on


def load_pool(corpora: tuple[str, ...] = CORPORA) -> Manifest:
    """The pool of ../shared/data: TESS, RAVDESS 01-16 less the example voice, EmoDB, or ``corpora``
    (exits without them)."""
    if not DATA.is_dir():
        sys.exit(f"the shared corpora are not at {DATA}")
    pool = discover(*(DATA / name for name in corpora))
    return pool.filter(speakers=[s for s in {c.speaker_id for c in pool.clips} if s != EXAMPLE_SPEAKER])


def splits(pool: Manifest, protocol: str, seed: int) -> list:
    if protocol in ("corpus", "speaker"):
        return make_splits(pool, protocol, seed=seed)
    tess = [s for s in {c.speaker_id for c in pool.clips} if s.startswith("tess/")]
    if protocol == "tess-speaker":
        return [split_speakers(pool, [speaker], seed=seed) for speaker in sorted(tess)]
    if protocol == "tess-words":
        return [split_words(pool.filter(speakers=tess), seed=seed)]
    raise SystemExit(f"unknown protocol {protocol}")


def run(pool: Manifest, arch: str, protocol: str, seed: int, epochs: int | None) -> dict:
    config = TrainConfig(arch=arch, seed=seed, **({"epochs": epochs} if epochs else {}))
    start = time.perf_counter()
    folds = [
        (s.description, run_fold(s, list(EMOTIONS), ARCHITECTURES[arch].features, config).metrics)
        for s in splits(pool, protocol, seed)
    ]
    summary = summarise(folds)
    row = {"seed": seed, "seconds": round(time.perf_counter() - start, 1), "zero_shot": _scores(summary)}
    if "per_speaker" in summary:
        row["per_speaker"] = _scores(summary["per_speaker"])
    print(arch, protocol, row, file=sys.stderr, flush=True)
    return row


def _scores(summary: dict) -> dict:
    return {
        **{k: round(summary[k], 4) for k in KEYS},
        "folds": {f["split"]: {k: round(f[k], 4) for k in KEYS} for f in summary["folds"]},
    }


def medians(runs: list[dict], mode: str) -> dict | None:
    if not all(mode in r for r in runs):
        return None
    return {k: statistics.median(r[mode][k] for r in runs) for k in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="egemaps-svm")
    parser.add_argument("--protocol", default="corpus,speaker,tess-speaker,tess-words")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="cap for the networks (default: their config)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--corpora", default=",".join(CORPORA), help="folders of ../shared/data to pool")
    args = parser.parse_args()
    corpora = tuple(args.corpora.split(","))
    pool = load_pool(corpora)
    rows = []
    for arch in args.arch.split(","):
        for protocol in args.protocol.split(","):
            runs = [run(pool, arch, protocol, int(seed), args.epochs) for seed in args.seeds.split(",")]
            rows.append({"arch": arch, "protocol": protocol, "zero_shot_median": medians(runs, "zero_shot"),
                         "per_speaker_median": medians(runs, "per_speaker"), "runs": runs})  # fmt: skip
            emit(f"pool-{args.tag}" if args.tag else "pool", {
                "data": f"../shared/data: {', '.join(corpora)} (ravdess A01-A16 less the example voice A16)",
                "n_clips": len(pool), "speakers": len({c.speaker_id for c in pool.clips}),
                "epochs": args.epochs, "results": rows,
            })  # fmt: skip


if __name__ == "__main__":
    main()
