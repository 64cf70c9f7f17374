"""Streamlit glue: cached loaders, the sidebar, and the small render helpers the pages share
(the figures are ``ser.plots``'s).

The only module of ``ser`` that imports Streamlit. Nothing at import time loads TensorFlow, so
the first page paints fast: model cards are read as plain JSON, the predictor is built lazily.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from ser.config import AUDIO_EXTENSIONS
from ser.errors import SERError
from ser.plots import no_timeline_reason, probability_figure, spectrogram_figures, timeline_figure, waveform_figure
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
    from ser.jobs import JOB

    JOB.recover(models_folder())  # once per process: what a killed server left in the folder
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


FORMATS = [ext.lstrip(".") for ext in AUDIO_EXTENSIONS]

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


def classify_source(name: str, source: Any, predictor, profile=None) -> ClipResult:
    """Decode and classify one upload or recording (``ser.predict.classify``), with the speaker's
    voice profile when there is one, and draw its charts. Raises SERError for unusable input."""
    from ser.predict import classify

    result = classify(source, predictor, profile=profile)
    sr, waveform = predictor.audio_config.sample_rate, result.waveform
    mel, _ = spectrogram_figures(waveform, with_mfcc=False)
    return ClipResult(
        name, len(waveform) / sr, result.prediction, result.timeline, waveform_figure(waveform, sr), mel, result.note
    )


@st.cache_data(show_spinner="Classifying…", max_entries=64)
def cached_classify(name: str, data: bytes, bundle_path: str, profile_json: str = "") -> ClipResult:
    """classify_source with the bundle at ``bundle_path`` (and the voice profile ``profile_json``,
    "" for none), cached by the clip's bytes, so that a rerun of the page does not decode and
    classify every upload again. Raises SERError."""
    from ser.profile import VoiceProfile

    predictor = cached_predictor(bundle_path)
    profile = VoiceProfile.from_json(profile_json, space=predictor.normalisation.space) if profile_json else None
    return classify_source(name, data, predictor, profile)


# --- voice profiles: kept in this browser session only ---------------------------------------------

PROFILE_KEY = "voice_profile"  # st.session_state: the user's VoiceProfile as JSON ("my voice")


@st.cache_data(show_spinner="Learning the voice…", max_entries=16)
def cached_profile(clips: tuple[bytes, ...], bundle_path: str, source: str) -> str:
    """The voice profile (JSON) of recordings of one speaker. Raises SERError."""
    from ser.audio import load_audio_head

    predictor = cached_predictor(bundle_path)
    waveforms = [load_audio_head(data, config=predictor.audio_config).waveform for data in clips]
    return predictor.build_profile(waveforms, source).to_json()


def my_voice(bundle_path: str) -> str:
    """The "my voice" controls: build a profile from a few unlabelled recordings, or load a saved
    one; download it; forget it. Returns the profile's JSON, "" when there is none."""
    predictor = cached_predictor(bundle_path)
    if not predictor.takes_profiles:
        return ""
    with st.expander("My voice: a profile for your single clips", expanded=False):
        st.caption(
            "A few recordings of your voice, any emotion, no labels, teach the model how you usually sound; later "
            "clips are then heard against that. It stays in this browser session only (the server keeps nothing), "
            "and you can download it and load it again another day."
        )
        _learn_voice(bundle_path)
        _load_voice(predictor.normalisation.space)
        _show_voice()
    return st.session_state.get(PROFILE_KEY, "")


def _learn_voice(bundle_path: str) -> None:
    recordings = st.file_uploader("Recordings of your voice", type=FORMATS, accept_multiple_files=True,
                                  key="my_voice_clips")  # fmt: skip
    if recordings and st.button("Learn my voice", key="my_voice_learn"):
        clips = tuple(r.getvalue() for r in recordings)
        try:
            st.session_state[PROFILE_KEY] = cached_profile(clips, bundle_path, f"{len(clips)} recordings of my voice")
        except SERError as e:
            st.error(f"Cannot learn the voice: {md(e)}")


def _load_voice(space: str) -> None:
    """A saved profile, checked whole: a damaged, foreign or edited file changes nothing."""
    from ser.profile import VoiceProfile

    saved = st.file_uploader("…or load a saved profile (JSON)", type=["json"], key="my_voice_file")
    if saved is None or st.session_state.get("my_voice_loaded") == saved.file_id:
        return
    st.session_state["my_voice_loaded"] = saved.file_id
    try:
        st.session_state[PROFILE_KEY] = VoiceProfile.from_json(saved.getvalue(), space=space).to_json()
    except SERError as e:
        st.error(f"{md(saved.name)} is not usable, nothing changed: {md(e)}")


def _show_voice() -> None:
    from ser.profile import VoiceProfile

    current = st.session_state.get(PROFILE_KEY, "")
    if not current:
        return
    profile = VoiceProfile.from_json(current)
    st.success(f"Using your voice profile: {md(profile.source)}, {profile.speech_s:.0f} s of speech.")
    st.download_button("Download my voice profile", current, "my-voice-profile.json", mime="application/json")
    if st.button("Forget my voice", key="my_voice_forget"):
        st.session_state.pop(PROFILE_KEY, None)
        st.rerun()


def timeline_csv(timeline) -> str:
    """A timeline's windows as CSV text (ser.predict.Timeline.rows)."""
    import pandas as pd

    return pd.DataFrame(timeline.rows()).to_csv(index=False)


def render_clip_result(result: ClipResult, key: str) -> None:
    """Predicted emotion and confidence, probabilities, waveform, spectrogram, and a timeline when
    the speech is long enough for one (else a caption says why not); ``key`` tells the charts of
    one clip from another's."""
    prediction = result.prediction
    st.subheader(f"{md(result.name)}: {prediction.label} ({prediction.confidence:.0%})")
    if prediction.normalisation:
        st.caption(f"Speaker normalisation: {md(prediction.normalisation)}")
    if result.note:
        st.warning(f"{md(result.name)}: {result.note}.")
    left, right = st.columns(2)
    left.plotly_chart(probability_figure(prediction.probabilities), key=f"probs-{key}")
    right.plotly_chart(result.waveform_chart, key=f"wave-{key}")
    st.plotly_chart(result.mel_chart, key=f"mel-{key}")  # full width: time needs the room
    timeline, why_not = result.timeline, no_timeline_reason(result.timeline, prediction.duration_s)
    if why_not:
        st.caption(why_not)
        return
    pauses = int((~timeline.speech).sum())
    note = f", {pauses} in pauses and left out of the clip's emotion" if pauses else ""
    st.caption(f"Emotion over time ({len(timeline.starts_s)} windows of {timeline.window_s:g} s{note})")
    st.plotly_chart(timeline_figure(timeline, end_s=result.duration_s), key=f"timeline-{key}")
    st.download_button(
        "Download the timeline (CSV)", timeline_csv(timeline), f"{Path(result.name).stem}-timeline.csv",
        mime="text/csv", key=f"timeline-csv-{key}",
    )  # fmt: skip


# --- live -----------------------------------------------------------------------------------------
