"""Known voices: a speaker the model was trained on is answered mostly by a classifier of that voice.

The pooled SVM is made for voices it never heard, and pays for it on the voices it did hear: on
training speakers' other words and sentences, a classifier of the speaker's own labelled windows is
far better (held-out texts, per speaker, macro-F1: EmoDB 0.74 to 0.84, RAVDESS 0.52 to 0.76;
bench/README, session 13). Training keeps, for each training speaker, their feature statistics and
an SVM of their own normalised windows (and their speed copies). At serving, a voice profile (a
speaker's unlabelled audio: files marked as one speaker, a corpus speaker in ``evaluate
--per-speaker``) is compared with every training voice's statistics; when it holds enough audio and
is as close to one of them as that voice's other recordings are, the answer is mostly that voice's
classifier. A clip without a profile, or a voice the model never heard, is answered as before.

The statistic is the mean over dimensions of the squared difference of the two means in units of
its standard error, each dimension capped at ``Z2_CAP`` so that one stray dimension cannot decide:
about 1 for the same recordings, 0.7-6 for a training speaker's other texts, 3.15 and more for every
new voice of the pool's speaker folds. The settings were chosen on EmoDB and RAVDESS only (held-out
texts against new speakers), TESS kept out (bench/README, session 13).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

from ser.errors import ModelError
from ser.profile import VoiceMatch, VoiceProfile

VOICE_C = 10.0  # a voice's own SVM fits its one speaker closely; its gamma is the pooled SVM's
CALIBRATION_FOLDS = 3  # as the pooled SVM's
Z2_CAP = 25.0  # a dimension's squared standard score counts at most this much in the match statistic


@dataclass(frozen=True)
class KnownVoices:
    """The training voices of a model: each one's statistics and classifier."""

    names: tuple[str, ...]  # speaker ids, as the training manifest named them ("tess/OAF")
    means: np.ndarray  # [shape=(n_voices, n_dims)], each voice's mean feature vector
    stds: np.ndarray  # [shape=(n_voices, n_dims)], and its spread
    counts: np.ndarray  # [shape=(n_voices,)], feature vectors behind each
    classifiers: tuple[CalibratedClassifierCV, ...]  # each voice's SVM on its own normalised windows

    def match_statistics(self, profile: VoiceProfile) -> np.ndarray:
        """How far ``profile`` is from each voice [shape=(n_voices,)]: the mean over dimensions of
        the squared difference of the means over its squared standard error, each capped at Z2_CAP."""
        error2 = self.stds**2 * (1.0 / max(profile.n_vectors, 1) + 1.0 / self.counts[:, None])
        return np.minimum((profile.mean - self.means) ** 2 / error2, Z2_CAP).mean(axis=1)

    def match(self, profile: VoiceProfile | None, rule: VoiceMatch) -> int | None:
        """The index of the known voice ``profile`` is, or None (no profile, too little audio, no
        voice near enough)."""
        if profile is None or profile.n_vectors < rule.min_vectors or profile.mean.shape != self.means.shape[1:]:
            return None
        statistics = self.match_statistics(profile)
        nearest = int(np.argmin(statistics))
        return nearest if statistics[nearest] < rule.threshold else None

    def answer(self, voice: int, pooled: np.ndarray, vectors: np.ndarray, rule: VoiceMatch) -> np.ndarray:
        """Window probabilities [shape=(n, n_labels)] of the known ``voice``: its classifier's on the
        normalised ``vectors`` [shape=(n, n_dims)], mixed with the ``pooled`` classifier's."""
        clf = self.classifiers[voice]
        own = np.zeros_like(pooled)
        if len(vectors):
            own[:, clf.classes_] = clf.predict_proba(vectors)
        return (rule.weight * own + (1.0 - rule.weight) * pooled).astype(np.float32)


def fit_voices(
    Z: np.ndarray, y: np.ndarray, speakers: Sequence[str], profiles: dict[str, VoiceProfile], *, gamma: float,
    seed: int,
) -> KnownVoices:  # fmt: skip
    """Each speaker's own SVM on their normalised training windows Z [shape=(n, n_dims)] (copies
    included) with label indices y [shape=(n,)]; ``profiles``: each speaker's statistics, the
    unchanged windows'; ``gamma``: the RBF's, the pooled SVM's. A speaker with a single emotion
    gets no classifier of their own, nor one with fewer than 2 windows of an emotion."""
    speakers = np.asarray(speakers)
    names, classifiers = [], []
    for name in sorted(profiles):
        mine = speakers == name
        counts = np.bincount(y[mine])
        fewest = int(counts[counts > 0].min()) if mine.any() else 0
        if np.count_nonzero(counts) < 2 or fewest < 2:
            continue
        svm = SVC(C=VOICE_C, gamma=gamma, random_state=seed)
        # Probabilities by Platt scaling on cross-validated folds, as the pooled SVM's.
        calibrated = CalibratedClassifierCV(svm, cv=min(CALIBRATION_FOLDS, fewest), ensemble=False)
        names.append(name)
        classifiers.append(calibrated.fit(Z[mine], y[mine]))
    chosen = [profiles[name] for name in names]
    return KnownVoices(
        tuple(names),
        np.array([p.mean for p in chosen]).reshape(len(chosen), Z.shape[1]),
        np.array([p.std for p in chosen]).reshape(len(chosen), Z.shape[1]),
        np.array([p.n_vectors for p in chosen], dtype=float),
        tuple(classifiers),
    )


# Stored as attributes of the pooled classifier (skops loads only scikit-learn and numpy types).
def attach(clf: Any, voices: KnownVoices) -> None:
    clf.voice_names_ = list(voices.names)
    clf.voice_means_, clf.voice_stds_, clf.voice_counts_ = voices.means, voices.stds, voices.counts
    clf.voice_classifiers_ = list(voices.classifiers)


def known_voices(model: Any) -> KnownVoices | None:
    """The known voices stored with a model; None for a network or a model saved before them."""
    names = getattr(model, "voice_names_", None)
    if not names:
        return None
    try:
        voices = KnownVoices(
            tuple(str(n) for n in names), np.asarray(model.voice_means_, dtype=float),
            np.asarray(model.voice_stds_, dtype=float), np.asarray(model.voice_counts_, dtype=float),
            tuple(model.voice_classifiers_),
        )  # fmt: skip
    except (AttributeError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known voices are damaged ({e})") from e
    n = len(voices.names)
    if not (voices.means.shape[0] == voices.stds.shape[0] == len(voices.counts) == len(voices.classifiers) == n):
        raise ModelError("the model's known voices are damaged: their parts differ in number")
    return voices


@contextlib.contextmanager
def packed(clf: Any) -> Iterator[None]:
    """While saving: each voice SVM's support vectors that the pooled SVM has too are stored as row
    numbers into the pooled SVM's (each voice trains on its own rows of the pooled training set,
    and 3,843 of v6's 4,253 voice support vectors are the pooled SVM's: 5.1 MB deflated, 3.6 packed).
    ``unpack`` puts them back after loading; ``clf`` is whole again on leaving."""
    svms = _voice_svms(clf)
    if not svms:
        yield
        return
    base = _pooled_svm(clf).support_vectors_
    index = {row.tobytes(): i for i, row in enumerate(base)}
    kept = [svm.support_vectors_ for svm in svms]
    clf.voice_rows_ = [np.array([index.get(row.tobytes(), -1) for row in vectors], dtype=np.int64) for vectors in kept]
    clf.voice_extra_ = [vectors[rows < 0] for vectors, rows in zip(kept, clf.voice_rows_, strict=True)]
    try:
        for svm in svms:
            svm.support_vectors_ = np.empty((0, base.shape[1]))
        yield
    finally:
        for svm, vectors in zip(svms, kept, strict=True):
            svm.support_vectors_ = vectors
        del clf.voice_rows_, clf.voice_extra_


def unpack(clf: Any) -> None:
    """After loading: the voice SVMs' support vectors, from the pooled SVM's rows and their own
    (``packed``). Raises ModelError when they do not fit together."""
    rows_of, extra_of = getattr(clf, "voice_rows_", None), getattr(clf, "voice_extra_", None)
    if rows_of is None:
        return
    try:
        base = _pooled_svm(clf).support_vectors_
        svms = _voice_svms(clf)
        for svm, rows, extra in zip(svms, rows_of, extra_of, strict=True):
            rows = np.asarray(rows, dtype=np.int64)
            vectors = np.empty((len(rows), base.shape[1]))
            vectors[rows >= 0] = base[rows[rows >= 0]]
            vectors[rows < 0] = extra
            if len(vectors) != int(np.sum(svm.n_support_)):
                raise ValueError(f"{len(vectors)} support vectors for {int(np.sum(svm.n_support_))}")
            svm.support_vectors_ = vectors
    except (AttributeError, IndexError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known voices are damaged ({e})") from e
    del clf.voice_rows_, clf.voice_extra_


def _pooled_svm(clf: Any) -> Any:
    return clf.calibrated_classifiers_[0].estimator


def _voice_svms(clf: Any) -> list[Any]:
    return [calibrated.calibrated_classifiers_[0].estimator for calibrated in getattr(clf, "voice_classifiers_", [])]
