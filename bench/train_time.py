"""Training time: cold (empty feature cache) and warm.

Default: the cnn on all of TESS. ``--pool``: the bundled model's own command, the eGeMAPS SVM on
the pool of ../shared/data (TESS, RAVDESS less actor 16, EmoDB) with its 8 evaluation folds
(leave one corpus out, 5 speaker folds) and the final fit, as its card records it. ``--pool
--no-evaluate``: the final fit alone (the default trained on the whole pool, nothing scored).

Each run is a separate process (`python -m ser train ...`), timed from outside, with its peak
memory (RSS of the child). Cold runs use a fresh cache folder; warm runs reuse it.

    .venv/bin/python bench/train_time.py [--repeats 3] [--epochs N] [--pool]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, TESS_DIR, emit

POOL = ["--arch", "egemaps-svm", "--split", "none", "--evaluate", "corpus,speaker", "--leave-out", "ravdess/A16"]
FINAL_FIT = ["--arch", "egemaps-svm", "--split", "none", "--leave-out", "ravdess/A16"]


def run(cache: Path, out: Path, epochs: int | None, pool: list[str] | None) -> tuple[float, float]:
    env = {**os.environ, "SER_CACHE_DIR": str(cache)}
    data, options = (TESS_DIR.parent, pool) if pool else (TESS_DIR, ["--split", "none"])
    command = [sys.executable, "-m", "ser", "train", str(data), *options, "--out", str(out)]
    if epochs:
        command += ["--epochs", str(epochs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--pool", action="store_true", help="the bundled SVM's command on the pool")
    parser.add_argument("--no-evaluate", action="store_true", help="with --pool: the final fit alone")
    args = parser.parse_args()
    pool = (FINAL_FIT if args.no_evaluate else POOL) if args.pool else None
    if not TESS_DIR.is_dir():
        sys.exit(f"TESS not found at {TESS_DIR}; set SER_DATA_DIR")
    cold, warm, peaks = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            cache = Path(tmp) / f"cache{i}"
            for times in (cold, warm):  # the first run fills the cache, the second reads it
                elapsed, peak = run(cache, Path(tmp) / f"models{i}", args.epochs, pool)
                times.append(elapsed)
                peaks.append(peak)
    emit(
        ("train_time-pool-final" if args.no_evaluate else "train_time-pool") if args.pool else "train_time",
        {
            "data": f"the pool of {TESS_DIR.parent}: {' '.join(pool)}" if pool else "TESS (../shared/data/tess)",
            "load_average_after": round(os.getloadavg()[0], 2),
            "repeats": args.repeats,
            "cold_s": cold,
            "warm_s": warm,
            "cold_s_median": statistics.median(cold),
            "warm_s_median": statistics.median(warm),
            "warm_over_cold": statistics.median(warm) / statistics.median(cold),
            "peak_rss_mb_max": max(peaks),
        },
    )


if __name__ == "__main__":
    main()
