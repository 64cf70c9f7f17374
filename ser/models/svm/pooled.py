"""The speaker-normalised SVM: functionals -> voice profile z-scores -> RBF support-vector machine.

Fitted in one go on every training window, each training speaker normalised by their own
statistics (a voice profile built from their clips), weighted so that every corpus, every
speaker within it and every emotion within a speaker counts the same. Copies of each speaker's
windows at other speeds (pitch and formants shifted) join them as further voices, each copy
normalised by its own statistics, in which its neutral windows weigh ``COPY_NEUTRAL_SHARE``: so the
classifier also meets voices whose profile came from mostly neutral speech, as spontaneous speech
is (the speaker's own windows keep their plain statistics). Together they weigh as much as the
speaker's own windows. The fall-back statistics for a clip without a profile are those of all
(unchanged) training windows, weighted as in training, so that no corpus dominates them either.
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
from ser.models.svm.known_voices import KnownVoices, fit_voices
from ser.voice.profile import Normalisation, ProfileBuilder, VoiceMatch, VoiceProfile
from ser.voice.smoothing import Smoothing

C = 0.3  # chosen on the training corpora alone (docs/model.md, "How its settings were chosen")
GAMMA_SCALE = 0.125  # the RBF's gamma is GAMMA_SCALE / n_dims on z-scored features
CALIBRATION_FOLDS = 3
# A profile of mostly neutral speech puts the speaker's neutral at the centre, where a training voice's
# centre was their average emotion, so their neutral clips are heard as another emotion. Copies
# normalised by statistics in which neutral weighs 30 % let the SVM meet such profiles; a larger share
# costs speakers whose clips come as they are, and zero-shot (docs/model.md, "The pooled SVM"; the
# figures: docs/research.md, a speaker of mostly neutral speech).
COPY_NEUTRAL_SHARE = 0.3
BALANCE = (
    "corpus, speaker within corpus, emotion within speaker: equal weight each; a speaker's copies at other "
    "speeds weigh together as much as the speaker, each normalised by its statistics with its neutral windows "
    f"weighing {COPY_NEUTRAL_SHARE:.0%}; the zero-shot fall-back statistics are weighted as the training is"
)


def training_profiles(
    vectors: np.ndarray, speakers: Sequence[str], space: str, weights: np.ndarray | None = None
) -> dict[str, VoiceProfile]:
    """One profile per speaker, from that speaker's vectors [shape=(n, n_dims)], each counting
    ``weights`` [shape=(n,)] in the statistics (default 1 each)."""
    speakers = np.asarray(speakers)
    profiles = {}
    for speaker in np.unique(speakers):
        builder = ProfileBuilder(space, vectors.shape[1], source=f"training speaker {speaker}")
        mine = speakers == speaker
        builder.add(vectors[mine], speech_s=float(mine.sum()), weights=None if weights is None else weights[mine])
        profiles[str(speaker)] = builder.profile()
    return profiles


def neutral_weights(y: np.ndarray, speakers: Sequence[str], neutral: int | None, share: float) -> np.ndarray:
    """Weights [shape=(n,)] under which each speaker's windows with label index ``neutral`` make
    ``share`` of their statistics and the others the rest, in their own proportions; all 1 for a
    speaker without neutral windows or without others, and when ``neutral`` is None."""
    y, speakers = np.asarray(y), np.asarray(speakers)
    weights = np.ones(len(y))
    if neutral is None:
        return weights
    for speaker in np.unique(speakers):
        mine = speakers == speaker
        is_neutral = mine & (y == neutral)
        n_neutral, n_other = int(is_neutral.sum()), int(mine.sum() - is_neutral.sum())
        if n_neutral and n_other:
            weights[is_neutral] = share * mine.sum() / n_neutral
            weights[mine & ~is_neutral] = (1 - share) * mine.sum() / n_other
    return weights


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
    copies: Sequence[np.ndarray] = (), neutral: int | None = None,
) -> tuple[CalibratedClassifierCV, Normalisation, KnownVoices]:  # fmt: skip
    """Fit on training vectors [shape=(n, n_dims)] with label indices [shape=(n,)], each normalised
    by its speaker's profile. ``copies``: the same windows otherwise voiced (each [shape=(n, n_dims)],
    row for row), each copy of a speaker normalised by its own profile, in which the windows of label
    index ``neutral`` (None: no such label) weigh ``COPY_NEUTRAL_SHARE``. An emotion with no training
    window is never answered (probability 0). Returns the classifier, its normalisation and the
    training voices (``ser.models.svm.known_voices``)."""
    if len(np.unique(y)) < 2:
        raise ModelError("an SVM needs at least two emotions in its training data")
    speakers = np.asarray(speakers)
    order = np.concatenate([np.flatnonzero(speakers == s) for s in np.unique(speakers)])
    heard = (vectors, *copies)
    skewed = neutral_weights(y, speakers, neutral, COPY_NEUTRAL_SHARE)
    voices = [  # each copy a voice of its own
        training_profiles(v, speakers, space, weights=skewed if k else None) for k, v in enumerate(heard)
    ]
    Z = np.concatenate([_by_speaker(v, speakers, profiles) for v, profiles in zip(heard, voices, strict=True)])
    balance = balance_weights(corpora, speakers, y)
    weights = np.concatenate([balance[order], *(balance[order] / len(copies) for _ in copies)])
    labels = np.tile(y[order], 1 + len(copies))
    # Weighted as in training, so that no corpus dominates the fall-back (TESS has 1,120 clips a speaker).
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
    known = fit_voices(Z, labels, np.tile(speakers[order], 1 + len(copies)), voices[0], gamma=gamma, seed=seed)
    # The level (last) dimension means something only against the speaker's own: zero-shot leaves it at 0.
    unknown = (vectors.shape[1] - 1,)
    normalisation = Normalisation(
        space, everyone.profile(), unknown_dims=unknown, smoothing=Smoothing(), voices=VoiceMatch()
    )
    return clf, normalisation, known


def _by_speaker(vectors: np.ndarray, speakers: np.ndarray, profiles: dict[str, VoiceProfile]) -> np.ndarray:
    """Each speaker's vectors normalised by their own profile (``training_profiles`` of these
    vectors), speaker after speaker (sorted)."""
    return np.concatenate([profiles[s].normalise(vectors[speakers == s]) for s in profiles])


def _skops_io() -> ModuleType:
    """``skops.io``, imported without the scan of every scikit-learn estimator it makes for its
    default list of trusted types: ``all_estimators`` imports all of scikit-learn, and pytest with
    it (0.5 s of a 3 s ``python -m ser predict``, bench/startup.py). ``load_skops`` names the types it
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


def save_skops(obj: object, path: Path) -> None:
    """Write a scikit-learn object (or a dict or list of them and numpy arrays), deflated."""
    _skops_io().dump(obj, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def load_skops(path: Path) -> object:
    """What ``save_skops`` wrote, trusting only the types a calibrated SVM is made of (skops refuses
    anything else in the file). Raises ModelError for a missing, damaged or foreign file."""
    skops_io = _skops_io()
    try:
        return skops_io.load(path, trusted=[t for t in skops_io.get_untrusted_types(file=path) if _ours(t)])
    except FileNotFoundError as e:
        raise ModelError(f"{path.parent} has no {path.name}; the bundle is incomplete") from e
    except Exception as e:  # skops raises many types for a damaged or untrusted file
        raise ModelError(f"the model in {path.parent} cannot be loaded ({type(e).__name__}: {e})") from e


def _ours(type_name: str) -> bool:
    return type_name.startswith(("sklearn.calibration.", "sklearn.svm.", "sklearn.preprocessing.", "numpy."))


def svm_proba(clf: CalibratedClassifierCV, Z: np.ndarray, n_labels: int) -> np.ndarray:
    """Probabilities over all ``n_labels`` of the model [shape=(n, n_labels)] of normalised vectors Z
    (a label no training window had gets 0)."""
    probs = np.zeros((len(Z), n_labels), dtype=np.float32)
    if len(Z):
        probs[:, clf.classes_] = clf.predict_proba(Z)
    return probs
