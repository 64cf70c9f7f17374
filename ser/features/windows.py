"""Waveform -> feature matrices, fixed-length windows, and the on-disk feature cache.

The feature functions are pure numpy/librosa on 16 kHz waveforms. Only the corpus
helpers at the bottom touch files: they decode through ``ser.audio.load`` and keep the
result in a cache keyed by the file (path, size, mtime) and the feature config.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from ser.audio.load import load_audio, resample
from ser.audio.speech import speech_mask
from ser.config import AudioConfig, FeatureConfig, ProgressFn
from ser.errors import AudioContentError, SERError
from ser.features.functionals import egemaps, egemaps_contours
from ser.features.workers import pool_size, process_pool

LOG_FLOOR = 1e-6  # added to mel power before the log, about -60 dB below a full-scale tone
CACHE_VERSION = 4  # bump when the feature code changes in a way the config does not capture


@functools.lru_cache(maxsize=64)
def mel_filterbank(config: FeatureConfig, *, warp: float = 1.0) -> np.ndarray:
    """Mel filters, optionally frequency-warped (vocal-tract-length perturbation).

    ``warp`` > 1 moves spectral content up (a shorter vocal tract, a higher voice):
    the filter for a band reads the spectrum at ``f / warp``.

    Returns np.ndarray [shape=(n_mels, 1 + n_fft // 2)], float32, cached: treat as read-only
    """
    base = librosa.filters.mel(
        sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
    )
    if warp == 1.0:
        return base.astype(np.float32)
    freqs = np.linspace(0.0, config.sample_rate / 2, base.shape[1])
    warped = np.stack([np.interp(freqs * warp, freqs, row, right=0.0) for row in base])
    return warped.astype(np.float32)


def power_spectrogram(waveform: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """|STFT|^2 of a waveform. Returns np.ndarray [shape=(1 + n_fft // 2, t)], float32"""
    stft = librosa.stft(waveform, n_fft=config.n_fft, hop_length=config.hop_length, center=True)
    return (np.abs(stft) ** 2).astype(np.float32)


def spectrum_to_features(power: np.ndarray, config: FeatureConfig, *, warp: float = 1.0) -> np.ndarray:
    """Power spectrogram -> log-mel or MFCC, normalised as the config says.

    Returns np.ndarray [shape=(n_bins, t)], float32
    """
    mel = mel_filterbank(config, warp=warp) @ power
    features = np.log(mel + LOG_FLOOR)
    if config.kind == "mfcc":
        features = librosa.feature.mfcc(S=features, n_mfcc=config.n_mfcc)
    if config.normalize != "none":
        # Removing each band's mean over the clip removes the speaker's fixed timbre and the
        # channel's colouring, keeping how the bands move over time.
        features = features - features.mean(axis=1, keepdims=True)
        scale = features.std(axis=1, keepdims=True) if config.normalize == "utterance" else features.std()
        features = features / (scale + 1e-3)
    return features.astype(np.float32)


def log_mel_spectrogram(waveform: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """Natural-log mel power, not normalised. Returns np.ndarray [shape=(n_mels, t)]"""
    config = config or FeatureConfig()
    mel = mel_filterbank(config) @ power_spectrogram(waveform, config)
    return np.log(mel + LOG_FLOOR).astype(np.float32)


def mfcc(waveform: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """MFCCs from the log-mel spectrogram. Returns np.ndarray [shape=(n_mfcc, t)]"""
    config = config or FeatureConfig()
    return librosa.feature.mfcc(S=log_mel_spectrogram(waveform, config), n_mfcc=config.n_mfcc)


def pad_or_trim(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Centre-crop a longer waveform or keep a shorter one whole (padding happens on frames)."""
    if len(waveform) <= n_samples:
        return waveform
    start = (len(waveform) - n_samples) // 2
    return waveform[start : start + n_samples]


def pad_frames(features: np.ndarray, n_frames: int) -> np.ndarray:
    """Centre a [n_bins, t] matrix in n_frames columns, zero-filled (zero is the mean after
    normalisation). Returns np.ndarray [shape=(n_bins, n_frames)]"""
    n_bins, t = features.shape
    if t >= n_frames:
        start = (t - n_frames) // 2
        return features[:, start : start + n_frames]
    out = np.zeros((n_bins, n_frames), dtype=np.float32)
    start = (n_frames - t) // 2
    out[:, start : start + t] = features
    return out


def window_features(waveform: np.ndarray, config: FeatureConfig, warps: Sequence[float] = (1.0,)) -> np.ndarray:
    """The features of one window (a longer waveform is cut to its centre), under each warp: a
    VTLP factor of the mel filterbank for frame features, a speed factor for functionals.

    Returns np.ndarray [shape=(len(warps), n_bins, n_frames)], float32
    """
    return _window(waveform, config, warps)[0]


def _window(
    waveform: np.ndarray, config: FeatureConfig, warps: Sequence[float]
) -> tuple[np.ndarray, np.ndarray | None]:
    """``window_features`` and, for a config with ``contours``, the window's descriptor contours
    under each warp, from the same openSMILE runs [shape=(len(warps), contour_frames, N_CONTOUR)] (else None)."""
    if config.kind == "egemaps":
        voiced = [change_speed(waveform, w, config.sample_rate) for w in warps]
        if not config.contours:
            return np.stack([egemaps(v, config.sample_rate)[:, None] for v in voiced]), None
        values, contours = zip(
            *(egemaps_contours(v, config.sample_rate, config.contour_frames) for v in voiced), strict=True
        )
        return np.stack(values)[:, :, None], np.stack(contours)
    power = power_spectrogram(pad_or_trim(waveform, config.n_samples), config)
    features = [pad_frames(spectrum_to_features(power, config, warp=w), config.n_frames) for w in warps]
    return np.stack(features), None


def change_speed(waveform: np.ndarray, factor: float, sr: int) -> np.ndarray:
    """The waveform played ``factor`` times faster: pitch and formants up by ``factor``, length
    down by it (speed perturbation; 1.0 returns it unchanged)."""
    return waveform if factor == 1.0 else resample(waveform, sr * factor, sr)


def window_starts(n_samples: int, config: FeatureConfig) -> np.ndarray:
    """Start samples of the windows covering a clip: one for a clip that fits, else every hop_s,
    the last window ending at the clip's end. Returns np.ndarray [shape=(n_windows,)], int"""
    if n_samples <= config.n_samples:
        return np.zeros(1, dtype=int)
    hop = round(config.hop_s * config.sample_rate)
    starts = np.arange(0, n_samples - config.n_samples + 1, hop)
    if starts[-1] + config.n_samples < n_samples:
        starts = np.append(starts, n_samples - config.n_samples)
    return starts


@dataclass(frozen=True)
class Windows:
    """The windows of a clip's speech and their features: what training, evaluation and serving
    all feed the model (``extract_features``)."""

    features: np.ndarray  # [shape=(n_windows, n_warps, n_bins, n_frames)], float32
    starts_s: np.ndarray  # [shape=(n_windows,)], start of each window, from the start of the waveform given
    ends_s: np.ndarray  # [shape=(n_windows,)], its end: the window's length later, or the end of the speech
    speech: np.ndarray  # [shape=(n_windows,)], bool: holds at least min_duration_s of speech (else a pause)
    # [shape=(n_windows, n_warps, contour_frames, N_CONTOUR)] for a config with contours (NaN rows: past
    # the window's end), else None
    contours: np.ndarray | None = None

    def speech_span_s(self, after_s: float = -np.inf) -> float:
        """Seconds of the recording its speech windows cover, each second once (the windows overlap
        by their length less the hop), counting only what lies after ``after_s``: the end of what
        an earlier chunk of the same recording covered."""
        covered, total = after_s, 0.0
        for start, end in zip(self.starts_s[self.speech], self.ends_s[self.speech], strict=True):
            total += max(0.0, float(end) - max(float(start), covered))
            covered = max(covered, float(end))
        return total


def extract_features(
    waveform: np.ndarray,
    config: FeatureConfig,
    audio_config: AudioConfig = AudioConfig(),
    *,
    warps: Sequence[float] = (1.0,),
) -> Windows:
    """A validated 16 kHz waveform -> its speech (leading and trailing silence trimmed) cut into
    the model's windows, each window's features, and whether it is speech or a pause."""
    chunks = list(iter_features(waveform, config, audio_config, warps=warps))
    return concatenate_windows(chunks)


def concatenate_windows(chunks: Sequence[Windows]) -> Windows:
    """The windows of consecutive chunks of one recording as one ``Windows``."""
    return Windows(
        *(None if parts[0] is None else np.concatenate(parts)
          for parts in zip(*(dataclasses.astuple(c) for c in chunks), strict=True))
    )  # fmt: skip


def iter_features(
    waveform: np.ndarray,
    config: FeatureConfig,
    audio_config: AudioConfig = AudioConfig(),
    *,
    warps: Sequence[float] = (1.0,),
    chunk: int = 64,
) -> Iterator[Windows]:
    """``extract_features`` ``chunk`` windows at a time, so an hour of audio never has all its
    windows' features in memory at once (64 windows of 3 s: 6 MB of features, and the model's
    activations for 64 windows rather than thousands)."""
    mask = speech_mask(waveform, top_db=audio_config.trim_top_db, detect_voice=audio_config.detect_voice)
    start, end = mask.bounds
    if end - start < audio_config.min_duration_s * config.sample_rate:
        raise AudioContentError(
            f"after trimming silence only {(end - start) / config.sample_rate:.2f} s of sound is left; "
            f"at least {audio_config.min_duration_s:.2f} s of speech is needed"
        )
    starts = window_starts(end - start, config) + start
    n_speech = mask.speech_samples(starts, config.n_samples)
    speech = n_speech >= audio_config.min_duration_s * config.sample_rate
    for i in range(0, len(starts), chunk):
        part = starts[i : i + chunk]
        cut = [waveform[s : min(s + config.n_samples, end)] for s in part]
        features, contours = zip(*(_window(w, config, warps) for w in cut), strict=True)
        ends = np.minimum(part + config.n_samples, end)
        yield Windows(
            np.stack(features), part / config.sample_rate, ends / config.sample_rate, speech[i : i + chunk],
            None if contours[0] is None else np.stack(contours),
        )  # fmt: skip


# --- corpus extraction with an on-disk cache -------------------------------------------------


def default_cache_dir() -> Path:
    """``$SER_CACHE_DIR``, else ``~/.cache/ser-studio/features``."""
    env = os.environ.get("SER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ser-studio" / "features"


def cache_key(path: Path, config: FeatureConfig, warps: Sequence[float], audio_config: AudioConfig) -> str:
    """Key from the file's identity (absolute path, size, mtime) and everything that shapes the result."""
    stat = path.stat()
    identity = {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        # without contours, keyed as before they existed: the caches of earlier versions stay valid
        "config": {k: v for k, v in config.to_dict().items() if k != "contours" or v},
        "warps": [round(w, 6) for w in warps],
        "audio": dataclasses.asdict(audio_config),
        "version": CACHE_VERSION,
    }
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def file_features(path: Path, config: FeatureConfig, warps: Sequence[float], audio_config: AudioConfig) -> Windows:
    """Decode one file and return its windows' features under each warp: frame features in float16
    (half the cache), functionals in float32 (a few values a window, and some, such as a slope's
    spread, overflow float16), contours in float16 (7,500 values a window and speed against the
    functionals' 89, so most of the cache; a network reads them in units of its speaker's spread,
    where float16's three digits are plenty). Raises what ``load_audio`` raises."""
    windows = extract_features(load_audio(path, config=audio_config), config, audio_config, warps=warps)
    dtype = np.float32 if config.kind == "egemaps" else np.float16
    contours = None if windows.contours is None else windows.contours.astype(np.float16)
    return dataclasses.replace(windows, features=windows.features.astype(dtype), contours=contours)


_Job = tuple[Path, FeatureConfig, tuple[float, ...], AudioConfig, Path | None]  # one file of extract_corpus


def _cached_file_features(args: _Job) -> Windows | str:
    path, config, warps, audio_config, cache_dir = args
    target = cache_dir / f"{cache_key(path, config, warps, audio_config)}.npz" if cache_dir else None
    if target is not None and target.exists():
        try:
            with np.load(target) as saved:
                return Windows(**{name: saved[name] for name in saved.files})
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is recomputed below
    try:
        windows = file_features(path, config, warps, audio_config)
    except SERError as e:
        return f"{path.name}: {e}"
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **{k: v for k, v in dataclasses.asdict(windows).items() if v is not None})
        os.replace(tmp, target)  # atomic: a reader never sees half a file
    return windows


def extract_corpus(
    paths: Sequence[Path],
    config: FeatureConfig,
    *,
    warps: Sequence[float] = (1.0,),
    audio_config: AudioConfig = AudioConfig(),
    cache_dir: Path | None = None,
    n_jobs: int | None = None,
    progress: ProgressFn | None = None,
) -> tuple[list[Windows | None], list[str]]:
    """``extract_features`` of many files (``file_features``), from the cache where possible,
    over a process pool.

    Files that cannot be used are None in the list, and reported as messages. An exception from
    ``progress`` ends the pass, the clips not started yet left undone.
    Returns (one ``Windows`` (float16 frame features, float32 functionals) or None per path, list of error messages)
    """
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    jobs = [(Path(p), config, tuple(warps), audio_config, cache_dir) for p in paths]
    n_jobs = n_jobs or pool_size(len(jobs))  # CPUs, and no more workers than free memory holds
    results: list[Windows | str] = []
    if n_jobs <= 1 or len(jobs) < 16:
        iterator = map(_cached_file_features, jobs)
        results = _collect(iterator, len(jobs), progress)
    else:
        # A progress callback that raises (a stopped run) or Ctrl-C ends the workers at once.
        with process_pool(n_jobs) as pool:
            results = _collect(pool.map(_cached_file_features, jobs, chunksize=16), len(jobs), progress)
    return [None if isinstance(r, str) else r for r in results], [r for r in results if isinstance(r, str)]


def _collect(iterator, total: int, progress: ProgressFn | None) -> list[Windows | str]:
    results = []
    for i, result in enumerate(iterator, start=1):
        results.append(result)
        if progress is not None:
            progress(i, total)
    return results
