"""Known voices: a speaker the model was trained on is answered mostly by a classifier of that voice.

The pooled SVM is made for voices it never heard, and pays for it on the voices it did hear: on
training speakers' other words and sentences, a classifier of the speaker's own labelled windows is
far better (docs/model.md, "A voice it was trained on"; the figures: docs/research.md). Training
keeps, for each training speaker, their feature statistics and an SVM of their own normalised
windows (and their speed copies). At serving, a voice profile (a
speaker's unlabelled audio: files marked as one speaker, a corpus speaker in ``evaluate
--per-speaker``) is compared with every training voice's statistics; when it holds enough audio and
is as close to one of them as that voice's other recordings are, the answer is mostly that voice's
classifier. A clip without a profile, or a voice the model never heard, is answered as before.

The statistic is the mean over dimensions of the squared difference of the two means in units of
its standard error, each dimension capped (``VoiceMatch.z2_cap``) so that one stray dimension cannot decide:
about 1 for the same recordings, a few for a training speaker's other texts, 3.15 and more for every
new voice measured. The settings were chosen on EmoDB and RAVDESS only (held-out texts against new
speakers), TESS kept out (docs/research.md, voices it was trained on).
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
from ser.voice.profile import VoiceMatch, VoiceProfile

VOICE_C = 10.0  # a voice's own SVM fits its one speaker closely; its gamma is the pooled SVM's
CALIBRATION_FOLDS = 3  # as the pooled SVM's


@dataclass(frozen=True)
class KnownVoices:
    """The training voices of a model: each one's statistics and classifier."""

    names: tuple[str, ...]  # speaker ids, as the training manifest named them ("tess/OAF")
    means: np.ndarray  # [shape=(n_voices, n_dims)], each voice's mean feature vector
    stds: np.ndarray  # [shape=(n_voices, n_dims)], and its spread
    counts: np.ndarray  # [shape=(n_voices,)], feature vectors behind each
    classifiers: tuple[CalibratedClassifierCV, ...]  # each voice's SVM on its own normalised windows

    def match_statistics(self, profile: VoiceProfile, z2_cap: float) -> np.ndarray:
        """How far ``profile`` is from each voice [shape=(n_voices,)]: the mean over dimensions of
        the squared difference of the means over its squared standard error, each capped at ``z2_cap``."""
        error2 = self.stds**2 * (1.0 / max(profile.n_vectors, 1) + 1.0 / self.counts[:, None])
        return np.minimum((profile.mean - self.means) ** 2 / error2, z2_cap).mean(axis=1)

    def match(self, profile: VoiceProfile | None, rule: VoiceMatch) -> int | None:
        """The index of the known voice ``profile`` is, or None (no profile, too little audio, no
        voice near enough)."""
        if profile is None or profile.n_vectors < rule.min_vectors or profile.mean.shape != self.means.shape[1:]:
            return None
        statistics = self.match_statistics(profile, rule.z2_cap)
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


# --- on disk: the voices' file beside the pooled SVM's (``ser.models.svm``) --------------------------


def to_file(voices: KnownVoices, pooled: Any) -> dict[str, Any]:
    """The voices as the contents of their file: each voice SVM's support vectors that the ``pooled``
    SVM has too are stored as row numbers into the pooled SVM's (each voice trains on its own rows of
    the pooled training set, so most of its support vectors are the pooled SVM's: the bundled model's
    voices are 5.1 MB deflated, 3.6 MB packed). Write it inside ``stripped``, which empties the voice
    SVMs' own copies while the file is written."""
    base = _pooled_svm(pooled).support_vectors_
    index = {row.tobytes(): i for i, row in enumerate(base)}
    kept = [_svm_of(clf).support_vectors_ for clf in voices.classifiers]
    rows = [np.array([index.get(row.tobytes(), -1) for row in vectors], dtype=np.int64) for vectors in kept]
    return {
        "names": list(voices.names),
        "means": voices.means,
        "stds": voices.stds,
        "counts": voices.counts,
        "classifiers": list(voices.classifiers),
        "rows": rows,
        "extra": [vectors[r < 0] for vectors, r in zip(kept, rows, strict=True)],
    }


@contextlib.contextmanager
def stripped(voices: KnownVoices) -> Iterator[None]:
    """While the voices' file is written (``to_file``): the voice SVMs without their support vectors,
    which the file keeps as row numbers; whole again on leaving."""
    svms = [_svm_of(clf) for clf in voices.classifiers]
    kept = [svm.support_vectors_ for svm in svms]
    try:
        for svm, vectors in zip(svms, kept, strict=True):
            svm.support_vectors_ = np.empty((0, vectors.shape[1]))
        yield
    finally:
        for svm, vectors in zip(svms, kept, strict=True):
            svm.support_vectors_ = vectors


def from_file(data: Any, pooled: Any) -> KnownVoices:
    """The voices of their file's contents (``to_file``), their support vectors put back from the
    ``pooled`` SVM's rows and their own. Raises ModelError when the parts do not fit together."""
    try:
        voices = _checked(data["names"], data["means"], data["stds"], data["counts"], data["classifiers"])
        _restore(voices.classifiers, data["rows"], data["extra"], pooled)
    except (KeyError, AttributeError, IndexError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known voices are damaged ({e})") from e
    return voices


def from_legacy(clf: Any) -> KnownVoices | None:
    """The known voices of a bundle written before they had a file of their own (card schema 2 and
    earlier): attributes of the pooled classifier, packed as ``to_file`` packs them. Removes those
    attributes from ``clf``; None when it has none. Raises ModelError for damaged ones."""
    names = getattr(clf, "voice_names_", None)
    try:
        if not names:
            return None
        voices = _checked(names, clf.voice_means_, clf.voice_stds_, clf.voice_counts_, clf.voice_classifiers_)
        if getattr(clf, "voice_rows_", None) is not None:
            _restore(voices.classifiers, clf.voice_rows_, clf.voice_extra_, clf)
    except (AttributeError, IndexError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known voices are damaged ({e})") from e
    finally:
        for name in ("voice_names_", "voice_means_", "voice_stds_", "voice_counts_", "voice_classifiers_",
                     "voice_rows_", "voice_extra_"):  # fmt: skip
            with contextlib.suppress(AttributeError):
                delattr(clf, name)
    return voices


def _checked(names: Any, means: Any, stds: Any, counts: Any, classifiers: Any) -> KnownVoices:
    voices = KnownVoices(
        tuple(str(n) for n in names), np.asarray(means, dtype=float), np.asarray(stds, dtype=float),
        np.asarray(counts, dtype=float), tuple(classifiers),
    )  # fmt: skip
    n = len(voices.names)
    if not (voices.means.shape[0] == voices.stds.shape[0] == len(voices.counts) == len(voices.classifiers) == n):
        raise ModelError("the model's known voices are damaged: their parts differ in number")
    return voices


def _restore(classifiers: Sequence[Any], rows_of: Sequence[Any], extra_of: Sequence[Any], pooled: Any) -> None:
    base = _pooled_svm(pooled).support_vectors_
    for clf, rows, extra in zip(classifiers, rows_of, extra_of, strict=True):
        svm = _svm_of(clf)
        rows = np.asarray(rows, dtype=np.int64)
        vectors = np.empty((len(rows), base.shape[1]))
        vectors[rows >= 0] = base[rows[rows >= 0]]
        vectors[rows < 0] = extra
        if len(vectors) != int(np.sum(svm.n_support_)):
            raise ValueError(f"{len(vectors)} support vectors for {int(np.sum(svm.n_support_))}")
        svm.support_vectors_ = vectors


def _pooled_svm(clf: Any) -> Any:
    return clf.calibrated_classifiers_[0].estimator


def _svm_of(calibrated: Any) -> Any:
    return calibrated.calibrated_classifiers_[0].estimator
