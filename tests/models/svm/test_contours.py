"""The contour networks (ser.models.svm.contours): their input from openSMILE, the NumPy forward pass against
Keras, and their place in an answer: zero-shot only, beside the SVM."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ser  # noqa: F401  (before TensorFlow: openSMILE's library first)
from ser.config import N_CONTOUR, AudioConfig
from ser.features.functionals import egemaps, egemaps_contours
from ser.models.svm import contours as C
from tests.conftest import spoken


def test_contours_come_from_the_same_run_as_the_functionals():
    import opensmile

    waveform = np.clip(spoken(2.0), -1, 1).astype(np.float32)
    values, contours = egemaps_contours(waveform)
    np.testing.assert_array_equal(values, egemaps(waveform))  # the functionals, to the last bit
    assert contours.shape == (300, N_CONTOUR)
    valid = C.valid_frames(contours)
    n = int(valid.sum())
    assert 190 <= n <= 200 and valid[:n].all() and not valid[n:].any()  # 2 s of 10 ms frames, then padding
    # openSMILE's own descriptors of the same scaled window (egemaps scales it to one level first)
    rms = np.sqrt(np.mean(waveform.astype(np.float64) ** 2))
    scaled = np.clip(waveform * (0.05 / rms), -1, 32767 / 32768).astype(np.float32)
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    reference = np.nan_to_num(smile.process_signal(scaled, 16_000).to_numpy(dtype=np.float32))
    assert len(reference) - 3 <= n <= len(reference)  # read in blocks, the last frames may be cut
    np.testing.assert_allclose(contours[:n], reference[:n], rtol=1e-3, atol=1e-3)


def test_a_window_at_other_speeds_has_contours_of_each(speech_like):
    from ser.features.windows import extract_features
    from ser.models.archs import get_architecture

    config = get_architecture("egemaps-svm").features
    assert config.contours and config.contour_frames == 300
    windows = extract_features(np.tile(speech_like, 3), config, warps=(0.9, 1.0, 1.1))
    assert windows.contours.shape == (len(windows.speech), 3, 300, N_CONTOUR)
    frames = C.valid_frames(windows.contours[0])
    assert frames[0].sum() > frames[1].sum() > frames[2].sum()  # slower speech lasts longer


def _random_contours(rng, n: int, n_frames: int = 60) -> np.ndarray:
    contours = rng.normal(size=(n, n_frames, N_CONTOUR)).astype(np.float32) * 3 + 10
    lengths = rng.integers(n_frames // 3, n_frames + 1, size=n)
    contours[np.arange(n_frames)[None, :] >= lengths[:, None]] = np.nan
    return contours


def test_the_numpy_forward_pass_is_the_keras_network(rng):
    from ser.models.network.layers import keras

    contours = _random_contours(rng, 48)
    mean, std = C.contour_stats(contours)
    z, mask = C.normalise(contours, mean, std)
    keras.utils.set_random_seed(0)
    model = C._build(keras, contours.shape[1], 4)
    model.fit([z, mask[..., None]], rng.integers(0, 4, 48), epochs=2, verbose=0)  # batch statistics move
    nets = C.ContourNets(mean, std, (C._folded(keras, model),))
    expected = model.predict([z, mask[..., None]], verbose=0)
    np.testing.assert_allclose(nets.proba(contours), expected, atol=1e-5)
    again = C.ContourNets.from_arrays(nets.to_arrays())
    np.testing.assert_array_equal(again.proba(contours), nets.proba(contours))


def test_a_speakers_copies_are_each_normalised_by_their_own_statistics(rng):
    contours = np.stack([_random_contours(rng, 20) * s for s in (0.8, 1.0, 1.25)], axis=1)  # n, speeds, t, d
    speakers = np.repeat(["a", "b"], 10)
    contours[speakers == "b"] += 50.0  # another voice, far off
    y = rng.integers(0, 3, 20)
    z, mask, _, weights = C.training_set(contours, y, speakers, np.ones(20))
    assert len(z) == 60 and weights.mean() == pytest.approx(1.0)
    for block in range(6):  # each speed of each speaker: mean 0, spread 1 over its valid frames
        part, valid = z[block * 10 : (block + 1) * 10], mask[block * 10 : (block + 1) * 10].astype(bool)
        assert np.abs(part[valid].mean(axis=0)).max() < 1e-3 and part[valid].std(axis=0) == pytest.approx(1, abs=0.01)
    assert (z[~mask.astype(bool)] == 0).all()
    assert weights[20:40].mean() == pytest.approx(2 * weights[:20].mean())  # a copy weighs half the speaker


def test_the_feature_cache_keeps_contours_and_their_padding(tmp_path):
    from ser.features.windows import cache_key, extract_corpus
    from ser.models.archs import get_architecture
    from tests.conftest import DEMO_DIR

    config = get_architecture("egemaps-svm").features
    paths = sorted(DEMO_DIR.rglob("*.ogg"))[:2]
    cold, errors = extract_corpus(paths, config, warps=(0.9, 1.0, 1.1), cache_dir=tmp_path, n_jobs=1)
    warm, _ = extract_corpus(paths, config, warps=(0.9, 1.0, 1.1), cache_dir=tmp_path, n_jobs=1)
    assert not errors and len(list(tmp_path.glob("*.npz"))) == 2
    for a, b in zip(cold, warm, strict=True):
        assert b.contours.dtype == np.float16 and b.contours.shape[1:] == (3, 300, N_CONTOUR)
        np.testing.assert_array_equal(a.contours, b.contours)  # NaN padding included
        assert C.valid_frames(b.contours).any() and not C.valid_frames(b.contours).all()
    plain = dataclasses.replace(config, contours=False)
    assert cache_key(paths[0], plain, (1.0,), AudioConfig()) != cache_key(paths[0], config, (1.0,), AudioConfig())


def _random_net(rng) -> tuple[np.ndarray, ...]:
    """One network's weights as ``ContourNets`` holds them, drawn at random."""
    shapes = [(5, N_CONTOUR, C.CHANNELS), (C.CHANNELS,), (5, C.CHANNELS, C.CHANNELS), (C.CHANNELS,),
              (2 * C.CHANNELS, C.HIDDEN), (C.HIDDEN,), (C.HIDDEN, 7), (7,)]  # fmt: skip
    return tuple(rng.normal(0, 0.3, s).astype(np.float32) for s in shapes)


def test_networks_side_by_side_answer_as_the_mean_of_each(rng):
    contours = _random_contours(rng, 6)
    nets = [_random_net(rng) for _ in range(3)]
    mean, std = C.contour_stats(contours)
    together = C.ContourNets(mean, std, tuple(nets)).proba(contours)
    alone = [C.ContourNets(mean, std, (net,)).proba(contours) for net in nets]
    assert np.abs(alone[0] - alone[1]).max() > 0.05  # three different networks
    np.testing.assert_allclose(together, np.mean(alone, axis=0), atol=1e-6)


def test_the_forward_pass_runs_blas_on_one_thread_and_leaves_it_as_it_was(rng, monkeypatch):
    """The networks' small products run BLAS on the calling thread alone (its spinning threads took
    the second core from openSMILE), and the limit is lifted after; threads answering at once get
    the answer each gets alone, and leave the limit as it was (not set by one thread restoring
    what another had set)."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    contours = _random_contours(rng, 2)
    nets = C.ContourNets(*C.contour_stats(contours), (_random_net(rng),))
    before = blas_threads()
    seen: list[set[int]] = []
    forward = C._forward

    def watched(*args):
        seen.append(blas_threads())
        return forward(*args)

    with monkeypatch.context() as patch:
        patch.setattr(C, "_forward", watched)
        alone = nets.proba(contours)
    assert seen == [{1}] and blas_threads() == before
    start = threading.Barrier(8)

    def work(_: int) -> np.ndarray:
        start.wait()
        return np.array([nets.proba(contours) for _ in range(20)])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(work, range(8)))
    assert blas_threads() == before
    for answer in answers:
        np.testing.assert_array_equal(answer, np.broadcast_to(alone, answer.shape))
