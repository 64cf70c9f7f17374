"""The architectures by name, without Keras: their kind of model, features and description.

Their kinds (``ser.models``) build them; everything that only lists or configures an architecture (the CLI's
argument checks, the Train page's selectbox, a card) reads this module and loads no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from ser.config import FeatureConfig
from ser.errors import ConfigError


@dataclass(frozen=True)
class ArchSpec:
    name: str
    features: FeatureConfig  # the features it was designed for
    augment: bool  # whether training changes voices: VTLP + mixup (networks), speed copies (SVM)
    description: str
    kind: str = "network"  # the package under ser.models that fits, saves, loads and serves it


CNN_DESCRIPTION = "BatchNorm CNN on per-utterance log-mel, VTLP + mixup, averaged weights"
_SEED_MFCC = FeatureConfig(kind="mfcc", n_mfcc=40, hop_length=160, normalize="none")

ARCHITECTURES: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec("cnn", FeatureConfig(), True, CNN_DESCRIPTION),
        ArchSpec("seed-mfcc-cnn2d", _SEED_MFCC, False, "seed: 2x Conv2D on MFCC frames"),
        ArchSpec(
            "seed-mel-conv1d",
            FeatureConfig(n_mels=128, hop_length=160, normalize="none"),
            False,
            "seed: 4x Conv1D on z-scored mel-128",
        ),
        ArchSpec("seed-lstm", _SEED_MFCC, False, "seed: LSTM 256 on 40 mean MFCCs"),
        ArchSpec(
            "egemaps-svm",
            FeatureConfig(kind="egemaps", window_s=3.0, hop_s=1.0, contours=True),
            True,
            "RBF-SVM on eGeMAPS v02 functionals at one level, z-normalised per speaker (voice profile), "
            "each training speaker also at 0.9x and 1.1x speed; each training voice's own SVM, for a "
            "voice profile that is one of them; and, for a clip without a profile, small networks on the "
            "eGeMAPS contours averaged with the SVM",
            kind="svm",
        ),
        ArchSpec(
            "egemaps-plain",
            FeatureConfig(kind="egemaps", window_s=30.0, hop_s=30.0),
            False,
            "The plain reference: an RBF-SVM on the eGeMAPS functionals of the whole clip; with a voice "
            "profile, each speaker's clips in their own terms",
            kind="plain",
        ),
    )
}
DEFAULT_ARCH = "cnn"


def get_architecture(name: str) -> ArchSpec:
    """The spec of architecture ``name``. Raises ConfigError for an unknown name."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]
