"""Voices it never heard, through the channels people have: leave one corpus out on the pool of
../shared/data (as pool.py), each test corpus scored clean and through a phone call (AMR-NB
12.2 kbit/s at 8 kHz), the browser microphone's codec at a low rate (Opus 16 kbit/s), an MP3 at
32 kbit/s, pink noise at 10 dB SNR, and a reverberant room (RT60 0.7 s, as much reverberation as
direct sound). The models train on the clean corpora only; zero-shot and per speaker (each test
speaker's clips all through the same channel, as one person's recordings are). Medians over --seeds.

The codecs are PyAV's (FFmpeg's encoders), decoded back by the app's own ``load_audio``. Each
degraded clip is written once as FLAC under ``$SER_CACHE_DIR/../degraded`` (about 1 GB for the
pool's five channels) and its features cached as any clip's.

    .venv/bin/python bench/robustness.py [--channels phone,opus,...] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import emit
from pool import KEYS, load_pool

from ser.audio.load import load_audio, resample
from ser.config import EMOTIONS, AudioConfig, TrainConfig
from ser.corpora.datasets import Manifest
from ser.corpora.layouts import Clip
from ser.corpora.splits import make_splits
from ser.features.corpus import prepare
from ser.features.windows import default_cache_dir
from ser.models.archs import ARCHITECTURES
from ser.training.evaluation import score
from ser.training.train import run_fold

SR = 16_000
CHANNELS = {
    "phone": "AMR-NB 12.2 kbit/s at 8 kHz (a mobile phone call)",
    "opus": "Opus 16 kbit/s at 48 kHz (WebRTC's codec at a low rate)",
    "mp3": "MP3 32 kbit/s at 16 kHz",
    "noise": "pink noise at 10 dB SNR",
    "room": "reverberation, RT60 0.7 s, direct-to-reverberant ratio 0 dB",
}


def codec(wave: np.ndarray, name: str, container: str, rate: int, bit_rate: int) -> np.ndarray:
    """``wave`` (16 kHz) encoded by FFmpeg's ``name`` at ``rate`` Hz and ``bit_rate``, decoded back to 16 kHz."""
    import av

    pcm = np.clip(resample(wave, SR, rate) * 32767, -32768, 32767).astype(np.int16)[None, :]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(name, rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return load_audio(buffer.getvalue())


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise / np.sqrt(np.mean(noise**2))


def room(wave: np.ndarray, rng: np.random.Generator, rt60: float = 0.7) -> np.ndarray:
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * SR)) / SR
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * SR)] = 0.0  # the first reflections arrive after the direct sound
    tail /= np.sqrt(np.sum(tail**2))  # as much reverberant energy as direct
    wet = fftconvolve(wave, np.concatenate([[1.0], tail[1:]]))[: len(wave)]
    return wet / max(1.0, float(np.max(np.abs(wet))) / 0.99)


def degrade(wave: np.ndarray, channel: str, seed: int) -> np.ndarray:
    """A 16 kHz waveform through ``channel`` (one of CHANNELS), back at 16 kHz, float32."""
    return _through(wave, channel, np.random.default_rng(seed)).astype(np.float32)


def _through(wave: np.ndarray, channel: str, rng: np.random.Generator) -> np.ndarray:
    if channel == "phone":
        return codec(wave, "libopencore_amrnb", "amr", 8_000, 12_200)
    if channel == "opus":
        return codec(wave, "libopus", "ogg", 48_000, 16_000)
    if channel == "mp3":
        return codec(wave, "libmp3lame", "mp3", SR, 32_000)
    if channel == "noise":
        level = np.sqrt(np.mean(wave**2)) / 10 ** (10 / 20)  # 10 dB below the clip's RMS
        noisy = wave + level * pink(len(wave), rng)
        return noisy / max(1.0, float(np.max(np.abs(noisy))) / 0.99)
    if channel == "room":
        return room(wave, rng)
    raise SystemExit(f"unknown channel {channel}")


def _write(job: tuple[str, str, str, int]) -> None:
    import soundfile as sf

    source, target, channel, seed = job
    out = degrade(load_audio(source), channel, seed)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    sf.write(target + ".part.flac", out, SR)
    Path(target + ".part.flac").replace(target)


def degraded(pool: Manifest, channel: str, folder: Path) -> dict[Clip, Clip]:
    """Each clip of ``pool`` through ``channel``, written once under ``folder``."""
    moved = {c: dataclasses.replace(c, path=folder / channel / c.corpus / f"{c.path.parent.name}__{c.path.stem}.flac")
             for c in pool.clips}  # fmt: skip
    jobs = [(str(c.path), str(d.path), channel, i) for i, (c, d) in enumerate(moved.items()) if not d.path.exists()]
    if jobs:
        start = time.perf_counter()
        with ProcessPoolExecutor(2) as workers:
            list(workers.map(_write, jobs, chunksize=32))
        print(f"{channel}: {len(jobs)} clips degraded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return moved


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", default=",".join(CHANNELS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arch", default="egemaps-svm")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    pool = load_pool().filter(emotions=list(EMOTIONS))
    channels = args.channels.split(",")
    folder = default_cache_dir().parent / "degraded"
    moved = {channel: degraded(pool, channel, folder) for channel in channels}
    labels, arch = list(EMOTIONS), ARCHITECTURES[args.arch]
    audio = AudioConfig()
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row: dict[str, dict] = {"clean": {}, **{channel: {} for channel in channels}}
        for split in make_splits(pool, "corpus", seed=seed):
            fold = run_fold(split, labels, arch.features, TrainConfig(arch=args.arch, seed=seed))
            test_corpus = split.test[0].corpus
            row["clean"][test_corpus] = _modes(fold.metrics)
            for channel in channels:
                data = prepare([moved[channel][c] for c in split.test], labels, arch.features, augment=False,
                               audio_config=audio, progress=False)  # fmt: skip
                metrics = score(fold.model, data, labels)
                metrics["per_speaker"] = score(fold.model, data, labels, per_speaker=True)
                row[channel][test_corpus] = _modes(metrics)
            print(seed, test_corpus, {k: v[test_corpus] for k, v in row.items()}, file=sys.stderr, flush=True)
        runs.append({"seed": seed, "conditions": row})
    summary = {}
    for condition in ("clean", *channels):
        summary[condition] = {
            mode: {k: statistics.median(_mean(r["conditions"][condition], mode, k) for r in runs) for k in KEYS}
            for mode in ("zero_shot", "per_speaker")
        }
    emit(f"robustness-{args.tag}" if args.tag else "robustness", {
        "data": "../shared/data: tess, ravdess (A01-A16 less the example voice A16), emodb; leave one corpus out",
        "arch": args.arch, "channels": {c: CHANNELS[c] for c in channels}, "seeds": args.seeds,
        "median_of_fold_means": summary, "runs": runs,
    })  # fmt: skip


def _modes(metrics: dict) -> dict:
    return {
        "zero_shot": {k: round(metrics[k], 4) for k in KEYS},
        "per_speaker": {k: round(metrics["per_speaker"][k], 4) for k in KEYS},
    }


def _mean(folds: dict, mode: str, key: str) -> float:
    return round(float(np.mean([f[mode][key] for f in folds.values()])), 4)


if __name__ == "__main__":
    main()
