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
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"  # one RAVDESS clip per emotion
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


def _voice(card) -> str:
    """Whom a card's speaker-independent score is about: TESS is two actresses, one scored by a
    model trained on the other; the demo corpus is laid out as TESS but its voices are synthetic."""
    if Path(str(card.data.get("root", ""))).name == DEMO_CORPUS.name:
        return "a synthetic voice"
    return "an actress" if card.data.get("corpora") == ["tess"] else "voices"


def headline_title(card, protocol: str) -> str:
    """What a card's headline accuracy measures, in a user's words."""
    if protocol == "speaker-adapted":
        return f"Accuracy on {(card.adaptation or {}).get('speaker', '?')}, adapted"
    return {
        "corpus": "Accuracy on corpora it never heard",
        "speaker": f"Accuracy on {_voice(card)} it never heard",
    }.get(protocol, f"Accuracy ({protocol})")


def headline_caption(card, protocol: str) -> str:
    """Where and how the headline was measured: "TESS, leave one speaker out: ..."."""
    from ser.layouts import LAYOUTS
    from ser.splits import N_SPEAKER_FOLDS

    data = card.data
    names = {layout.lower(): layout for layout in LAYOUTS}  # "emodb" -> "EmoDB"
    corpora = ", ".join(names.get(c, c) for c in data.get("corpora", [])) or "its corpus"
    if Path(str(data.get("root", ""))).name == DEMO_CORPUS.name:
        corpora = "the demo corpus"
    speakers = data.get("speakers", [])
    if protocol == "speaker" and 0 < len(speakers) < N_SPEAKER_FOLDS:
        who = f"each of its {len(speakers)} speakers"
        return f"{corpora}, leave one speaker out: {who} scored by a model trained without them"
    if protocol == "speaker":
        return f"{corpora}, held-out speakers: each speaker scored by a model trained without them"
    if protocol == "corpus":
        return f"{corpora}, leave one corpus out: each corpus scored by a model trained on the others"
    if protocol == "speaker-adapted":
        speaker = (card.adaptation or {}).get("speaker", "?")
        return f"on {speaker}'s own held-out clips, after adapting to {speaker}'s voice"
    return f"{corpora}, {protocol} split"


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


def is_demo_corpus(path: str | Path) -> bool:
    return Path(path).expanduser().resolve() == DEMO_CORPUS.resolve()


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
    on = bool(st.session_state.get(PROFILE_KEY))
    if not st.toggle("My voice: a profile for your single clips", value=on, key="my_voice_open"):
        return st.session_state.get(PROFILE_KEY, "")  # closed: its controls are not drawn
    with st.container(border=True):
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


@st.cache_data(show_spinner=False)
def example_clips() -> dict[str, str]:
    """The bundled example clips (assets/examples, RAVDESS names) by their true emotion, in the
    model's emotion order: {"neutral": path, ...}; {} when the folder is missing."""
    from ser.config import EMOTIONS
    from ser.datasets import discover

    try:
        clips = {c.emotion: str(c.path) for c in discover(EXAMPLES_DIR).clips}
    except SERError:
        return {}
    return {emotion: clips[emotion] for emotion in EMOTIONS if emotion in clips}


def timeline_csv(timeline) -> str:
    """A timeline's windows as CSV text (ser.predict.Timeline.rows)."""
    import pandas as pd

    return pd.DataFrame(timeline.rows()).to_csv(index=False)


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
