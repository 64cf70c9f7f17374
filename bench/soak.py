"""Long sessions keep their memory flat: a Live stream of 30 minutes, then 200 clips classified.

    .venv/bin/python bench/soak.py [--minutes 30] [--clips 200]

Both run in this one process, through the code the pages run, faster than real time:

- Live (pages/live.py): generated speech-like audio (voiced stretches between pauses, 48 kHz
  stereo int16 in 20 ms frames, as WebRTC delivers them) pushed into the page's
  ``StreamClassifier``; every 0.5 s of stream time, as the page's fragment does: the level meter,
  ``readout``, ``recent``, and the two figures drawn and serialised as ``st.plotly_chart`` does.
  Stream time is simulated (``readout(now=...)``), so 30 minutes run as fast as the CPU allows.
- Classify (pages/classify.py): different clips of 2-20 s (WAV bytes, as an upload) through
  ``ser.app.cache.cached_classify`` (``st.cache_data``, at most 64 entries kept) and the session's
  history rows; the page's widgets and Streamlit's delta messages are not part of it. The cache
  holds at most 64 results, so the bound is on what comes after it is full: within 5 %.

RSS is VmRSS of /proc/self/status. Reported: RSS over time, its level after the first minute (or
after the cache filled), the largest excess over that level, the slope of a line fitted after it,
and frames or clips per second.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import pickle
import time
from pathlib import Path

import numpy as np
import plotly.io
import soundfile as sf
import streamlit.logger
from common import emit

from ser.app.cache import cached_classify, cached_predictor
from ser.serving.stream import StreamClassifier
from ser.store.registry import active_path
from ser.viz.plots import probability_figure, timeline_figure

FRAME_RATE = 48_000  # WebRTC's audio rate
FRAME = 960  # samples of one 20 ms frame
READOUT_S = 0.5  # the Live page's refresh
LOOP_S = 37.3  # length of the generated audio, played in a loop (not a multiple of the readout)
SAMPLE_EVERY_S = 10.0  # stream time between RSS samples
CACHE_ENTRIES = 64  # cached_classify's max_entries
BOUND_PERCENT = 5.0  # the Classify soak's bound on growth once the cache is full


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def speech_like(duration_s: float, sr: int, seed: int) -> np.ndarray:
    """Voiced stretches of 0.3-1.5 s (harmonics, vibrato, a random pitch) between pauses of
    0.2-1 s with a little noise. Returns np.ndarray [shape=(n,)], float32 in [-1, 1]"""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < duration_s * sr:
        n = int(rng.uniform(0.3, 1.5) * sr)
        t = np.arange(n) / sr
        pitch = rng.uniform(110, 260) * (1 + 0.06 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
        phase = 2 * np.pi * np.cumsum(pitch) / sr
        voiced = sum(np.sin(k * phase) / k for k in range(1, 9)) * np.sqrt(np.clip(np.sin(np.pi * t / t[-1]), 0, None))
        pause = 0.003 * rng.standard_normal(int(rng.uniform(0.2, 1.0) * sr))
        parts += [0.4 * voiced / np.abs(voiced).max(), pause]
        total += n + len(pause)
    return np.concatenate(parts)[: int(duration_s * sr)].astype(np.float32)


def fit(series: list[dict], x: str, after: float) -> dict:
    """Level at ``after`` (the first sample there), the largest excess over it, and the slope."""
    later = [s for s in series if s[x] >= after]
    base = later[0]["rss_mb"]
    xs, ys = np.array([s[x] for s in later]), np.array([s["rss_mb"] for s in later])
    slope = float(np.polyfit(xs, ys, 1)[0]) if len(later) > 2 else 0.0
    return {
        "rss_mb_at_start_of_fit": round(base, 1),
        "rss_mb_max_after": round(float(ys.max()), 1),
        "max_excess_percent": round(100 * (float(ys.max()) - base) / base, 2),
        "rss_mb_final": round(float(ys[-1]), 1),
        "slope_per_x": slope,
    }


def soak_live(predictor, minutes: float) -> dict:
    classifier = StreamClassifier(predictor)
    loop = speech_like(LOOP_S, FRAME_RATE, seed=1)
    stereo = (np.stack([loop, loop], axis=1) * 32767).astype(np.int16)
    rng = np.random.default_rng(2)
    n_frames = int(minutes * 60 * FRAME_RATE / FRAME)
    per_readout = int(READOUT_S * FRAME_RATE / FRAME)  # 25 frames
    series, start, t0, position = [], time.monotonic(), None, 0
    for i in range(1, n_frames + 1):
        frame = stereo[position : position + FRAME]
        if len(frame) < FRAME:
            position, frame = 0, stereo[:FRAME]
        position += FRAME
        jitter = rng.integers(-8, 9, size=frame.shape, dtype=np.int16)  # no two frames alike
        classifier.push(frame + jitter, FRAME_RATE)
        t0 = time.monotonic() if t0 is None else t0
        if i % per_readout:
            continue
        stream_s = i * FRAME / FRAME_RATE
        classifier.level_dbfs()
        prediction = classifier.readout(now=t0 + stream_s)
        if prediction is not None:
            plotly.io.to_json(probability_figure(prediction.probabilities), validate=False)
        recent = classifier.recent()
        if recent is not None:
            plotly.io.to_json(timeline_figure(recent, at_end=True), validate=False)
        if stream_s % SAMPLE_EVERY_S < READOUT_S / 2:
            series.append({"stream_s": stream_s, "wall_s": round(time.monotonic() - start, 2), "rss_mb": rss_mb()})
    wall_s = time.monotonic() - start
    summary = fit(series, "stream_s", after=60.0)
    summary["slope_mb_per_hour"] = round(summary.pop("slope_per_x") * 3600, 2)
    return {
        "stream_minutes": minutes,
        "frames": n_frames,
        "readouts": n_frames // per_readout,
        "wall_s": round(wall_s, 1),
        "frames_per_s": round(n_frames / wall_s, 1),
        "times_real_time": round(minutes * 60 / wall_s, 1),
        "within_10_percent_of_first_minute": summary["max_excess_percent"] <= 10.0,
        **summary,
        "series": series,
    }


def wav_bytes(waveform: np.ndarray, sr: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, waveform, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def soak_classify(bundle: str, n_clips: int) -> dict:
    rng = np.random.default_rng(3)
    history, series, sizes = [], [], []
    start = time.monotonic()
    for i in range(1, n_clips + 1):
        data = wav_bytes(speech_like(rng.uniform(2, 20), 16_000, seed=100 + i), 16_000)
        result = cached_classify(f"clip-{i}.wav", data, bundle)
        history.append({"model": bundle, **result.row()})  # as the page keeps its session history
        if i <= 8:
            sizes.append(len(pickle.dumps(result)))  # what st.cache_data keeps of one clip
        series.append({"clip": i, "wall_s": round(time.monotonic() - start, 2), "rss_mb": rss_mb()})
    wall_s = time.monotonic() - start
    summary = fit(series, "clip", after=min(CACHE_ENTRIES, n_clips))
    summary["slope_mb_per_100_clips"] = round(summary.pop("slope_per_x") * 100, 2)
    first, full = series[0]["rss_mb"], summary["rss_mb_at_start_of_fit"]
    return {
        "clips": n_clips,
        "clip_s": [2, 20],
        "wall_s": round(wall_s, 1),
        "clips_per_s": round(n_clips / wall_s, 2),
        "cached_entry_mb_mean": round(float(np.mean(sizes)) / 2**20, 3),
        "rss_mb_after_first_clip": round(first, 1),
        "growth_mb_while_the_cache_fills": round(full - first, 1),
        "bound": f"from clip {CACHE_ENTRIES} (the cache full), RSS within {BOUND_PERCENT:g} % of its level then",
        "within_bound": summary["max_excess_percent"] <= BOUND_PERCENT,
        **summary,
        "series": series,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="Live stream time to simulate")
    parser.add_argument("--clips", type=int, default=200, help="clips to classify in a row")
    args = parser.parse_args()
    streamlit.logger.set_log_level(logging.ERROR)  # "no runtime" warnings: st.cache_* work in memory here
    bundle = str(active_path())
    predictor = cached_predictor(bundle)
    live = soak_live(predictor, args.minutes)
    classify = soak_classify(bundle, args.clips)
    load = os.getloadavg()[0]  # a shared machine: the rates above depend on it, the memory does not
    emit("soak", {"model": bundle.rsplit("/", 1)[-1], "load_average_at_end": load, "live": live, "classify": classify})


if __name__ == "__main__":
    main()
