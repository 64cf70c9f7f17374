"""The speaker-normalised SVM: functionals -> voice profile z-scores -> RBF support-vector machine.

Fitted in one go on every training window, each training speaker normalised by their own
statistics (a voice profile built from their clips), weighted so that every corpus, every
speaker within it and every emotion within a speaker counts the same. Copies of each speaker's
windows at other speeds (pitch and formants shifted) join them as further voices, each copy
normalised by its own statistics; together they weigh as much as the speaker's own windows. The
fall-back statistics for a clip without a profile are those of all (unchanged) training windows,
weighted as in training, so that no corpus dominates them either.
Saved with skops, which loads no pickled code.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

from ser.errors import ModelError
from ser.profile import Normalisation, ProfileBuilder, VoiceMatch, VoiceProfile
from ser.registry import SVM_FILE
from ser.transduction import Smoothing
from ser.voices import attach, fit_voices, packed, unpack

C = 0.3  # chosen on inner leave-one-corpus-out folds of the training corpora only (bench/README)
GAMMA_SCALE = 0.125  # the RBF's gamma is GAMMA_SCALE / n_dims on z-scored features
CALIBRATION_FOLDS = 3
BALANCE = (
    "corpus, speaker within corpus, emotion within speaker: equal weight each; a speaker's copies at other "
    "speeds weigh together as much as the speaker; the zero-shot fall-back statistics are weighted the same way"
)


def speaker_profiles(vectors: np.ndarray, speakers: Sequence[str], space: str) -> dict[str, VoiceProfile]:
    """One profile per speaker, from that speaker's vectors [shape=(n, n_dims)]."""
    speakers = np.asarray(speakers)
    profiles = {}
    for speaker in np.unique(speakers):
        builder = ProfileBuilder(space, vectors.shape[1], source=f"training speaker {speaker}")
        mine = vectors[speakers == speaker]
        builder.add(mine, speech_s=float(len(mine)))
        profiles[str(speaker)] = builder.profile()
    return profiles


def balance_weights(corpora: Sequence[str], speakers: Sequence[str], y: np.ndarray) -> np.ndarray:
    """Sample weights [shape=(n,)] so that each corpus, each speaker within a corpus and each
    emotion within a speaker weigh the same (TESS has 1,120 clips per speaker, RAVDESS 60); mean 1."""
    corpora, speakers = np.asarray(corpora), np.asarray(speakers)
    weights = np.zeros(len(y))
    n_corpora = len(np.unique(corpora))
    for corpus in np.unique(corpora):
        in_corpus = corpora == corpus
        corpus_speakers = np.unique(speakers[in_corpus])
        for speaker in corpus_speakers:
            mine = in_corpus & (speakers == speaker)
            emotions = np.unique(y[mine])
            for emotion in emotions:
                cell = mine & (y == emotion)
                weights[cell] = 1.0 / (n_corpora * len(corpus_speakers) * len(emotions) * cell.sum())
    return weights * len(y) / weights.sum()


def fit_svm(
    vectors: np.ndarray, y: np.ndarray, speakers: Sequence[str], corpora: Sequence[str], *, space: str, seed: int,
    n_labels: int | None = None, copies: Sequence[np.ndarray] = (),
) -> tuple[CalibratedClassifierCV, Normalisation]:  # fmt: skip
    """Fit on training vectors [shape=(n, n_dims)] with label indices [shape=(n,)] out of ``n_labels``
    (default: max + 1), each normalised by its speaker's profile. ``copies``: the same windows
    otherwise voiced (each [shape=(n, n_dims)], row for row), each copy of a speaker normalised by
    its own profile. An emotion with no training window is never answered (probability 0).
    Returns the classifier and its normalisation."""
    if len(np.unique(y)) < 2:
        raise ModelError("an SVM needs at least two emotions in its training data")
    speakers = np.asarray(speakers)
    order = np.concatenate([np.flatnonzero(speakers == s) for s in np.unique(speakers)])
    heard = (vectors, *copies)
    voices = [speaker_profiles(v, speakers, space) for v in heard]  # each copy a voice of its own
    Z = np.concatenate([_by_speaker(v, speakers, profiles) for v, profiles in zip(heard, voices, strict=True)])
    balance = balance_weights(corpora, speakers, y)
    weights = np.concatenate([balance[order], *(balance[order] / len(copies) for _ in copies)])
    labels = np.tile(y[order], 1 + len(copies))
    # Weighted as in training (pooled window by window, as up to v3, TESS' two voices made 61 % of the pool's).
    everyone = ProfileBuilder(space, vectors.shape[1], source="the training speakers (zero-shot fall-back)")
    everyone.add(vectors, speech_s=float(len(vectors)), weights=balance)
    gamma = GAMMA_SCALE / vectors.shape[1]
    svm = SVC(C=C, gamma=gamma, random_state=seed, cache_size=500)
    # Probabilities by Platt scaling on cross-validated folds; the final SVM is fitted on everything.
    fewest = int(np.bincount(y)[np.unique(y)].min())
    if fewest < 2:
        raise ModelError("an SVM needs at least 2 training windows of every emotion; add clips")
    clf = CalibratedClassifierCV(svm, cv=min(CALIBRATION_FOLDS, fewest), ensemble=False)
    clf.fit(Z, labels, sample_weight=weights)
    clf.n_labels_ = int(n_labels or y.max() + 1)  # the model's outputs, some perhaps never trained
    attach(clf, fit_voices(Z, labels, np.tile(speakers[order], 1 + len(copies)), voices[0], gamma=gamma, seed=seed))
    # The level (last) dimension means something only against the speaker's own: zero-shot leaves it at 0.
    unknown = (vectors.shape[1] - 1,)
    return clf, Normalisation(
        space, everyone.profile(), unknown_dims=unknown, smoothing=Smoothing(), voices=VoiceMatch()
    )


def _by_speaker(vectors: np.ndarray, speakers: np.ndarray, profiles: dict[str, VoiceProfile]) -> np.ndarray:
    """Each speaker's vectors normalised by their own profile (``speaker_profiles`` of these
    vectors), speaker after speaker (sorted)."""
    return np.concatenate([profiles[s].normalise(vectors[speakers == s]) for s in profiles])


def _skops_io() -> ModuleType:
    """``skops.io``, imported without the scan of every scikit-learn estimator it makes for its
    default list of trusted types: ``all_estimators`` imports all of scikit-learn, and pytest with
    it (0.5 s of a 3 s ``python -m ser predict``, bench/startup.py). ``load_svm`` names the types it
    trusts, so it never needs that default; without it skops trusts fewer types, never more."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn.utils

    scan = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = lambda *args, **kwargs: []
    try:
        import skops.io
    finally:
        sklearn.utils.all_estimators = scan
    return skops.io


def save_svm(clf: CalibratedClassifierCV, folder: Path) -> None:
    """Deflated, the voices' support vectors packed as the pooled SVM's row numbers (``packed``): the
    speed copies triple the support vectors, and the pool's SVM with its voices is 3.6 MB, not 5.1 (3.8 MB
    with its contour networks, ser.contours)."""
    with packed(clf):
        _skops_io().dump(clf, Path(folder) / SVM_FILE, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def load_svm(folder: Path) -> CalibratedClassifierCV:
    """The SVM of a bundle folder. Raises ModelError for a missing, damaged or foreign file."""
    skops_io = _skops_io()
    path = Path(folder) / SVM_FILE
    try:
        # Only the types a calibrated SVM is made of; skops refuses anything else in the file.
        clf = skops_io.load(path, trusted=[t for t in skops_io.get_untrusted_types(file=path) if _ours(t)])
    except FileNotFoundError as e:
        raise ModelError(f"{folder} has no {SVM_FILE}; the bundle is incomplete") from e
    except Exception as e:  # skops raises many types for a damaged or untrusted file
        raise ModelError(f"the model in {folder} cannot be loaded ({type(e).__name__}: {e})") from e
    if not isinstance(clf, CalibratedClassifierCV):
        raise ModelError(f"{path} holds a {type(clf).__name__}, not the SVM its card names")
    unpack(clf)
    return clf


def _ours(type_name: str) -> bool:
    return type_name.startswith(("sklearn.calibration.", "sklearn.svm.", "sklearn.preprocessing.", "numpy."))


def svm_proba(clf: CalibratedClassifierCV, Z: np.ndarray) -> np.ndarray:
    """Probabilities over all the model's labels [shape=(n, n_labels)] of normalised vectors Z."""
    probs = np.zeros((len(Z), clf.n_labels_), dtype=np.float32)
    if len(Z):
        probs[:, clf.classes_] = clf.predict_proba(Z)
    return probs
