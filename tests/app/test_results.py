"""ser.app.results: what the app keeps of a classified clip, in the same words as the command line."""

from __future__ import annotations

import io
import json

import numpy as np
import soundfile as sf

from ser.app.results import classify_source, timeline_csv
from ser.cli.reports import prediction_json
from ser.models.bundle import load_bundle
from ser.serving.predict import Predictor, classify
from tests.conftest import BUNDLED_SVM, spoken


def _wav(waveform: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, waveform, 16_000, format="WAV")
    return buffer.getvalue()


def test_the_session_row_names_its_lengths_as_the_cli_does():
    """Silence around 3.2 s of speech: speech_s is the trimmed speech and recording_s the decoded
    audio, in the app's table and in the CLI's JSON alike (the app called the second duration_s)."""
    predictor = Predictor(load_bundle(BUNDLED_SVM))
    pad = np.zeros(8_000, np.float32)
    data = _wav(np.concatenate([pad, spoken(3.2), pad]))
    row = classify_source("clip.wav", data, predictor).row()
    cli = json.loads(prediction_json("clip.wav", classify(data, predictor), with_timeline=False))
    assert "duration_s" not in row
    assert row["recording_s"] == round(cli["recording_s"], 2) == 4.2
    assert row["speech_s"] == round(cli["speech_s"], 2) and 3.0 < row["speech_s"] < row["recording_s"] - 0.5
    assert row["emotion"] == cli["label"]


def test_a_timeline_csv_has_a_row_per_window():
    predictor = Predictor(load_bundle(BUNDLED_SVM))
    result = classify(_wav(spoken(10.0)), predictor)
    lines = timeline_csv(result.timeline).strip().splitlines()
    assert lines[0].startswith("start_s,end_s,emotion,") and len(lines) == 1 + len(result.timeline.starts_s)
