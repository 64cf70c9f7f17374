"""Numbers and matrices for exploring a corpus: per-clip duration, loudness and pitch,
display spectrograms with their axes, the mean mel spectrum of each emotion.

Pure numpy/librosa on 16 kHz waveforms, plus ``corpus_stats`` which decodes files through
``ser.audio.load``. No Streamlit here; the explore page caches and draws what these return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from ser.audio.decode import describe
from ser.audio.load import load_audio
from ser.audio.speech import TRIM_HOP, speech_mask, trim_silence
from ser.config import SAMPLE_RATE, FeatureConfig, ProgressFn
from ser.corpora.datasets import Clip, Manifest
from ser.errors import SERError
from ser.features.windows import log_mel_spectrogram
from ser.units import dbfs

F0_MIN_HZ = 60.0  # below the lowest adult male voice
F0_MAX_HZ = 500.0  # above a raised female voice (TESS fear and surprise reach ~400 Hz)
VOICED_TOP_DB = 30.0  # frames this far below the loudest are silence: trimmed, and not used for f0
DB_PER_NEPER = 10 / math.log(10)  # natural-log power -> dB: 4.343
DISPLAY_FEATURES = FeatureConfig(n_mels=64, n_mfcc=20, normalize="none")  # finer mel bands to look at


@dataclass(frozen=True)
class ClipStats:
    duration_s: float  # whole clip, silence included
    speech_s: float  # after trimming leading and trailing silence
    rms_dbfs: float  # RMS level of the trimmed clip
    f0_hz: float  # median pitch over voiced frames; NaN when none is found
    mel_db: np.ndarray  # [shape=(n_mels,)] mean log-mel power of the trimmed clip, dB


@dataclass(frozen=True)
class Spectrograms:
    mel_db: np.ndarray  # [shape=(n_mels, t)] log-mel power, dB
    mfcc: np.ndarray  # [shape=(n_mfcc, t)]
    times_s: np.ndarray  # [shape=(t,)] centre of each frame
    mel_hz: np.ndarray  # [shape=(n_mels,)] centre frequency of each mel band


def median_f0(waveform: np.ndarray, sr: int = SAMPLE_RATE, *, frame_length: int = 1024) -> float:
    """Median fundamental frequency (librosa.yin) over the frames within VOICED_TOP_DB of the loudest
    (``ser.audio.speech.speech_mask``, the trimming's own decision).

    Returns Hz, or NaN for a clip too short for one analysis frame.
    """
    if len(waveform) < frame_length:
        return math.nan
    hop_length = frame_length // 4
    f0 = librosa.yin(waveform, fmin=F0_MIN_HZ, fmax=F0_MAX_HZ, sr=sr, frame_length=frame_length, hop_length=hop_length)
    loud = speech_mask(waveform, top_db=VOICED_TOP_DB).loud
    # yin's frame i and loudness frame j are centred on samples i * hop_length and j * TRIM_HOP
    voiced = f0[loud[np.minimum(np.arange(len(f0)) * hop_length // TRIM_HOP, len(loud) - 1)]]
    return float(np.median(voiced)) if len(voiced) else math.nan


def mel_frequencies(config: FeatureConfig) -> np.ndarray:
    """Centre frequency of each mel band. Returns np.ndarray [shape=(n_mels,)], Hz"""
    return librosa.mel_frequencies(n_mels=config.n_mels + 2, fmin=config.fmin, fmax=config.fmax)[1:-1]


def spectrograms(waveform: np.ndarray, config: FeatureConfig = DISPLAY_FEATURES) -> Spectrograms:
    """Log-mel (dB) and MFCC matrices of a waveform, with their time and frequency axes."""
    log_mel = log_mel_spectrogram(waveform, config)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    times_s = librosa.frames_to_time(np.arange(log_mel.shape[1]), sr=config.sample_rate, hop_length=config.hop_length)
    return Spectrograms(DB_PER_NEPER * log_mel, mfcc, times_s, mel_frequencies(config))


def waveform_stats(
    waveform: np.ndarray, sr: int = SAMPLE_RATE, *, config: FeatureConfig = DISPLAY_FEATURES
) -> ClipStats:
    """Duration, speech duration, loudness, pitch and mean mel spectrum of one clip."""
    speech = trim_silence(waveform, top_db=VOICED_TOP_DB)
    speech = speech if len(speech) else waveform
    mel_db = DB_PER_NEPER * log_mel_spectrogram(speech, config).mean(axis=1)
    rms_dbfs = dbfs(np.sqrt(np.mean(np.square(speech, dtype=np.float64))))
    return ClipStats(len(waveform) / sr, len(speech) / sr, rms_dbfs, median_f0(speech, sr), mel_db)


def corpus_stats(clips: Sequence[Clip], *, progress: ProgressFn | None = None) -> list[dict]:
    """One row per clip: path, speaker, emotion, text, duration_s, speech_s, rms_dbfs, f0_hz and
    mel_db (a list), or an ``error`` for a clip that cannot be decoded (its numbers are NaN)."""
    rows = []
    for i, clip in enumerate(clips):
        row = {"path": str(clip.path), "speaker": clip.speaker, "emotion": clip.emotion, "text": clip.text}
        try:
            stats = waveform_stats(load_audio(clip.path))
            row |= {
                "duration_s": stats.duration_s,
                "speech_s": stats.speech_s,
                "rms_dbfs": stats.rms_dbfs,
                "f0_hz": stats.f0_hz,
                "mel_db": stats.mel_db.tolist(),
                "error": "",
            }
        except SERError as e:
            row |= dict.fromkeys(("duration_s", "speech_s", "rms_dbfs", "f0_hz"), math.nan)
            row |= {"mel_db": None, "error": str(e)}
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(clips))
    return rows


def mean_mel_per_emotion(rows: Sequence[dict]) -> dict[str, np.ndarray]:
    """Average of the clips' mean mel spectra, per emotion: {emotion: [shape=(n_mels,)] dB}"""
    by_emotion: dict[str, list[list[float]]] = {}
    for row in rows:
        if row.get("mel_db") is not None:
            by_emotion.setdefault(row["emotion"], []).append(row["mel_db"])
    return {emotion: np.mean(spectra, axis=0) for emotion, spectra in by_emotion.items()}


def total_duration_s(paths: Sequence[Path]) -> tuple[float, list[str]]:
    """Summed duration from the files' headers (nothing decoded), and the files whose header
    does not give one (with the reason)."""
    total, problems = 0.0, []
    for path in paths:
        try:
            duration_s = describe(path)["duration_s"]
        except SERError as e:
            problems.append(f"{path.name}: {e}")
            continue
        if duration_s is None:
            problems.append(f"{path.name}: the container does not state its length")
        else:
            total += duration_s
    return total, problems


def counts_table(manifest: Manifest) -> dict[str, dict[str, int]]:
    """Clips per speaker and emotion, with totals: {speaker or "total": {emotion or "total": n}}"""
    emotions = manifest.emotions
    counts = manifest.counts()
    table = {}
    for speaker in [*manifest.speakers, "total"]:
        row = {e: sum(n for (s, e2), n in counts.items() if e2 == e and speaker in (s, "total")) for e in emotions}
        table[speaker] = {**row, "total": sum(row.values())}
    return table
