"""Contour networks: a second opinion, for a clip that has no voice profile, from how its voice moves.

The SVM reads each window's eGeMAPS functionals: 88 summaries of 25 descriptors (pitch, loudness,
formants, spectral balance...). These small networks read the 25 descriptors themselves, every
10 ms (``ser.features.functionals.egemaps_contours``): two 1-D convolutions over time, then each channel's
mean and spread over the window's frames, then a softmax. Their inputs are normalised per speaker
in training, as the SVM's are, and by the balance-weighted fall-back statistics of all training
windows at serving. The window's level is not among them (every window is scaled to one level first).

Used only where the SVM is weakest, zero-shot: the mean of ``N_NETS`` networks, averaged half and
half with the SVM's answer. A clip with a voice profile is answered by the SVM alone (the networks
did not help there, and a profile lets the SVM's known voices answer). Half and half, with three
networks, beat the SVM alone zero-shot on every comparison that keeps one corpus out of training
(docs/model.md, "Zero-shot: the contour networks"; the figures: docs/research.md). Their size was
set by the training-time budget, not by score: 32 channels on 20 ms steps.

Regularised throughout, since every test voice is one they never heard: Gaussian noise on the input,
whole descriptors dropped, dropout, weight decay, each training speaker also at 0.9x and 1.1x speed
(at half weight, as the SVM's copies). All of it was fixed before any score was seen. Trained with
Keras; served with NumPy alone (batch normalisation folded into the convolutions), so serving never
loads TensorFlow. The weights are saved as arrays, the bundle's ``contours.npz``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.config import N_CONTOUR
from ser.process import one_blas_thread

N_NETS = 3  # networks averaged (seeds seed, seed + 1, ...): each costs about 50 s on the whole pool, 2 cores
FUSION = 0.5  # the networks' share of a zero-shot answer, written to the card (ser.models.svm.AnswerSettings)
# Up to this many windows at once (a clip of about 10 s), BLAS runs on the calling thread alone
# (``ser.process.one_blas_thread``); a corpus' thousands of windows keep both threads, which is faster there.
ONE_THREAD_WINDOWS = 8
CHANNELS = 32
KERNEL = 5
DILATIONS = (1, 2)  # the second convolution sees 9 frames of the first's: 130 ms around a frame
POOL = 2  # frames averaged before the convolutions: 20 ms steps
HIDDEN = 64
EPOCHS = 15
BATCH = 64
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-2
INPUT_NOISE = 0.2  # standard deviations of the normalised input
DESCRIPTOR_DROPOUT = 0.15  # whole descriptors dropped from a window
DROPOUT = 0.4
CLIP_Z = 10.0  # normalised values are cut to +-10 standard deviations
MIN_STD = 1e-3  # added to every spread: a descriptor constant over a speaker's windows
COPY_WEIGHT = 0.5  # a speed copy's windows weigh half the speaker's own


def valid_frames(contours: np.ndarray) -> np.ndarray:
    """Which frames hold descriptors (padding rows past a window's end are NaN).
    [shape=(..., n_frames, N_CONTOUR)] -> [shape=(..., n_frames)], bool"""
    return ~np.isnan(contours[..., 0])


def contour_stats(contours: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each descriptor's mean and spread over the valid frames of windows [shape=(n, n_frames, N_CONTOUR)],
    each window weighted by ``weights`` [shape=(n,)] (default equal). Returns ([shape=(N_CONTOUR,)], same)"""
    mask = valid_frames(contours)
    frame_weights = mask * (np.ones(len(contours)) if weights is None else np.asarray(weights))[:, None]
    total = max(float(frame_weights.sum()), 1e-9)
    values = np.nan_to_num(contours.astype(np.float32))
    mean = np.einsum("nt,ntd->d", frame_weights, values) / total
    var = np.einsum("nt,ntd->d", frame_weights, (values - mean) ** 2) / total
    return mean.astype(np.float32), (np.sqrt(np.maximum(var, 1e-6)) + MIN_STD).astype(np.float32)


def normalise(contours: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows' contours in units of ``std`` from ``mean``, padding 0, and the valid-frame mask.
    Returns ([shape=(n, n_frames, N_CONTOUR)], float32; [shape=(n, n_frames)], float32)"""
    mask = valid_frames(contours).astype(np.float32)
    z = np.clip((np.nan_to_num(contours.astype(np.float32)) - mean) / std, -CLIP_Z, CLIP_Z)
    return (z * mask[..., None]).astype(np.float32), mask


@dataclass(frozen=True)
class ContourNets:
    """The trained networks as arrays, and the fall-back statistics that put a clip without a profile
    in their terms."""

    mean: np.ndarray  # [shape=(N_CONTOUR,)], the training windows' descriptors, balance-weighted
    std: np.ndarray  # [shape=(N_CONTOUR,)]
    # One tuple per network: (kernel, bias) of each convolution, batch normalisation folded in
    # ([shape=(KERNEL, c_in, c_out)], [shape=(c_out,)]), then (weights, bias) of the two dense layers.
    weights: tuple[tuple[np.ndarray, ...], ...]

    def proba(self, contours: np.ndarray) -> np.ndarray:
        """The networks' mean probabilities for windows [shape=(n, n_frames, N_CONTOUR)], zero-shot
        (normalised by the fall-back statistics). Returns [shape=(n, n_labels)], float32"""
        z, mask = normalise(contours, self.mean, self.std)
        z, mask = _pooled(z, mask)
        with one_blas_thread() if len(z) <= ONE_THREAD_WINDOWS else contextlib.nullcontext():
            return _forward(z, mask, self._side_by_side).astype(np.float32)

    @functools.cached_property
    def _side_by_side(self) -> tuple[np.ndarray, ...]:
        """The networks as one wider network whose layers keep them apart (``_side_by_side``)."""
        return _side_by_side(self.weights)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays by name, for the networks' file (``ser.models.svm``)."""
        arrays = {"mean": self.mean, "std": self.std}
        for i, net in enumerate(self.weights):
            arrays.update({f"net{i}_{j}": w for j, w in enumerate(net)})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ContourNets:
        n_nets = len({name.split("_")[0] for name in arrays if name.startswith("net")})
        n_arrays = 2 * (len(DILATIONS) + 2)
        weights = tuple(
            tuple(np.asarray(arrays[f"net{i}_{j}"], dtype=np.float32) for j in range(n_arrays)) for i in range(n_nets)
        )
        return cls(np.asarray(arrays["mean"], np.float32), np.asarray(arrays["std"], np.float32), weights)


def fuse(svm_probs: np.ndarray, net_probs: np.ndarray, share: float) -> np.ndarray:
    """A zero-shot answer: the SVM's and the networks' probabilities, ``share`` the networks'."""
    return ((1.0 - share) * svm_probs + share * net_probs).astype(np.float32)


# --- the forward pass, in NumPy -----------------------------------------------------------------


def _pooled(z: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames averaged ``POOL`` at a time, padding left out of each mean; a pooled frame is valid
    when at least half of it was."""
    n, t, d = z.shape
    t -= t % POOL
    share = mask[:, :t].reshape(n, -1, POOL).mean(axis=2)
    summed = z[:, :t].reshape(n, -1, POOL, d).mean(axis=2)  # padding is 0, so this is sum / POOL
    return summed / np.maximum(share, 1e-3)[..., None], (share > 0.49).astype(np.float32)


def _conv_relu(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, dilation: int) -> np.ndarray:
    """A 'same'-padded dilated 1-D convolution and ReLU: [shape=(n, t, c_in)] -> [shape=(n, t, c_out)]"""
    t = x.shape[1]
    width = kernel.shape[0]
    pad = dilation * (width - 1) // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    columns = np.concatenate([padded[:, j * dilation : j * dilation + t] for j in range(width)], axis=2)
    return np.maximum(columns @ kernel.reshape(-1, kernel.shape[2]) + bias, 0.0)


def _side_by_side(weights: tuple[tuple[np.ndarray, ...], ...]) -> tuple[np.ndarray, ...]:
    """Networks of the same shape as one: the first convolution's kernels side by side (they read the
    same input), every later layer block-diagonal (each network reads only its own channels), so a
    window goes through all of them in one matrix product a layer (a third of the time of three passes)."""
    first = [np.concatenate(column, axis=-1) for column in zip(*(net[:2] for net in weights), strict=True)]
    later = []
    for j in range(2, len(weights[0]), 2):
        kernels, biases = [net[j] for net in weights], [net[j + 1] for net in weights]
        rows, cols = kernels[0].shape[-2], kernels[0].shape[-1]
        block = np.zeros((*kernels[0].shape[:-2], rows * len(weights), cols * len(weights)), np.float32)
        for i, kernel in enumerate(kernels):
            block[..., i * rows : (i + 1) * rows, i * cols : (i + 1) * cols] = kernel
        later += [block, np.concatenate(biases)]
    return (*first, *later)


def _forward(z: np.ndarray, mask: np.ndarray, net: tuple[np.ndarray, ...]) -> np.ndarray:
    """The networks' mean softmax for normalised, pooled windows, ``net`` the networks side by side
    (``_side_by_side``). Returns [shape=(n, n_labels)]"""
    h = z
    for i, dilation in enumerate(DILATIONS):
        h = _conv_relu(h, net[2 * i], net[2 * i + 1], dilation)
    count = np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
    mean = (h * mask[..., None]).sum(axis=1) / count
    var = (((h - mean[:, None]) ** 2) * mask[..., None]).sum(axis=1) / count
    n_nets = h.shape[-1] // CHANNELS
    # each network's dense layer reads its channels' means, then their spreads
    halves = (mean.reshape(len(h), n_nets, CHANNELS), np.sqrt(np.maximum(var, 1e-6)).reshape(len(h), n_nets, CHANNELS))
    pooled = np.concatenate(halves, axis=2).reshape(len(h), -1)
    d = 2 * len(DILATIONS)
    hidden = np.maximum(pooled @ net[d] + net[d + 1], 0.0)
    logits = (hidden @ net[d + 2] + net[d + 3]).reshape(len(h), n_nets, -1)
    logits -= logits.max(axis=2, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=2, keepdims=True)).mean(axis=1)


# --- training (Keras) ---------------------------------------------------------------------------


def training_set(
    contours: np.ndarray, y: np.ndarray, speakers: Sequence[str], balance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every training window at every speed, each speaker's copy at each speed normalised by its own
    statistics; a copy's windows at ``COPY_WEIGHT`` of the speaker's own. ``contours``
    [shape=(n, n_speeds, n_frames, N_CONTOUR)], the unchanged speed in the middle; ``balance`` the
    windows' weights [shape=(n,)]. Returns (inputs, masks, labels, weights with mean 1)"""
    speakers = np.asarray(speakers)
    centre = contours.shape[1] // 2
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for k in range(contours.shape[1]):
        for speaker in np.unique(speakers):
            mine = np.flatnonzero(speakers == speaker)
            voice = contours[mine, k]
            z, mask = normalise(voice, *contour_stats(voice))
            parts.append((z, mask, y[mine], balance[mine] * (1.0 if k == centre else COPY_WEIGHT)))
    z, mask, labels, weights = (np.concatenate(column) for column in zip(*parts, strict=True))
    return z, mask, labels, (weights / weights.mean()).astype(np.float32)


def fit_contour_nets(
    contours: np.ndarray, y: np.ndarray, speakers: Sequence[str], balance: np.ndarray, *, n_labels: int,
    seed: int, should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> ContourNets:  # fmt: skip
    """``N_NETS`` networks on the training windows' contours [shape=(n, n_speeds, n_frames, N_CONTOUR)]
    with labels [shape=(n,)] out of ``n_labels``, weighted by ``balance`` (``ser.models.svm.pooled.balance_weights``),
    and the fall-back statistics (the unchanged speed's windows, weighted the same way).
    ``should_stop`` is polled between batches; True ends the fit early (the caller reports the stop).
    ``on_step`` is called after each batch with (step, n_steps, loss), counted over all the networks."""
    from ser.models.network.layers import StepReport, keras  # TensorFlow, with its start-up logs silenced

    z, mask, labels, weights = training_set(contours, y, speakers, balance)
    mean, std = contour_stats(contours[:, contours.shape[1] // 2], balance)
    steps = StepReport(on_step, N_NETS * EPOCHS * math.ceil(len(z) / BATCH), should_stop)  # over every network
    nets = []
    for i in range(N_NETS):
        keras.utils.set_random_seed(seed + i)
        model = _build(keras, z.shape[1], n_labels)
        model.fit([z, mask[..., None]], labels, sample_weight=weights, epochs=EPOCHS, batch_size=BATCH,
                  shuffle=True, verbose=0, callbacks=[steps])  # fmt: skip
        nets.append(_folded(keras, model))
        if should_stop is not None and should_stop():
            break
    return ContourNets(mean, std, tuple(nets))


def _build(keras: Any, n_frames: int, n_labels: int) -> Any:
    from keras import layers, ops

    x = keras.Input((n_frames, N_CONTOUR))
    m = keras.Input((n_frames, 1))
    h = layers.GaussianNoise(INPUT_NOISE)(x)
    h = layers.SpatialDropout1D(DESCRIPTOR_DROPOUT)(h)
    h = layers.AveragePooling1D(POOL)(h * m)  # as _pooled: padding out of each mean
    share = layers.AveragePooling1D(POOL)(m)
    h = h / ops.maximum(share, 1e-3)
    mask = ops.cast(share > 0.49, "float32")
    for dilation in DILATIONS:
        h = layers.Conv1D(CHANNELS, KERNEL, padding="same", dilation_rate=dilation)(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
    count = ops.maximum(ops.sum(mask, axis=1), 1.0)
    mean = ops.sum(h * mask, axis=1) / count
    std = ops.sqrt(ops.maximum(ops.sum(((h - mean[:, None, :]) ** 2) * mask, axis=1) / count, 1e-6))
    h = layers.Dropout(DROPOUT)(layers.Concatenate()([mean, std]))
    h = layers.Dropout(DROPOUT)(layers.Dense(HIDDEN, activation="relu")(h))
    out = layers.Dense(n_labels, activation="softmax")(h)
    model = keras.Model([x, m], out)
    optimizer = keras.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def _folded(keras: Any, model: Any) -> tuple[np.ndarray, ...]:
    """A trained network's arrays for ``_forward``: each convolution with its batch normalisation folded in."""
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    arrays: list[np.ndarray] = []
    for conv, norm in zip(convs, norms, strict=True):
        kernel, bias = (np.asarray(w, np.float32) for w in conv.get_weights())
        gamma, beta, moving_mean, moving_var = (np.asarray(w, np.float32) for w in norm.get_weights())
        scale = gamma / np.sqrt(moving_var + norm.epsilon)
        arrays += [kernel * scale, (bias - moving_mean) * scale + beta]
    for layer in dense:
        arrays += [np.asarray(w, np.float32) for w in layer.get_weights()]
    return tuple(arrays)
