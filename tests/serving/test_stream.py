"""The live stream (ser.serving.stream): the speaker's voice profile grows from it and takes over from zero-shot."""

from __future__ import annotations

import numpy as np
import pytest

from ser.models.bundle import load_bundle
from ser.serving.predict import Predictor
from ser.serving.stream import PROFILE_TARGET_S, StreamClassifier
from tests.conftest import BUNDLED_SVM, DEMO_VOICES, spoken

pytestmark = pytest.mark.skipif(not BUNDLED_SVM.is_dir(), reason="the bundled speaker-normalised model is absent")


def test_the_stream_learns_the_voice_then_uses_it_and_stop_forgets_it(monkeypatch):
    import ser.serving.stream

    computed = []  # whether each readout's windows carried the contours, which only zero-shot reads
    extract = ser.serving.stream.extract_features
    monkeypatch.setattr(
        ser.serving.stream, "extract_features", lambda *a: computed.append(a[1].contours) or extract(*a)
    )
    stream = StreamClassifier(Predictor(load_bundle(BUNDLED_SVM)))
    speech = np.concatenate([spoken(1.0, voice=DEMO_VOICES[i % 3], seed=i) for i in range(30)])
    readouts = []
    for start in range(0, len(speech), 8_000):  # half a second at a time, a readout after each
        stream.push(speech[start : start + 8_000], 16_000)
        readouts.append(stream.readout())
    learnt, needed = stream.voice_state()
    assert needed == PROFILE_TARGET_S and learnt >= needed
    assert readouts[4].normalised_by.startswith("zero-shot") and computed[4]
    assert "voice profile" in readouts[-1].normalised_by and stream.voice_text().startswith("using your voice")
    assert not computed[-1] and computed.index(False) > 4
    stream.reset()
    assert stream.voice_state() == (0.0, PROFILE_TARGET_S)


def test_a_model_without_profiles_has_no_voice_state(tiny_bundle):
    stream = StreamClassifier(Predictor(load_bundle(tiny_bundle)))
    assert stream.voice_state() is None and stream.voice_text() is None
