"""Corpus features for training and scoring: clips -> the windows the model sees, cached on disk.

Every clip goes through ``ser.features.windows.extract_features``, the same road ``predict`` takes, and
keeps all its windows; a clip's label is each of its windows' label. Training learns from the
speech windows; scoring averages a clip's speech windows, as serving does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ser.config import AudioConfig, FeatureConfig, RunHooks
from ser.corpora.datasets import Clip
from ser.features.windows import Windows, extract_corpus

# Vocal-tract-length perturbation factors used as augmentation: +-20 % in frequency,
# about the gap between an older and a younger adult voice.
WARPS = tuple(float(w) for w in np.round(np.exp(np.linspace(np.log(0.8), np.log(1.25), 9)), 4))
# Speed perturbation for functionals (pitch, formants and tempo together), the usual 0.9 / 1.1 of
# speech recognition: each training speaker gets two more voices (``ser.models.svm.pooled``; docs/model.md).
SPEEDS = (0.9, 1.0, 1.1)


def training_warps(config: FeatureConfig) -> tuple[float, ...]:
    """The augmentation factors of a feature kind, the unchanged voice (1.0) in the middle:
    speeds for functionals, VTLP warps for frame features (``ser.features.windows.window_features``)."""
    return SPEEDS if config.kind == "egemaps" else WARPS


@dataclass
class CorpusFeatures:
    """The windows of a list of clips, every warp of each, and the clips' labels."""

    X: np.ndarray  # [shape=(n_windows, n_warps, n_bins, n_frames)], float16 (functionals float32)
    clip_of: np.ndarray  # [shape=(n_windows,)], int: the clip (index into ``clips``) of each window
    speech: np.ndarray  # [shape=(n_windows,)], bool: the window holds speech (else a pause)
    y: np.ndarray  # [shape=(n_clips,)], int: each clip's label index
    clips: list[Clip]
    # [shape=(n_clips,)]: seconds of each clip its speech windows cover (Windows.speech_span_s)
    speech_s: np.ndarray
    errors: list[str] = field(default_factory=list)  # the clips that could not be used, and why
    # [shape=(n_windows, n_warps, contour_frames, N_CONTOUR)], float16, for a config with contours; else None
    contours: np.ndarray | None = None

    @property
    def centre(self) -> np.ndarray:
        """The unwarped windows. Returns np.ndarray [shape=(n_windows, n_bins, n_frames)], float32"""
        return self.X[:, self.X.shape[1] // 2].astype(np.float32)

    @property
    def rows(self) -> np.ndarray:
        """The windows that train: the speech windows, and every window of a clip that has none.
        Returns np.ndarray [shape=(n_rows,)], int"""
        has_speech = np.zeros(len(self.y), dtype=bool)
        np.logical_or.at(has_speech, self.clip_of, self.speech)
        return np.flatnonzero(self.speech | ~has_speech[self.clip_of])

    def subset(self, clips: Sequence[Clip]) -> CorpusFeatures:
        """The features of ``clips`` (each one of ``self.clips``), in that order."""
        index = {clip: i for i, clip in enumerate(self.clips)}
        picked = np.array([index[c] for c in clips], dtype=np.int64)
        new_index = np.full(len(self.clips), -1)
        new_index[picked] = np.arange(len(picked))
        rows = np.flatnonzero(new_index[self.clip_of] >= 0)
        rows = rows[np.argsort(new_index[self.clip_of[rows]], kind="stable")]
        return CorpusFeatures(
            self.X[rows], new_index[self.clip_of[rows]], self.speech[rows], self.y[picked], list(clips),
            self.speech_s[picked], contours=None if self.contours is None else self.contours[rows],
        )  # fmt: skip

    @property
    def y_rows(self) -> np.ndarray:
        """The label of each training window (``rows``). Returns np.ndarray [shape=(n_rows,)], int"""
        return self.y[self.clip_of[self.rows]]


def prepare(
    clips: Sequence[Clip],
    labels: Sequence[str],
    config: FeatureConfig,
    *,
    augment: bool,
    audio_config: AudioConfig = AudioConfig(),
    hooks: RunHooks = RunHooks(),
    progress: bool = True,
) -> CorpusFeatures:
    """Features for the clips whose emotion is in ``labels``; files that fail to decode are
    reported in ``errors``. ``progress``: report to ``hooks.progress`` (the part that matters)."""
    usable = [c for c in clips if c.emotion in labels]
    warps = training_warps(config) if augment else (1.0,)
    windows, errors = extract_corpus(
        [c.path for c in usable], config, warps=warps, audio_config=audio_config,
        cache_dir=hooks.cache_dir, progress=hooks.progress if progress else None,
    )  # fmt: skip
    kept = [(c, w) for c, w in zip(usable, windows, strict=True) if w is not None]
    return _stack(kept, labels, errors, n_warps=len(warps), config=config)


def _stack(
    kept: list[tuple[Clip, Windows]], labels: Sequence[str], errors: list[str], *, n_warps: int, config: FeatureConfig
) -> CorpusFeatures:
    if not kept:
        empty = np.zeros((0, n_warps, config.n_bins, config.n_frames), np.float16)
        return CorpusFeatures(
            empty, np.zeros(0, int), np.zeros(0, bool), np.zeros(0, np.int64), [], np.zeros(0), errors
        )
    clips = [c for c, _ in kept]
    return CorpusFeatures(
        X=np.concatenate([w.features for _, w in kept]),
        clip_of=np.concatenate([np.full(len(w.speech), i) for i, (_, w) in enumerate(kept)]),
        speech=np.concatenate([w.speech for _, w in kept]),
        y=np.array([labels.index(c.emotion) for c in clips], dtype=np.int64),
        clips=clips,
        speech_s=np.array([w.speech_span_s() for _, w in kept]),
        errors=errors,
        contours=np.concatenate([w.contours for _, w in kept]) if config.contours else None,
    )
