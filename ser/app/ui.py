"""Streamlit glue: the navigation, the sidebar (the served model, the corpus field), and the small
render helpers the pages share (the figures are ``ser.viz.plots``'s).

With ``ser.app.cache`` (the cached loaders), ``ser.app.voice`` (the "my voice" controls) and
``ser.app.versions`` (a model's scores and versions), the only modules of ``ser`` that import
Streamlit. Nothing at import time loads TensorFlow, so the first page paints fast: model cards
are read as plain JSON, the predictor is built lazily.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import streamlit as st

from ser.app.cache import cached_manifest
from ser.app.results import ClipResult, timeline_csv
from ser.config import AUDIO_EXTENSIONS
from ser.corpora.datasets import DEMO_CORPUS, corpus_stamp, is_demo_corpus
from ser.errors import SERError
from ser.store.card import headline_caption, headline_title, read_card
from ser.store.registry import models_folder, serving_bundle
from ser.viz.plots import no_timeline_reason, probability_figure, timeline_figure


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

DEMO_NOTE = (
    "This is the bundled demo corpus: synthetic voices made with a speech synthesiser, for trying the "
    "workbench (exploring, training, adapting), not a test of the model. To see how a model does on real "
    "speech, set the corpus folder in the sidebar to a real corpus (TESS, RAVDESS, CREMA-D, ...)."
)
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


def requested_page() -> str:
    """The page named by the address a browser opened ("xyz" for /xyz): "" at the root, and when
    the app's own links chose the page (by its hash, not its name)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

        pages = get_script_run_ctx().pages_manager
        return "" if pages.intended_page_script_hash else (pages.intended_page_name or "")
    except (ImportError, AttributeError):  # no script run (bare Python), or a Streamlit laid out differently
        return ""


def redirect_page(target: st.Page) -> st.Page:
    """A hidden default page that opens ``target`` at its own address: the root (/) leads to
    /classify, so a page has one address that works whichever way it was reached."""

    def open_target() -> None:
        st.switch_page(target)

    return st.Page(open_target, title=target.title, url_path="home", default=True, visibility="hidden")


def unknown_address_pages(pages: list[st.Page]) -> list[st.Page]:
    """A hidden "Page not found" page at the address a browser asked for, when no page has it (a
    typo, an old link): it names the address and links to every page, where Streamlit would show
    its bare "Page not found" dialog over the default page. [] for a known address."""
    name = requested_page()
    if not name or "/" in name or name in {p.url_path for p in pages} | {"home"}:
        return []

    def page_not_found() -> None:
        st.title("Page not found")
        st.markdown(f"SER Studio has no page at **/{md(name)}**. Its pages are:")
        for page in pages:
            st.page_link(page, label=f"{page.title}  (/{page.url_path})", icon=page.icon or None)

    return [st.Page(page_not_found, title="Page not found", url_path=name, visibility="hidden")]


def active_bundle_path() -> str | None:
    """The active bundle's folder, or None (with an st.error) when there is none."""
    try:
        return str(serving_bundle(models_folder())[0])
    except SERError as e:
        st.error(f"No model to serve: {e}")
        return None


def sidebar_model_status() -> None:
    """Active model name, architecture and its speaker-independent accuracy from the card."""
    from ser.app.jobs import JOB

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
            scores = headline[1]
            st.metric(headline_title(card, headline[0]), f"{scores['accuracy']:.1%}")
            per_speaker = scores.get("per_speaker")
            if per_speaker:  # a model that takes voice profiles: both ways, zero-shot first
                st.caption(
                    f"{headline_caption(card, headline[0])}. That is zero-shot, one clip alone; with the speaker's "
                    f"voice profile (a few of their recordings): {per_speaker['accuracy']:.1%}. Chance is 14%."
                )
            else:
                st.caption(headline_caption(card, headline[0]))


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
        if is_demo_corpus(chosen):
            st.caption(
                "Using the bundled demo corpus: synthetic voices for trying the workbench, not a test of the model."
            )
        elif configured and Path(chosen).expanduser().resolve() == Path(configured).expanduser().resolve():
            st.caption(f"From ${DATA_DIR_ENV}.")
        else:
            st.caption("Set in this session.")


def corpus_path() -> str:
    """The corpus chosen in the sidebar (the default until the field is rendered)."""
    return (st.session_state.get(DATA_DIR_KEY) or default_corpus()).strip()


def load_manifest():
    """The sidebar's corpus, discovered; None (with an st.error) when it cannot be used."""
    path = corpus_path()
    try:
        return cached_manifest(path, corpus_stamp(path))
    except SERError as e:
        st.error(f"Corpus: {md(e)}")
        return None


FORMATS = [ext.lstrip(".") for ext in AUDIO_EXTENSIONS]

# --- a clip ---------------------------------------------------------------------------------------


def clip_label(result: ClipResult, truth: str | None = None) -> str:
    """A clip's result in one line, "angry.flac: fear (82%)", with its true emotion when known."""
    prediction = result.prediction
    label = f"{md(result.name)}: {prediction.label} ({prediction.confidence:.0%})"
    return f"{label}, true emotion {truth}" if truth else label


def render_clip_result(result: ClipResult, key: str) -> None:
    """A clip's details under its label (``clip_label``): the probabilities, waveform, spectrogram,
    and a timeline when the speech is long enough for one (else a caption says why not); ``key``
    tells the charts of one clip from another's."""
    prediction = result.prediction
    if prediction.normalised_by:
        st.caption(f"Speaker normalisation: {md(prediction.normalised_by)}")
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
    note = f", {pauses} without speech and left out of the clip's emotion" if pauses else ""
    st.caption(f"Emotion over time ({len(timeline.starts_s)} windows of {timeline.window_s:g} s{note})")
    st.plotly_chart(timeline_figure(timeline, end_s=result.duration_s), key=f"timeline-{key}")
    st.download_button(
        "Download the timeline (CSV)", timeline_csv(timeline), f"{Path(result.name).stem}-timeline.csv",
        mime="text/csv", key=f"timeline-csv-{key}",
    )  # fmt: skip
