"""How long Stop takes to end a training run: from ``JOB.stop()`` to the run's thread ending.

    .venv/bin/python bench/stop.py [--repeats 3] [--corpus ../shared/data/tess]

Each repeat starts the Train page's job (``ser.app.jobs.TrainingJob``, cnn, split none) on the corpus,
waits for its first epoch to end, then stops it half-way through the second. Measured with the
stop checked after every batch (now) and, for comparison, only at an epoch's end (before: the
batch check switched off), each with the epoch's own duration. Features come from the usual cache
(``$SER_CACHE_DIR``), so only the first run on a machine computes them.
Target (issue 12): Stop ends the run within a second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import TESS_DIR, emit

from ser.app.jobs import TrainingJob
from ser.config import TrainConfig
from ser.corpora.datasets import discover


def stop_once(manifest, models_dir: Path) -> tuple[float, float, str]:
    """(seconds from stop() to the end of the run, the first epoch's seconds, how it ended)."""
    job = TrainingJob()
    job.start(manifest, split="none", config=TrainConfig(epochs=50, patience=50), models_dir=models_dir)
    while not job.snapshot().logs:
        if not job.snapshot().running:
            raise RuntimeError(f"the run ended before its first epoch: {job.snapshot().error}")
        time.sleep(0.01)
    epoch_s = job.snapshot().logs[0].elapsed_s
    time.sleep(epoch_s / 2)
    start = time.perf_counter()
    job.stop()
    state = job.wait()
    return time.perf_counter() - start, epoch_s, state.status


def measure(manifest, repeats: int) -> dict:
    stops, epochs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            seconds, epoch_s, status = stop_once(manifest, Path(tmp) / str(i))
            if status != "stopped":
                raise RuntimeError(f"the run ended {status}, not stopped")
            stops.append(seconds)
            epochs.append(epoch_s)
    return {"stop_s": {"median": statistics.median(stops), "runs": stops}, "epoch_s_median": statistics.median(epochs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=TESS_DIR)
    args = parser.parse_args()
    manifest = discover(args.corpus)
    after = measure(manifest, args.repeats)

    from ser.training import train

    train._Report.on_train_batch_end = lambda self, batch, logs=None: None  # the check at an epoch's end only
    before = measure(manifest, args.repeats)
    emit(
        "stop",
        {"corpus": str(args.corpus), "n_clips": len(manifest), "after_batch_check": after,
         "epoch_end_check_only": before, "target_s": 1.0},
    )  # fmt: skip


if __name__ == "__main__":
    main()
