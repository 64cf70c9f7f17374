"""What the command line prints: a prediction as a line of text or JSON, an evaluation as a report,
and the progress of a pass over clips (on a terminal, or in a log)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ser.config import ProgressFn

LOG_EVERY_S = 5.0  # at most one progress line this often in a log (stderr not a terminal)


def format_report(report: dict[str, Any]) -> str:
    labels = report["labels"]
    lines = [
        f"model {report['model']}  on {report['n_clips']} clips",
        f"accuracy {report['accuracy']:.3f}   macro-F1 {report['macro_f1']:.3f}   UAR {report['uar']:.3f}",
        f"normalisation: {report['normalisation']}",
        "",
        f"{'':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}",
    ]
    for label in labels:
        c = report["per_class"][label]
        lines.append(f"{label:>10} {c['precision']:9.3f} {c['recall']:7.3f} {c['f1']:6.3f} {c['support']:5d}")
    width = max(7, *(len(x) + 1 for x in labels))  # headers in full: "surprise", not "surpri"
    lines += ["", "confusion (rows: true, columns: predicted)", " " * 10 + "".join(f"{x:>{width}}" for x in labels)]
    for label, row in zip(labels, report["confusion"], strict=True):
        lines.append(f"{label:>10}" + "".join(f"{n:{width}d}" for n in row))
    skipped = report["skipped"]
    lines.append(f"\nskipped {skipped['n']} clips")
    for reason, n in skipped["reasons"].items():
        lines.append(f"  {n:5d}  {reason}")
    lines += [f"         {example}" for example in skipped.get("examples", [])]  # which files, and why
    return "\n".join(lines)


def prediction_json(path: Path, result, with_timeline: bool) -> str:
    prediction = result.prediction
    row = {"file": str(path), "label": prediction.label, "confidence": prediction.confidence}
    row.update(truncated=result.truncated, probabilities=prediction.probabilities)
    row.update(speech_s=prediction.duration_s, recording_s=result.decoded_s)
    row["normalisation"] = prediction.normalised_by
    if with_timeline:
        row["timeline"] = result.timeline.rows() if result.timeline else []
    return json.dumps(row)


def prediction_text(path: Path, result, with_timeline: bool) -> str:
    prediction = result.prediction
    top = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])[:3]
    scores = "  ".join(f"{k} {p:.2f}" for k, p in top)
    how = f"  [{prediction.normalised_by}]" if prediction.normalised_by else ""
    lines = [f"{path}: {prediction.label} ({prediction.confidence:.0%})  {scores}{how}"]
    if with_timeline and result.timeline:
        for window in result.timeline.rows():
            share = f" ({window[window['emotion']]:.0%})" if window["emotion"] in prediction.probabilities else ""
            lines.append(f"  {window['start_s']:8.2f}-{window['end_s']:8.2f} s  {window['emotion']}{share}")
    return "\n".join(lines)


def terminal_progress(label: str) -> ProgressFn:
    """Progress of a pass over clips on stderr: an in-place line on a terminal, else ``log_progress``."""
    if not sys.stderr.isatty():
        return log_progress(label)

    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total} ({100 * done // max(total, 1)}%)", end=end, file=sys.stderr, flush=True)

    return report


def log_progress(
    label: str, *, every_s: float = LOG_EVERY_S, stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ProgressFn:  # fmt: skip
    """Progress for a log file or a pipe (``stream``, default stderr), where an in-place line would
    be a line per clip: "features: 120/1120 clips, 14 s" at a pass's first clip, then at most one
    line every ``every_s`` seconds, and at its last clip. The seconds count from the pass's start."""
    state = {"start": clock(), "last": -math.inf, "done": 0}

    def report(done: int, total: int) -> None:
        now = clock()
        if done <= state["done"]:  # a new pass (another fold, or evaluation after training)
            state["start"], state["last"] = now, -math.inf
        state["done"] = done
        if done in (1, total) or now - state["last"] >= every_s:
            state["last"] = now
            elapsed_s = now - state["start"]
            print(f"{label}: {done}/{total} clips, {elapsed_s:.0f} s", file=stream or sys.stderr, flush=True)

    return report
