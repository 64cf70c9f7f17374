"""Plotly figures: a clip (probabilities, waveform, spectrograms), an emotion timeline, a training
run; a corpus's figures are ``ser.viz.corpus``'s.

No Streamlit here: ``ser.app.ui`` and the pages draw what these return. Every emotion is drawn in its
one colour (``EMOTION_COLOURS``) in every chart, and every frequency axis names its ticks in full.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from ser.config import NO_SPEECH

# One colour per emotion, the same in every chart on every page. Arousal reads as warmth and
# brightness: the high-arousal emotions are warm and bright (angry vermillion, surprise orange,
# happy yellow, fear reddish purple), the low-arousal ones cool and darker (neutral sky blue,
# disgust bluish green, sad blue), so a timeline's mood shows before its legend is read. The seven
# are Okabe & Ito's palette for colour-vision deficiency ("Color Universal Design", 2008) without
# its black; the emotions in manifests but never modelled (RAVDESS calm, EmoDB boredom, IEMOCAP's and
# MSP-Podcast's other categories) take colours of Paul Tol's muted scheme, made for the same purpose.
# With protanopia, deuteranopia or tritanopia simulated, the seven and the pause stay 15 CIELAB units
# apart or more (tests/viz/test_plots.py).
# A pause is grey: no speech, so no emotion. None is one of the "#000001".."#0000ff" placeholders
# Streamlit's chart theme replaces (see MAGMA).
EMOTION_COLOURS = {
    "angry": "#D55E00",  # vermillion
    "surprise": "#E69F00",  # orange
    "happy": "#F0E442",  # yellow
    "fear": "#CC79A7",  # reddish purple
    "disgust": "#009E73",  # bluish green
    "neutral": "#56B4E9",  # sky blue
    "sad": "#0072B2",  # blue
    "calm": "#88CCEE",  # Tol's cyan
    "boredom": "#332288",  # Tol's indigo
    "frustrated": "#882255",  # Tol's wine
    "excited": "#CC6677",  # Tol's rose
    "contempt": "#999933",  # Tol's olive
    "other": "#DDCC77",  # Tol's sand
    NO_SPEECH: "#BBBBBB",  # Tol's grey
}
OTHER_COLOUR = "#777777"  # a label outside the palette (a CSV corpus's own emotion names)

# Plotly's Magma, but for its black: Streamlit's chart theme takes the colours "#000001".."#0000xx" as
# placeholders for its own palette, so Magma's "#000004" (its 4th category colour) drew silence pink.
MAGMA = ["#010005" if c == "#000004" else c for c in plotly.colors.sequential.Magma]
FREQUENCY_TICKS_HZ = (100, 200, 500, 1000, 2000, 4000, 8000)  # plotly's own log ticks read "100, 2, 5, 1000"

TIMELINE_MAX_POINTS = 300  # more windows than this are averaged into bins (an hour: 3,598 windows -> 12 s bins)
# Fewer windows' worth of speech than this and a "timeline" is one reading drawn as a spike: its windows
# overlap so much (a 3.2 s clip: two 3 s windows 0.2 s apart) that they cannot differ. Three side by side.
MIN_TIMELINE_WINDOWS = 3


def emotion_colour(label: str) -> str:
    """The colour of an emotion (or of "no speech") in every chart."""
    return EMOTION_COLOURS.get(label, OTHER_COLOUR)


def frequency_axis(freqs_hz: np.ndarray) -> dict[str, Any]:
    """A log axis over ``freqs_hz`` with its ticks named in full: 100, 200, 500, 1k, 2k, 4k, 8k."""
    low, high = float(np.min(freqs_hz)), float(np.max(freqs_hz))
    ticks = [f for f in FREQUENCY_TICKS_HZ if low <= f <= high]
    return dict(type="log", tickvals=ticks, ticktext=[f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])


# --- one clip -------------------------------------------------------------------------------------


def probability_figure(probabilities: Mapping[str, float]) -> go.Figure:
    """Horizontal bars of each label's probability in the given order, in the emotions' colours,
    the numbers written level beside each bar (inside a thin bar plotly turned them on end); the
    most probable in bold."""
    labels, values = list(probabilities), list(probabilities.values())
    best = int(np.argmax(values))
    bars = go.Bar(
        x=values, y=labels, orientation="h", marker=dict(color=[emotion_colour(k) for k in labels], line_width=0),
        text=[f"<b>{v:.0%}</b>" if i == best else f"{v:.0%}" for i, v in enumerate(values)],
        textposition="outside", textangle=0, cliponaxis=False, hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    )  # fmt: skip
    axes = dict(xaxis=dict(range=[0, 1], title="probability", tickformat=".0%"), yaxis=dict(autorange="reversed"))
    return go.Figure(bars, layout=compact_layout(right=45, **axes))  # room for "100%" past the axis' end


def waveform_figure(waveform: np.ndarray, sr: int, *, max_points: int = 4000) -> go.Figure:
    """Min/max envelope of a waveform (decimated for the browser)."""
    step = max(1, len(waveform) // max_points)
    n = len(waveform) // step * step
    blocks = waveform[:n].reshape(-1, step) if n else waveform[None, :]
    times = np.arange(len(blocks)) * step / sr
    line = dict(width=0.8, color="#4c78a8")
    traces = [
        go.Scatter(x=times, y=blocks.max(axis=1), line=line, name="max"),
        go.Scatter(x=times, y=blocks.min(axis=1), line=line, fill="tonexty", name="min"),
    ]
    axes = dict(xaxis=dict(title="time (s)"), yaxis=dict(title="amplitude", range=[-1, 1]))
    return go.Figure(traces, layout=compact_layout(showlegend=False, **axes))


def heatmap_figure(
    matrix: np.ndarray, times_s: np.ndarray, rows: np.ndarray, *, row_title: str, unit: str, log_rows: bool = False
) -> go.Figure:
    """A time-by-row heatmap in Magma; ``log_rows`` for frequencies (a log axis with ticks in Hz)."""
    heatmap = go.Heatmap(z=matrix.round(1), x=times_s, y=rows, colorscale=MAGMA, colorbar=dict(title=unit))
    yaxis = dict(title=row_title) | (frequency_axis(rows) if log_rows else {})
    return go.Figure(heatmap, layout=compact_layout(xaxis=dict(title="time (s)"), yaxis=yaxis))


def spectrogram_figures(
    waveform: np.ndarray, *, max_columns: int = 1500, with_mfcc: bool = True
) -> tuple[go.Figure, go.Figure | None]:
    """Mel spectrogram (Hz axis) and MFCC heatmaps (None without ``with_mfcc``: a plotly figure
    costs ~5 ms to build, and the Classify page shows only the mel) of a 16 kHz waveform. A long one is averaged
    down to at most ``max_columns`` time columns, computed block by block, so an hour makes a
    200 kB chart from a few MB of working memory (not 67 MB from 0.5 GB)."""
    from ser.viz.explore import DISPLAY_FEATURES, Spectrograms, spectrograms

    hop = DISPLAY_FEATURES.hop_length
    step = math.ceil((len(waveform) // hop + 1) / max_columns)
    if step == 1:
        spec = spectrograms(waveform)
    else:
        block = hop * step * 200  # 200 output columns per block
        # block // hop frames of each block: the frame centred on a block's end is the next one's first
        parts = [
            _pooled(spectrograms(waveform[start : start + block]), step, block // hop)
            for start in range(0, len(waveform), block)
        ]
        mel_db, mfcc = np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts], axis=1)
        times_s = (np.arange(mel_db.shape[1]) * step + (step - 1) / 2) * hop / DISPLAY_FEATURES.sample_rate
        spec = Spectrograms(mel_db, mfcc, times_s, parts[0][2])
    mel = heatmap_figure(
        spec.mel_db, spec.times_s, spec.mel_hz, row_title="frequency (Hz, mel scale)", unit="dB", log_rows=True
    )
    if not with_mfcc:
        return mel, None
    mfcc = heatmap_figure(spec.mfcc, spec.times_s, np.arange(len(spec.mfcc)), row_title="MFCC", unit="")
    return mel, mfcc


def _pooled(spec, step: int, max_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of every ``step`` of a block's first ``max_frames`` mel (dB) and MFCC columns (a
    partial last group too)."""
    n = min(spec.mel_db.shape[1], max_frames)
    return block_means(spec.mel_db[:, :n], step), block_means(spec.mfcc[:, :n], step), spec.mel_hz


def block_means(values: np.ndarray, step: int) -> np.ndarray:
    """Mean of every ``step`` entries along the last axis (a partial last group too)."""
    n = values.shape[-1]
    groups = np.arange(0, n, step)
    return np.add.reduceat(values, groups, axis=-1) / np.diff(np.append(groups, n)).astype(np.float32)


# --- a timeline -----------------------------------------------------------------------------------


def no_timeline_reason(timeline, speech_s: float) -> str:
    """Why a clip gets no emotion timeline, for a caption where it would be; "" when it gets one.

    timeline : ser.serving.predict.Timeline, or None when the speech fits the model's one window
    speech_s : the length of the speech that was classified
    """
    if timeline is None:
        return f"No emotion timeline: its {speech_s:.1f} s of speech fit the model's one window."
    needed_s = MIN_TIMELINE_WINDOWS * timeline.window_s
    if speech_s >= needed_s:
        return ""
    return (
        f"No emotion timeline: its {speech_s:.1f} s of speech make {len(timeline.starts_s)} overlapping "
        f"{timeline.window_s:g} s windows, which cannot differ much; it takes {needed_s:g} s of speech."
    )


def timeline_figure(
    timeline, *, at_end: bool = False, last_s: float | None = None, end_s: float | None = None
) -> go.Figure:
    """Stacked areas of each emotion's probability over a long clip (at window centres, or at their
    ends with ``at_end``: when each live readout was made), pauses as grey bands.

    Each window holds its value until the next one (a step, not a slope), so a pause is a band
    with straight edges instead of wedges; the areas have no outlines (one colour's outline over
    thousands of points drew the whole chart in it). More than ``TIMELINE_MAX_POINTS`` windows are
    averaged in bins, the bin width named on the axis. The time axis runs from 0 to ``end_s`` (the
    clip's length, trailing silence included) or the last window's end, lined up with the clip's
    waveform; with ``at_end`` and ``last_s``, it spans that many seconds up to the last readout
    (the Live page's rolling minute).
    """
    times_s = timeline.starts_s + timeline.window_s * (1.0 if at_end else 0.5)
    step = math.ceil(len(times_s) / TIMELINE_MAX_POINTS)
    speech = timeline.speech.astype(np.float64)
    # A pause contributes to no emotion; every bin then sums to 1 with its pause share.
    shares = block_means((timeline.probabilities * speech[:, None]).T, step)
    x, pause = block_means(times_s, step), 1.0 - block_means(speech, step)
    bands = [(label, shares[i]) for i, label in enumerate(timeline.labels)]
    if not timeline.speech.all():
        bands.append((NO_SPEECH, pause))
    traces = []
    for label, y in bands:
        colour = emotion_colour(label)
        traces.append(go.Scatter(
            x=x, y=y, name=label, stackgroup="p", mode="lines", fillcolor=colour,
            line=dict(width=0, shape="hvh", color=colour), hovertemplate="%{y:.0%}",
        ))  # fmt: skip
    xaxis = dict(title=_time_title(timeline, at_end, step))
    if at_end and last_s is not None:
        end = max(float(times_s[-1]), last_s)
        xaxis |= dict(range=[end - last_s, end])
    elif not at_end:
        xaxis |= dict(range=[0, max(float(timeline.starts_s[-1]) + timeline.window_s, end_s or 0.0)])
    axes = dict(xaxis=xaxis, yaxis=dict(title="probability", range=[0, 1], tickformat=".0%"))
    return go.Figure(traces, layout=compact_layout(height=300, hovermode="x unified", **axes))


def _time_title(timeline, at_end: bool, step: int) -> str:
    """The time axis' title: where in each window a point sits, and the bin width when binned."""
    where = f"end of each {timeline.window_s:g} s window" if at_end else "window centre"
    if step == 1:
        return f"time (s, {where})"
    hop_s = float(np.median(np.diff(timeline.starts_s)))
    return f"time (s, {where}); each point the mean of {step} windows: {step * hop_s:g} s bins"


# --- a training run -------------------------------------------------------------------------------


def history_figure(logs: list, metric: str) -> go.Figure:
    """Training and validation curves of ``metric`` ("loss" or "accuracy") over epochs, one pair
    of curves per fit when a run fits several folds (EpochLog entries or their dicts)."""
    entries = [e if isinstance(e, dict) else dataclasses.asdict(e) for e in logs]
    fits = list(dict.fromkeys(e.get("fold_index", 1) for e in entries))
    palette = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2"]
    fig = go.Figure()
    for n, index in enumerate(fits):
        part = [e for e in entries if e.get("fold_index", 1) == index]
        # Several fits: one legend group each, titled by its fold without the protocol's name
        # ("train EM1, test EF1"), so the legend stays narrow beside a half-width chart.
        fold = part[0].get("fold", "").split(": ", 1)[-1] if len(fits) > 1 else ""
        group = dict(legendgroup=str(index), legendgrouptitle_text=fold) if fold else {}
        hover = f"{fold}<br>" if fold else ""
        color = palette[n % len(palette)]
        epochs = [e["epoch"] for e in part]
        for name, key, dash in (("train", metric, "solid"), ("validation", f"val_{metric}", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=epochs, y=[e[key] for e in part], name=name, line=dict(color=color, dash=dash),
                    hovertemplate=f"{hover}{name}, epoch %{{x}}: %{{y:.3f}}<extra></extra>", **group,
                )
            )  # fmt: skip
    # Whole epochs only (a 2-epoch run had ticks at 1.2, 1.4, ...), about ten of them; the legend on
    # the right, where eight entries (four folds) do not cover the axis title as they did below it.
    last = max((e["epoch"] for e in entries), default=1)
    xaxis = dict(title="epoch", tick0=1, dtick=max(1, math.ceil(last / 10)))
    fig.update_layout(compact_layout(height=320, title=metric, xaxis=xaxis, legend=dict(font=dict(size=10))))
    return fig


def confusion_figure(metrics: dict[str, Any]) -> go.Figure:
    labels, confusion = metrics["labels"], np.array(metrics["confusion"])
    heatmap = go.Heatmap(z=confusion, x=labels, y=labels, colorscale="Blues", text=confusion, texttemplate="%{text}")
    axes = dict(xaxis=dict(title="predicted"), yaxis=dict(title="true", autorange="reversed"))
    return go.Figure(heatmap, layout=compact_layout(height=380, **axes))


def compact_layout(*, height: int = 240, right: int = 10, **layout: Any) -> dict[str, Any]:
    """A compact layout. Given to go.Figure whole: one update_layout call per figure costs
    ~1 ms of plotly's attribute-path parsing, the Classify page's largest cost per result."""
    return dict(height=height, margin=dict(l=10, r=right, t=30, b=10), **layout)
