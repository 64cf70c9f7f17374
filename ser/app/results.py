"""What the app keeps of a classified clip: its prediction, its timeline and its charts, drawn
once when it is classified (``classify_source``); and a timeline as CSV text.

No Streamlit here: ``ser.app.cache`` caches these results and ``ser.app.ui`` draws them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from ser.viz.plots import spectrogram_figures, waveform_figure


@dataclass
class ClipResult:
    """What the page shows of one clip: the charts are drawn once, when the clip is classified,
    and the waveform is not kept (an hour of it is 230 MB in every cached result)."""

    name: str
    duration_s: float  # of the decoded audio (up to the cap)
    prediction: Any  # ser.serving.predict.Prediction
    timeline: Any | None  # ser.serving.predict.Timeline for clips longer than the model's window
    waveform_chart: go.Figure
    mel_chart: go.Figure
    note: str = ""  # e.g. that a recording longer than the cap was cut there

    def row(self) -> dict[str, Any]:
        """One line of the session history."""
        return {
            "clip": self.name,
            "emotion": self.prediction.label,
            "confidence": round(self.prediction.confidence, 4),
            "speech_s": round(self.prediction.duration_s, 2),  # the trimmed speech, as in the CLI's JSON
            "recording_s": round(self.duration_s, 2),  # the decoded audio
            **{k: round(v, 4) for k, v in self.prediction.probabilities.items()},
        }


def classify_source(name: str, source: Any, predictor, profile=None) -> ClipResult:
    """Decode and classify one upload or recording (``ser.serving.predict.classify``), with the speaker's
    voice profile when there is one, and draw its charts. Raises SERError for unusable input."""
    from ser.serving.predict import classify

    result = classify(source, predictor, profile=profile)
    sr, waveform = predictor.audio_config.sample_rate, result.waveform
    mel, _ = spectrogram_figures(waveform, with_mfcc=False)
    return ClipResult(
        name, len(waveform) / sr, result.prediction, result.timeline, waveform_figure(waveform, sr), mel, result.note
    )


def smooth_together(results: list[ClipResult], predictor) -> list[ClipResult]:
    """Results of clips classified with one speaker's voice profile, each answer smoothed over the
    speaker's clips nearest it (``Predictor.smooth``), as the CLI answers such a batch."""
    smoothed = predictor.smooth([r.prediction for r in results])
    return [dataclasses.replace(r, prediction=p) for r, p in zip(results, smoothed, strict=True)]


def timeline_csv(timeline) -> str:
    """A timeline's windows as CSV text (ser.serving.predict.Timeline.rows)."""
    import pandas as pd

    return pd.DataFrame(timeline.rows()).to_csv(index=False)
