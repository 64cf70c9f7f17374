"""End-to-end prediction latency and memory, with the model already loaded.

A 2 s clip (a real TESS clip when ../shared is present, else a demo-corpus clip padded to 2 s)
is decoded from its file bytes, turned into features and classified, N times. ``detector_s`` is
the voice-activity detector's share of ``predict_s`` (ser.audio.speech, timed apart on the same waveform).
Also: bundle load time (TensorFlow already imported) and peak memory (RSS) of the process, and for
a model that smooths a speaker's clips, the time to smooth 10, 100 and 1,000 clips already classified.
``--rounds``: the runs are made in that many rounds, each with its own median (``total_s_rounds``), as
one round's median moves with the host by up to a fifth; the medians at the top are of every run.

    .venv/bin/python bench/latency.py [--runs 200] [--rounds 1] [--loads 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import resource
import statistics
import time

import numpy as np
import soundfile as sf
from common import ROOT, TESS_DIR, emit

from ser.audio.load import load_audio
from ser.audio.speech import voice_probability
from ser.models.bundle import load_bundle
from ser.serving.predict import Predictor
from ser.store.registry import active_path


def two_second_clip() -> bytes:
    """WAV bytes of 2 s of speech at the corpus' own rate."""
    tess = sorted(TESS_DIR.rglob("*_back_angry.*")) if TESS_DIR.is_dir() else []
    path = tess[0] if tess else sorted((ROOT / "assets" / "demo_corpus").rglob("*.ogg"))[0]
    waveform, sr = sf.read(path, dtype="float32")
    n = 2 * sr
    waveform = np.pad(waveform, (0, max(0, n - len(waveform))))[:n]
    buffer = io.BytesIO()
    sf.write(buffer, waveform, sr, format="WAV")
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --runs runs each")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--model", default=None, help="bundle folder (default: the active one)")
    args = parser.parse_args()

    load_s = []
    for _ in range(args.loads):
        start = time.perf_counter()
        bundle = load_bundle(args.model or active_path())
        load_s.append(time.perf_counter() - start)
    predictor = Predictor(bundle)
    data = two_second_clip()
    for _ in range(5):  # warm-up: first calls trace the graph
        predictor.predict(load_audio(data))
    stages: dict[str, list[float]] = {"decode_s": [], "predict_s": [], "detector_s": [], "total_s": []}
    profile = None
    if predictor.takes_profiles:  # a voice profile from a few other clips of a voice
        clips = sorted((ROOT / "assets" / "demo_corpus").rglob("EF1_*.ogg"))[:10]
        profile = predictor.build_profile([load_audio(c) for c in clips], "bench")
        stages["total_with_profile_s"] = []
    rounds = []
    for run in range(args.runs * args.rounds):
        if run and run % args.runs == 0:
            rounds.append(statistics.median(stages["total_s"][-args.runs :]))
        t0 = time.perf_counter()
        waveform = load_audio(data)
        t1 = time.perf_counter()
        predictor.predict(waveform)
        t2 = time.perf_counter()
        stages["decode_s"].append(t1 - t0)
        stages["predict_s"].append(t2 - t1)
        stages["total_s"].append(t2 - t0)
        voice_probability(waveform)
        stages["detector_s"].append(time.perf_counter() - t2)
        if profile is not None:
            t3 = time.perf_counter()
            predictor.predict(load_audio(data), profile=profile)
            stages["total_with_profile_s"].append(time.perf_counter() - t3)
    rounds.append(statistics.median(stages["total_s"][-args.runs :]))
    smoothing = smoothing_times(predictor, predictor.predict(load_audio(data), profile=profile)) if profile else {}
    emit(
        f"latency-{bundle.name}" if args.model else "latency",
        {
            "model": bundle.name,
            "clip_s": 2.0,
            "runs": args.runs * args.rounds,
            "rounds": args.rounds,
            "total_s_rounds": rounds,
            **{f"{k}_median": statistics.median(v) for k, v in stages.items()},
            **{f"{k}_p95": percentile(v, 95) for k, v in stages.items()},
            "load_s_median": statistics.median(load_s),
            "load_runs": args.loads,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "smooth_s_median": smoothing,
        },
    )


def smoothing_times(predictor: Predictor, answer, repeats: int = 20) -> dict[int, float]:
    """Median seconds of ``Predictor.smooth`` over n clips of one speaker (the clip's answer with its
    vector moved by noise, n = 10, 100, 1000), after every clip was classified."""
    rng = np.random.default_rng(0)
    times = {}
    for n in (10, 100, 1000):
        batch = [
            dataclasses.replace(answer, vector=answer.vector + rng.normal(size=answer.vector.shape)) for _ in range(n)
        ]
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            predictor.smooth(batch)
            runs.append(time.perf_counter() - start)
        times[n] = statistics.median(runs)
    return times


if __name__ == "__main__":
    main()
