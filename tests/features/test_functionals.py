"""eGeMAPS of a window at one level (ser.features.functionals): what openSMILE reads of it, through
reused openSMILE instances that give the values of openSMILE's own ``process_signal``, call after
call, from several threads at once and in a forked worker."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from ser.config import N_EGEMAPS
from ser.features import functionals
from ser.features.functionals import TARGET_RMS, _Extractor, _smile, egemaps
from tests.conftest import spoken, voiced


def _signals() -> list[np.ndarray]:
    """Voices of other lengths, pitches and levels, one repeated after others, a near-silent one and
    a very short one (a quarter of a second)."""
    many = [spoken(2.0, voice=v, seed=s) for s, v in enumerate(("EF1", "EM1", "EF2", "EM2"))]
    many += [voiced(3.0, f0=110.0, seed=5), 0.3 * voiced(1.2, f0=260.0, seed=6), many[0]]
    many += [np.random.default_rng(7).normal(0, 1e-4, 16_000).astype(np.float32), voiced(0.25, seed=8)]
    return [np.clip(s, -1, 1).astype(np.float32) for s in many]


def _reference(waveform: np.ndarray) -> np.ndarray:
    """openSMILE's own road: a new instance for the call."""
    return _smile().process_signal(waveform, 16_000).to_numpy(dtype=np.float64)[0]


@pytest.mark.parametrize("contours", [False, True], ids=["functionals' sink", "both sinks"])
def test_a_reset_instance_gives_process_signals_values_call_after_call(contours):
    signals = _signals()
    extractor = _Extractor(16_000, contours)
    runs = [extractor(s) for s in signals]
    ours = [values for values, _ in runs]
    frames = [f for _, f in runs]
    assert all(f is None for f in frames) if not contours else [len(f) for f in frames[:1]] == [len(frames[6])]
    for signal, values in zip(signals, ours, strict=True):
        assert values.shape == (N_EGEMAPS,)
        np.testing.assert_array_equal(values, _reference(signal))
    np.testing.assert_array_equal(ours[0], ours[6])  # nothing of the runs between carried over
    assert np.isfinite(ours[0]).all() and not np.array_equal(ours[0], ours[1])


def test_a_sample_beyond_full_scale_is_clipped_not_wrapped():
    """A click in near silence, scaled to one level, goes far beyond full scale: openSMILE reads it
    at full scale, not wrapped round to the other sign by its cast to 16 bits."""
    waveform = np.random.default_rng(1).normal(0, 1e-3, 32_000).astype(np.float32)
    waveform[16_000:16_010] = 0.9
    scaled = waveform * (TARGET_RMS / np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    assert np.abs(scaled).max() > 2  # the click, at one level

    def smile(x: np.ndarray) -> np.ndarray:
        return np.nan_to_num(_reference(x.astype(np.float32)))

    clipped = np.clip(scaled, -1, 32767 / 32768)
    wrapped = (scaled * 32768).astype(np.int64).astype(np.int16) / 32768  # what openSMILE's cast reads
    np.testing.assert_allclose(egemaps(waveform)[:-1], smile(clipped), rtol=1e-6)
    assert not np.allclose(smile(clipped), smile(wrapped), rtol=1e-3)


def test_threads_at_once_each_get_their_own_windows_values():
    """Twelve threads released together: every window gets the values it gets alone, whichever
    instance ran it, and the instances they used are kept for later calls."""
    signals = _signals()[:4] * 3
    expected = [egemaps(s) for s in signals]
    got: list[np.ndarray | None] = [None] * len(signals)
    start = threading.Barrier(len(signals))

    def work(i: int) -> None:
        start.wait(timeout=60)
        got[i] = egemaps(signals[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(signals))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(e, g)
    kept = [found for (_pid, sr, contours), found in functionals._idle.items() if sr == 16_000 and not contours]
    assert 1 <= sum(map(len, kept)) <= len(signals)


def _in_child(queue, waveform: np.ndarray) -> None:
    queue.put(egemaps(waveform))


def test_a_forked_worker_builds_its_own_instances():
    """The parent holds the instances' lock while it forks, as another thread might: the child gets
    a fresh lock, builds its own instance (they are keyed by process) and gets the same values."""
    waveform = _signals()[1]
    expected = egemaps(waveform)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with functionals._idle_lock:
        child = context.Process(target=_in_child, args=(queue, waveform))
        child.start()
        values = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(values, expected)
