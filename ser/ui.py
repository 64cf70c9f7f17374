"""Streamlit glue: cached loaders, the sidebar, and the figures and render helpers the pages share.

The only module of ``ser`` that imports Streamlit. Nothing at import time loads TensorFlow, so
the first page paints fast: model cards are read as plain JSON, the predictor is built lazily.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import streamlit as st

from ser.config import PAUSE
from ser.errors import SERError
from ser.registry import models_folder, read_card, serving_bundle


def _keep_keras_state_across_reruns() -> None:
    """Streamlit ends every script run with ``keras.backend.clear_session()`` (its
    ``_clean_problem_modules``). That call replaces Keras' per-thread state for every thread at
    once, so a training job building a model in its own thread, while the Train page refreshes
    each second, got duplicate layer names ("re_lu is used 2 times") and failed at random.
    Nothing here relies on that clean-up (models are built and loaded explicitly), so keep
    Streamlit's other clean-up (matplotlib figures) and leave Keras alone."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # pragma: no cover - a Streamlit laid out differently has no such hook
        return
    if getattr(script_runner, "_clean_problem_modules", None) is None:
        return

    def clean_problem_modules() -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")

    script_runner._clean_problem_modules = clean_problem_modules


_keep_keras_state_across_reruns()

DEMO_CORPUS = Path(__file__).resolve().parent.parent / "assets" / "demo_corpus"
DATA_DIR_ENV = "SER_DATA_DIR"  # a corpus folder to use instead of the bundled demo corpus
DATA_DIR_KEY = "data_dir"  # st.session_state key of the sidebar's corpus field


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$])")


def md(text: object) -> str:
    """Text from a user (a file name, a path, an error quoting them) made literal for Streamlit's
    markdown: no emphasis, links, HTML, headings or LaTeX sneak in through a name like
    ``*draft*_[1].wav``."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def through_app_navigation() -> None:
    """Call first in every page. A fresh server whose first request is a page's own address
    (say /train) runs that page without app.py (Streamlit's legacy mode for apps with a pages/
    folder, left on until some run calls st.navigation): no sidebar, no corpus field. Switch the
    legacy mode off and rerun, so app.py's navigation serves the same address."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the legacy mode
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def active_model_path(models_dir: Path | None = None) -> Path:
    """The bundle the app serves: the active one, or a whole one when that is damaged
    (``ser.registry.serving_bundle``). Raises ModelError when none is usable."""
    return serving_bundle(models_dir or models_folder())[0]


def active_bundle_path() -> str | None:
    """The active bundle's folder, or None (with an st.error) when there is none."""
    try:
        return str(active_model_path())
    except SERError as e:
        st.error(f"No model to serve: {e}")
        return None


@st.cache_resource(show_spinner="Loading the model…")
def cached_predictor(path: str):
    """One Predictor per bundle path, shared by every session (read-only)."""
    from ser.predict import Predictor

    predictor = Predictor.from_path(path)
    # TensorFlow and the model leave millions of long-lived objects; moved out of the collector's
    # reach, a full collection no longer walks them all (it paused every session on the server).
    gc.freeze()
    return predictor


def sidebar_model_status() -> None:
    """Active model name, architecture and its speaker-independent accuracy from the card."""
    with st.sidebar:
        try:
            path, problems = serving_bundle(models_folder())
        except SERError as e:
            st.error(f"No model to serve: {e}")
            return
        for problem in problems:
            st.warning(problem[0].upper() + problem[1:])
        try:
            card = read_card(path)
        except SERError as e:
            st.error(str(e))
            return
        st.markdown(f"**Model** `{Path(path).name}`")
        st.caption(f"architecture: {card.architecture}")
        headline = card.headline()
        if headline is not None:
            st.metric(headline_title(card, headline[0]), f"{headline[1]['accuracy']:.1%}")


def headline_title(card, protocol: str) -> str:
    """What a card's headline accuracy measures, in a user's words."""
    if protocol == "speaker-adapted":
        return f"Accuracy on {(card.adaptation or {}).get('speaker', '?')}, adapted"
    return {
        "corpus": "Accuracy on corpora it never heard",
        "speaker": "Accuracy on voices it never heard",
    }.get(protocol, f"Accuracy ({protocol})")


# --- corpus ---------------------------------------------------------------------------------------


def default_corpus() -> str:
    return os.environ.get(DATA_DIR_ENV, "").strip() or str(DEMO_CORPUS)


def sidebar_corpus() -> None:
    """The corpus field in the sidebar; its value is kept in st.session_state[DATA_DIR_KEY]."""
    with st.sidebar:
        st.session_state.setdefault(DATA_DIR_KEY, default_corpus())
        st.text_input(
            "Corpus folder",
            key=DATA_DIR_KEY,
            help=f"A TESS, RAVDESS, CREMA-D or SAVEE folder, or a CSV manifest. Default: ${DATA_DIR_ENV} "
            "or the bundled demo corpus.",
        )
        chosen, configured = corpus_path(), os.environ.get(DATA_DIR_ENV, "").strip()
        if Path(chosen).resolve() == DEMO_CORPUS.resolve():
            st.caption("Using the bundled demo corpus (synthetic speech).")
        elif configured and Path(chosen).expanduser().resolve() == Path(configured).expanduser().resolve():
            st.caption(f"From ${DATA_DIR_ENV}.")
        else:
            st.caption("Set in this session.")


def corpus_path() -> str:
    """The corpus chosen in the sidebar (the default until the field is rendered)."""
    return (st.session_state.get(DATA_DIR_KEY) or default_corpus()).strip()


@st.cache_data(show_spinner="Looking for clips…", max_entries=8)
def cached_manifest(path: str, stamp: tuple = ()):
    """ser.datasets.discover, cached per path and ``stamp`` (ser.datasets.corpus_stamp: an edited
    CSV or a file added to the folder is seen, not the list from the first visit). Raises DatasetError."""
    from ser.datasets import discover

    return discover(path)


def load_manifest():
    """The sidebar's corpus, discovered; None (with an st.error) when it cannot be used."""
    from ser.datasets import corpus_stamp

    path = corpus_path()
    try:
        return cached_manifest(path, corpus_stamp(path))
    except SERError as e:
        st.error(f"Corpus: {md(e)}")
        return None


# --- figures --------------------------------------------------------------------------------------


def probability_figure(probabilities: dict[str, float]) -> go.Figure:
    labels, values = list(probabilities), list(probabilities.values())
    best = int(np.argmax(values))
    colors = ["#e45756" if i == best else "#4c78a8" for i in range(len(values))]
    bars = go.Bar(x=values, y=labels, orientation="h", marker_color=colors, text=[f"{v:.0%}" for v in values])
    axes = dict(xaxis=dict(range=[0, 1], title="probability", tickformat=".0%"), yaxis=dict(autorange="reversed"))
    return go.Figure(bars, layout=_layout(**axes))


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
    return go.Figure(traces, layout=_layout(showlegend=False, **axes))


# Plotly's Magma, but for its black: Streamlit's chart theme takes the colours "#000001".."#0000xx" as
# placeholders for its own palette, so Magma's "#000004" (its 4th category colour) drew silence pink.
MAGMA = ["#010005" if c == "#000004" else c for c in plotly.colors.sequential.Magma]


def heatmap_figure(
    matrix: np.ndarray, times_s: np.ndarray, rows: np.ndarray, *, row_title: str, unit: str, log_rows: bool = False
) -> go.Figure:
    heatmap = go.Heatmap(z=matrix.round(1), x=times_s, y=rows, colorscale=MAGMA, colorbar=dict(title=unit))
    yaxis = dict(title=row_title, type="log" if log_rows else "-")
    if log_rows:  # plotly's own log ticks read "100, 2, 5, 1000, 2, 5": name each one in full
        ticks = [f for f in (100, 200, 500, 1000, 2000, 4000, 8000) if rows.min() <= f <= rows.max()]
        yaxis |= dict(tickvals=ticks, ticktext=[f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])
    return go.Figure(heatmap, layout=_layout(xaxis=dict(title="time (s)"), yaxis=yaxis))


def spectrogram_figures(
    waveform: np.ndarray, *, max_columns: int = 1500, with_mfcc: bool = True
) -> tuple[go.Figure, go.Figure | None]:
    """Mel spectrogram (Hz axis) and MFCC heatmaps (None without ``with_mfcc``: a plotly figure
    costs ~5 ms to build, and the Classify page shows only the mel) of a 16 kHz waveform. A long one is averaged
    down to at most ``max_columns`` time columns, computed block by block, so an hour makes a
    200 kB chart from a few MB of working memory (not 67 MB from 0.5 GB)."""
    from ser.explore import DISPLAY_FEATURES, Spectrograms, spectrograms

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


def emotion_row_figure(waveforms: dict[str, np.ndarray], *, max_columns: int = 100) -> go.Figure:
    """Mel spectrograms of several clips side by side in one figure, titled by their keys (the
    same word in each emotion), on one colour scale; each averaged down to at most
    ``max_columns`` time columns (a subplot is ~150 px wide: more columns only cost the browser)."""
    from plotly.subplots import make_subplots

    from ser.explore import spectrograms

    fig = make_subplots(rows=1, cols=len(waveforms), subplot_titles=list(waveforms), shared_yaxes=True)
    for i, waveform in enumerate(waveforms.values(), start=1):
        spec = spectrograms(waveform)
        step = math.ceil(spec.mel_db.shape[1] / max_columns)
        heatmap = go.Heatmap(
            z=_block_means(spec.mel_db, step).round(1),
            x=_block_means(spec.times_s, step),
            y=spec.mel_hz,
            coloraxis="coloraxis",
            hovertemplate="%{y:.0f} Hz, %{z:.0f} dB",
        )
        fig.add_trace(heatmap, row=1, col=i)
        fig.update_xaxes(title_text="s", row=1, col=i)
    fig.update_yaxes(type="log", title_text="Hz", row=1, col=1)
    fig.update_layout(_layout(height=260, coloraxis=dict(colorscale=MAGMA, colorbar=dict(title="dB"))))
    return fig


def _pooled(spec, step: int, max_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of every ``step`` of a block's first ``max_frames`` mel (dB) and MFCC columns (a
    partial last group too)."""
    n = min(spec.mel_db.shape[1], max_frames)
    return _block_means(spec.mel_db[:, :n], step), _block_means(spec.mfcc[:, :n], step), spec.mel_hz


def _block_means(values: np.ndarray, step: int) -> np.ndarray:
    """Mean of every ``step`` entries along the last axis (a partial last group too)."""
    n = values.shape[-1]
    groups = np.arange(0, n, step)
    return np.add.reduceat(values, groups, axis=-1) / np.diff(np.append(groups, n)).astype(np.float32)


def timeline_figure(timeline, *, at_end: bool = False) -> go.Figure:
    """Stacked areas of each emotion's probability over a long clip (window centres, or ends with
    ``at_end``: when each live readout was made); a window in a pause is one grey "pause" band
    instead of the model's guess."""
    centres = timeline.starts_s + timeline.window_s * (1.0 if at_end else 0.5)
    speech = timeline.speech.astype(np.float32)
    traces = [
        go.Scatter(x=centres, y=timeline.probabilities[:, i] * speech, name=label, stackgroup="p", mode="lines")
        for i, label in enumerate(timeline.labels)
    ]
    if not timeline.speech.all():
        pause = dict(color="lightgrey")
        traces.append(go.Scatter(x=centres, y=1 - speech, name=PAUSE, stackgroup="p", mode="lines", line=pause))
    if at_end:
        xaxis = dict(title=f"time (s, end of each {timeline.window_s:g} s window)")
    else:  # from 0 to the last window's end: lined up with the waveform and spectrogram above it
        end = float(timeline.starts_s[-1]) + timeline.window_s
        xaxis = dict(title="time (s, window centre)", range=[0, end])
    axes = dict(xaxis=xaxis, yaxis=dict(title="probability", range=[0, 1]))
    return go.Figure(traces, layout=_layout(height=300, **axes))


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
    fig.update_layout(_layout(height=320, title=metric, xaxis=xaxis, legend=dict(font=dict(size=10))))
    return fig


def confusion_figure(metrics: dict[str, Any]) -> go.Figure:
    labels, confusion = metrics["labels"], np.array(metrics["confusion"])
    heatmap = go.Heatmap(z=confusion, x=labels, y=labels, colorscale="Blues", text=confusion, texttemplate="%{text}")
    axes = dict(xaxis=dict(title="predicted"), yaxis=dict(title="true", autorange="reversed"))
    return go.Figure(heatmap, layout=_layout(height=380, **axes))


def _layout(*, height: int = 240, **layout: Any) -> dict[str, Any]:
    """A compact layout. Given to go.Figure whole: one update_layout call per figure costs
    ~1 ms of plotly's attribute-path parsing, the Classify page's largest cost per result."""
    return dict(height=height, margin=dict(l=10, r=10, t=30, b=10), **layout)


# --- classify -------------------------------------------------------------------------------------


@dataclass
class ClipResult:
    """What the page shows of one clip: the charts are drawn once, when the clip is classified,
    and the waveform is not kept (an hour of it is 230 MB in every cached result)."""

    name: str
    duration_s: float  # of the decoded audio (up to the cap)
    prediction: Any  # ser.predict.Prediction
    timeline: Any | None  # ser.predict.Timeline for clips longer than the model's window
    waveform_chart: go.Figure
    mel_chart: go.Figure
    note: str = ""  # e.g. that a recording longer than the cap was cut there

    def row(self) -> dict[str, Any]:
        """One line of the session history."""
        return {
            "clip": self.name,
            "emotion": self.prediction.label,
            "confidence": round(self.prediction.confidence, 4),
            "duration_s": round(self.duration_s, 2),
            **{k: round(v, 4) for k, v in self.prediction.probabilities.items()},
        }


def classify_source(name: str, source: Any, predictor) -> ClipResult:
    """Decode and classify one upload or recording (``ser.predict.classify``) and draw its charts.
    Raises SERError for unusable input."""
    from ser.predict import classify

    result = classify(source, predictor)
    sr, waveform = predictor.audio_config.sample_rate, result.waveform
    mel, _ = spectrogram_figures(waveform, with_mfcc=False)
    return ClipResult(
        name, len(waveform) / sr, result.prediction, result.timeline, waveform_figure(waveform, sr), mel, result.note
    )


@st.cache_data(show_spinner="Classifying…", max_entries=64)
def cached_classify(name: str, data: bytes, bundle_path: str) -> ClipResult:
    """classify_source with the bundle at ``bundle_path``, cached by the clip's bytes, so that a
    rerun of the page does not decode and classify every upload again. Raises SERError."""
    return classify_source(name, data, cached_predictor(bundle_path))


def timeline_csv(timeline) -> str:
    """A timeline's windows as CSV text (ser.predict.Timeline.rows)."""
    import pandas as pd

    return pd.DataFrame(timeline.rows()).to_csv(index=False)


def render_clip_result(result: ClipResult, key: str) -> None:
    """Predicted emotion and confidence, probabilities, waveform, spectrogram, and a timeline;
    ``key`` tells the charts of one clip from another's."""
    prediction = result.prediction
    st.subheader(f"{md(result.name)}: {prediction.label} ({prediction.confidence:.0%})")
    if result.note:
        st.warning(f"{md(result.name)}: {result.note}.")
    left, right = st.columns(2)
    left.plotly_chart(probability_figure(prediction.probabilities), key=f"probs-{key}")
    right.plotly_chart(result.waveform_chart, key=f"wave-{key}")
    st.plotly_chart(result.mel_chart, key=f"mel-{key}")  # full width: time needs the room
    if result.timeline is not None:
        timeline = result.timeline
        pauses = int((~timeline.speech).sum())
        note = f", {pauses} in pauses and left out of the clip's emotion" if pauses else ""
        st.caption(f"Emotion over time ({len(timeline.starts_s)} windows of {timeline.window_s:g} s{note})")
        st.plotly_chart(timeline_figure(result.timeline), key=f"timeline-{key}")
        st.download_button(
            "Download the timeline (CSV)", timeline_csv(timeline), f"{Path(result.name).stem}-timeline.csv",
            mime="text/csv", key=f"timeline-csv-{key}",
        )  # fmt: skip


# --- live -----------------------------------------------------------------------------------------
