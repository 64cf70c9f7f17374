"""Where a waveform's speech is: loudness trims a clip, a voice-activity detector tells speech
from beeps, hum, noise and music.

``SpeechMask`` holds two flags every TRIM_HOP samples: loud (librosa.effects.trim's decision, which
trims the clip) and voiced (Silero VAD's). A window counts as speech where it is both; trimming,
the pause marking of windows and the corpus statistics all read this one mask.

The detector is Silero VAD's 16 kHz "sequence" ONNX model, run with onnxruntime: one call per 16 s
of audio rather than one per 32 ms frame. Its file comes from the ``silero-vad`` wheel, installed
without its dependencies (the package's own Python wrapper needs PyTorch; the model does not).
"""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass

import numpy as np

from ser.config import AudioConfig
from ser.errors import ModelError

TRIM_FRAME, TRIM_HOP = 2048, 512  # librosa.effects.trim's analysis: 128 ms frames every 32 ms
VAD_DISTRIBUTION, VAD_MODEL = "silero-vad", "silero_vad/data/silero_vad_16k_sequence.onnx"
VAD_FRAME, VAD_CONTEXT = 512, 64  # the model's 32 ms frame (= TRIM_HOP) and the samples of context before it
VAD_BLOCK_FRAMES = 512  # frames per call: 16 s of audio, 1.2 MB of input
VAD_THRESHOLD = 0.5  # Silero's own default: a frame is voiced when its speech probability is above this
VAD_PEAK = 0.5  # the level the detector hears every waveform at (-6 dBFS peak)
VAD_PAD_FRAMES = 2  # 64 ms of padding on each side of voiced frames (Silero's speech_pad_ms is 30)


def trim_silence(waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db) -> np.ndarray:
    """Cut the leading and trailing parts quieter than ``top_db`` below the peak.

    Returns np.ndarray [shape=(n_kept,)], float32 (empty when the whole clip is that quiet)
    """
    start, end = speech_bounds(waveform, top_db=top_db)
    return np.asarray(waveform, dtype=np.float32)[start:end]


@dataclass(frozen=True)
class SpeechMask:
    """Where a waveform is louder than ``trim_top_db`` below its peak, one flag every TRIM_HOP
    samples (librosa.effects.trim's decision). Trimming and the pause marking read the same mask."""

    loud: np.ndarray  # [shape=(n_samples // TRIM_HOP + 1,)], bool; flag i is centred on sample i * TRIM_HOP
    n_samples: int
    voiced: np.ndarray | None = None  # [shape=like loud], bool: the detector heard a voice; None: not asked

    @property
    def bounds(self) -> tuple[int, int]:
        """Sample indices [start, end) from the first to the last loud flag; (0, 0) when none is.
        ``start`` is a multiple of TRIM_HOP."""
        loud = np.flatnonzero(self.loud)
        if len(loud) == 0:
            return 0, 0
        return int(loud[0] * TRIM_HOP), int(min(self.n_samples, (loud[-1] + 1) * TRIM_HOP))

    @property
    def speech(self) -> np.ndarray:
        """The flags that count as speech: loud, and voiced when the detector was asked."""
        return self.loud if self.voiced is None else self.loud & self.voiced

    def speech_samples(self, starts: np.ndarray, length: int) -> np.ndarray:
        """Samples of speech in each stretch [start, start + length) of the waveform, counted in
        whole hops. Returns np.ndarray [shape=(len(starts),)], int"""
        counts = np.concatenate([[0], np.cumsum(self.speech)])
        first = np.minimum(np.round(np.asarray(starts) / TRIM_HOP).astype(int), len(counts) - 1)
        last = np.minimum(first + round(length / TRIM_HOP), len(counts) - 1)
        return (counts[last] - counts[first]) * TRIM_HOP


def speech_mask(
    waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db, detect_voice: bool = False
) -> SpeechMask:
    """The ``SpeechMask`` of a 16 kHz waveform; ``detect_voice``: also run the voice-activity
    detector (``AudioConfig.detect_voice``), else only loudness counts."""
    loud = _loud_hops(waveform, top_db=top_db)
    voiced = _padded(voice_probability(waveform)[: len(loud)] > VAD_THRESHOLD) if detect_voice else None
    return SpeechMask(loud, len(waveform), voiced)


def _padded(voiced: np.ndarray) -> np.ndarray:
    """Voiced frames widened by VAD_PAD_FRAMES on each side, as Silero's own speech timestamps are
    padded: a word's soft onset and release belong to it."""
    kernel = np.ones(2 * VAD_PAD_FRAMES + 1)
    return np.convolve(voiced.astype(float), kernel, mode="same") > 0


def speech_bounds(waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db) -> tuple[int, int]:
    """Sample indices [start, end) of the part louder than ``top_db`` below the peak."""
    return speech_mask(waveform, top_db=top_db).bounds


def _loud_hops(waveform: np.ndarray, *, top_db: float = AudioConfig.trim_top_db) -> np.ndarray:
    """Which frames are louder than ``top_db`` below the loudest: frame i is centred on sample
    i * TRIM_HOP. Returns np.ndarray [shape=(len(waveform) // TRIM_HOP + 1,)], bool

    The same frames and decision as ``librosa.effects.trim`` (RMS of 2048-sample frames every 512
    samples, zero-padded at the ends), computed from per-hop energies: librosa frames the whole
    signal into a copy 4 times its size (0.9 GB for an hour), this needs 1/64 of it.
    """
    y = np.asarray(waveform, dtype=np.float32)
    n_full = len(y) // TRIM_HOP
    hops = np.zeros(n_full + 1 + 4, dtype=np.float64)  # two zero hops of padding at each end
    blocks = y[: n_full * TRIM_HOP].reshape(n_full, TRIM_HOP)
    hops[2 : 2 + n_full] = np.einsum("ij,ij->i", blocks, blocks)  # float32 like librosa: no 8-byte copy
    tail = y[n_full * TRIM_HOP :]
    hops[2 + n_full] = float(np.dot(tail, tail))
    energy = np.concatenate([[0.0], np.cumsum(hops)])
    power = (energy[4:] - energy[:-4])[: n_full + 1] / TRIM_FRAME  # mean square of each frame
    peak = max(float(power.max()), 1e-10)
    return 10 * np.log10(np.maximum(power, 1e-10) / peak) > -top_db


def voice_probability(waveform: np.ndarray) -> np.ndarray:
    """Silero VAD's speech probability of each 32 ms frame of a 16 kHz waveform: frame i is
    samples [i * TRIM_HOP, (i + 1) * TRIM_HOP), the last one zero-padded, and one frame of zeros
    more, so there are as many as ``SpeechMask`` has flags. The detector hears the waveform scaled
    to a peak of VAD_PEAK: a quiet recording is as much speech as a loud one (loudness is judged
    apart, relative to the peak, as trimming does).

    Returns np.ndarray [shape=(len(waveform) // TRIM_HOP + 1,)], float32 in [0, 1]
    """
    y = np.asarray(waveform, dtype=np.float32)
    peak = float(max(np.max(y, initial=0.0), -np.min(y, initial=0.0)))
    gain = np.float32(VAD_PEAK / peak if peak > 0 else 1.0)  # applied block by block: no copy of an hour
    n_frames = len(y) // VAD_FRAME + 1
    session = _vad_session()
    state = [np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32)]  # the LSTM's h and c
    out = np.empty(n_frames, np.float32)
    for first in range(0, n_frames, VAD_BLOCK_FRAMES):
        count = min(VAD_BLOCK_FRAMES, n_frames - first)
        frames = np.zeros((count, VAD_FRAME), np.float32)
        samples = y[first * VAD_FRAME : (first + count) * VAD_FRAME]
        frames.reshape(-1)[: len(samples)] = samples
        context = np.zeros((count, VAD_CONTEXT), np.float32)  # each frame follows the previous one's tail
        context[1:] = frames[:-1, -VAD_CONTEXT:]
        if first:
            context[0] = y[first * VAD_FRAME - VAD_CONTEXT : first * VAD_FRAME]
        block = np.concatenate([context, frames], axis=1) * gain
        probs, *state = session.run(["speech_probs", "hn", "cn"], {"input": block, "h": state[0], "c": state[1]})
        out[first : first + count] = probs.reshape(-1)
    return out


@functools.cache
def _vad_session():
    """The detector's onnxruntime session, made once per process (onnxruntime's ``run`` is
    thread-safe). One thread: the windows' features and the other sessions have the rest."""
    try:
        path = importlib.metadata.distribution(VAD_DISTRIBUTION).locate_file(VAD_MODEL)
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ModelError(
            f"the voice-activity detector ({VAD_DISTRIBUTION}'s {VAD_MODEL}) is not installed; run `make install`"
        )
    import onnxruntime  # 0.2 s: only when a clip is classified

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
