"""Plotly figures of a corpus: class balance, per-emotion statistics, mean spectra, and one
word's spectrograms in every emotion (the Explore page).

No Streamlit here, as in ``ser.viz.plots``, whose colours, scales and layout these share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ser.viz.plots import MAGMA, block_means, compact_layout, emotion_colour, frequency_axis


def emotion_row_figure(waveforms: dict[str, np.ndarray], *, max_columns: int = 100) -> go.Figure:
    """Mel spectrograms of several clips side by side in one figure, titled by their keys (the
    same word in each emotion) over a strip of the emotion's colour, on one colour scale; each
    averaged down to at most ``max_columns`` time columns (a subplot is ~150 px wide: more
    columns only cost the browser)."""
    from plotly.subplots import make_subplots

    from ser.viz.explore import DISPLAY_FEATURES, mel_frequencies, spectrograms

    fig = make_subplots(rows=1, cols=len(waveforms), subplot_titles=list(waveforms), shared_yaxes=True)
    for i, (name, waveform) in enumerate(waveforms.items(), start=1):
        spec = spectrograms(waveform)
        step = math.ceil(spec.mel_db.shape[1] / max_columns)
        heatmap = go.Heatmap(
            z=block_means(spec.mel_db, step).round(1),
            x=block_means(spec.times_s, step),
            y=spec.mel_hz,
            coloraxis="coloraxis",
            hovertemplate="%{y:.0f} Hz, %{z:.0f} dB",
        )
        fig.add_trace(heatmap, row=1, col=i)
        fig.update_xaxes(title_text="s", row=1, col=i)
        axis = "" if i == 1 else str(i)
        fig.add_shape(
            type="rect", xref=f"x{axis} domain", yref=f"y{axis} domain", x0=0, x1=1, y0=1.0, y1=1.04,
            fillcolor=emotion_colour(name), line_width=0,
        )  # fmt: skip
    fig.update_yaxes(frequency_axis(mel_frequencies(DISPLAY_FEATURES)))
    fig.update_yaxes(title_text="Hz", row=1, col=1)
    fig.update_layout(compact_layout(height=260, coloraxis=dict(colorscale=MAGMA, colorbar=dict(title="dB"))))
    return fig


def class_balance_figure(counts: Mapping[tuple[str, str], int], emotions: Sequence[str]) -> go.Figure:
    """Clips per emotion, each bar in its emotion's colour, cut into one segment per speaker
    (named inside it where it fits, and in the hover). ``counts``: {(speaker, emotion): n}"""
    speakers, colours = sorted({speaker for speaker, _ in counts}), [emotion_colour(e) for e in emotions]
    bars = []
    for speaker in speakers:
        bars.append(go.Bar(
            x=list(emotions), y=[counts.get((speaker, e), 0) for e in emotions], name=speaker,
            marker=dict(color=colours, line=dict(color="white", width=1)),
            text=[speaker] * len(emotions), textposition="inside", insidetextanchor="middle", textangle=0,
            hovertemplate=f"{speaker}, %{{x}}: %{{y}} clips<extra></extra>",
        ))  # fmt: skip
    layout = compact_layout(
        height=320, title="Class balance", barmode="stack", showlegend=False, yaxis=dict(title="clips")
    )
    return go.Figure(bars, layout=layout | dict(uniformtext=dict(minsize=9, mode="hide")))


def emotion_box_figure(
    rows: Sequence[Mapping[str, Any]], column: str, emotions: Sequence[str], *, title: str
) -> go.Figure:
    """A box of ``column`` per emotion, in the emotions' colours, from ``ser.viz.explore.corpus_stats``
    rows (a clip that could not be measured, NaN, is left out)."""
    boxes = []
    for emotion in emotions:
        values = np.array([row[column] for row in rows if row["emotion"] == emotion], dtype=np.float64)
        colour = emotion_colour(emotion)
        values = values[np.isfinite(values)]
        boxes.append(go.Box(y=values, name=emotion, marker_color=colour, line_color=colour, boxpoints="outliers"))
    return go.Figure(boxes, layout=compact_layout(height=300, title=title, showlegend=False))


def mean_spectrum_figure(
    mean_mel: Mapping[str, np.ndarray], freqs_hz: np.ndarray, emotions: Sequence[str]
) -> go.Figure:
    """The average mel spectrum of each emotion (``ser.viz.explore.mean_mel_per_emotion``) over the
    bands' centre frequencies ``freqs_hz``, one line per emotion present, in its colour."""
    lines = [
        go.Scatter(x=freqs_hz, y=mean_mel[e], name=e, mode="lines", line=dict(color=emotion_colour(e)))
        for e in emotions
        if e in mean_mel
    ]
    axes = dict(xaxis=dict(title="frequency (Hz)") | frequency_axis(freqs_hz), yaxis=dict(title="dB"))
    return go.Figure(lines, layout=compact_layout(height=360, title="Average mel spectrum", **axes))
