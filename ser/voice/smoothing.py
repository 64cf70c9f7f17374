"""Smoothing over one speaker's clips: each clip's answer leans towards those of the speaker's clips
that sound most like it.

Within one speaker, clips of one emotion sit near each other once the voice is taken out (the
voice profile); across speakers they do not, which is why the classifier is trained on many voices.
Given several clips known to be one speaker, each clip's probabilities are spread over a graph of
its nearest clips (label spreading, Zhou et al., 2004: F = alpha S F + (1 - alpha) P, with S the
graph's symmetrically normalised affinities and P the classifier's probabilities). This uses the
speaker's unlabelled audio beyond its statistics, so it is transductive, as the voice profile
already is. Its settings were chosen on the training corpora alone (docs/model.md, "Several clips of
one speaker: smoothing" and "How its settings were chosen"; the figures: docs/research.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ser.errors import ModelError

MIN_CLIPS = 3  # fewer clips than this make no graph worth the name: the answers stay the classifier's
ROUNDS = 20  # 0.8^20 = 0.01: the spreading has settled


@dataclass(frozen=True)
class Smoothing:
    """How far a clip's answer leans on its neighbours among the speaker's n clips: ``alpha`` x n /
    (n + ``shrink_clips``) (0: not at all), over the ``k_fraction`` of the clips nearest it, at least
    ``min_k`` of them. A few clips of a speaker are mostly of different emotions, so their neighbours
    say little: a fixed alpha pulls a small batch away from its own answers, while with the shrinkage
    a batch of any size loses nothing (docs/research.md, smoothing over a speaker's clips)."""

    alpha: float = 0.8
    k_fraction: float = 0.02
    min_k: int = 2
    shrink_clips: float = 10.0  # as a voice profile's own shrinkage (ser.voice.profile.SHRINK_K)

    def __post_init__(self) -> None:
        if not (
            0.0 <= self.alpha < 1.0 and 0.0 <= self.k_fraction <= 1.0 and self.min_k >= 1 and self.shrink_clips >= 0
        ):
            raise ModelError(f"smoothing settings out of range: {self}")

    def neighbours(self, n_clips: int) -> int:
        return min(max(self.min_k, round(n_clips * self.k_fraction)), n_clips - 1)

    def strength(self, n_clips: int) -> float:
        """The alpha of label spreading over n clips."""
        return self.alpha * n_clips / (n_clips + self.shrink_clips)

    def apply(self, probs: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """One speaker's clip probabilities [shape=(n, n_labels)], spread over the graph of their
        normalised feature vectors [shape=(n, n_dims)]. Rows sum to 1; a label no clip gives any
        probability still gets none. Fewer than MIN_CLIPS clips come back unchanged."""
        probs = np.asarray(probs, dtype=np.float64)
        n = len(probs)
        if n < MIN_CLIPS or self.alpha == 0:
            return probs.astype(np.float32)
        spread = _affinities(np.asarray(vectors, dtype=np.float64), self.neighbours(n))
        alpha, answer = self.strength(n), probs
        for _ in range(ROUNDS):
            answer = alpha * (spread @ answer) + (1 - alpha) * probs
        return (answer / answer.sum(axis=1, keepdims=True)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Smoothing:
        try:
            return cls(float(data["alpha"]), float(data["k_fraction"]), int(data["min_k"]), float(data["shrink_clips"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"the card's smoothing settings are damaged ({e})") from e


def _affinities(vectors: np.ndarray, k: int):
    """The k-nearest-neighbour graph of the vectors, Gaussian weights (the scale: the median squared
    distance to a neighbour), made symmetric and normalised as D^-1/2 W D^-1/2 (scipy sparse)."""
    from scipy import sparse
    from sklearn.neighbors import NearestNeighbors

    distances, neighbours = NearestNeighbors(n_neighbors=k).fit(vectors).kneighbors()  # each point not its own
    squared = distances**2
    scale = float(np.median(squared)) or 1.0  # identical vectors: every weight 1
    n = len(vectors)
    rows = np.repeat(np.arange(n), k)
    weights = sparse.csr_matrix((np.exp(-squared / scale).ravel(), (rows, neighbours.ravel())), shape=(n, n))
    weights = weights.maximum(weights.T)
    degree = np.asarray(weights.sum(axis=1)).ravel()
    scaling = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    return scaling @ weights @ scaling
