"""Streamlit glue: the cached loaders. ``st.cache_resource`` for what is shared read-only by
every session (the predictor), ``st.cache_data`` for pure results (a corpus's manifest, a clip's
result, a voice profile, the example clips).

Nothing at import time loads TensorFlow: the predictor is built on first use.
"""

from __future__ import annotations

import streamlit as st

from ser.app.results import ClipResult, classify_source
from ser.config import PROJECT_DIR
from ser.errors import SERError
from ser.process import freeze_long_lived_objects

EXAMPLES_DIR = PROJECT_DIR / "assets" / "examples"  # one RAVDESS clip per emotion


@st.cache_resource(show_spinner="Loading the model…")
def cached_predictor(path: str):
    """One Predictor per bundle path, shared by every session (read-only)."""
    from ser.serving.predict import Predictor

    predictor = Predictor.from_path(path)
    freeze_long_lived_objects()
    return predictor


@st.cache_data(show_spinner="Looking for clips…", max_entries=8)
def cached_manifest(path: str, stamp: tuple = ()):
    """ser.corpora.datasets.discover, cached per path and ``stamp`` (ser.corpora.datasets.corpus_stamp: an edited
    CSV or a file added to the folder is seen, not the list from the first visit). Raises DatasetError."""
    from ser.corpora.datasets import discover

    return discover(path)


@st.cache_data(show_spinner="Classifying…", max_entries=64)
def cached_classify(name: str, data: bytes, bundle_path: str, profile_json: str = "") -> ClipResult:
    """classify_source with the bundle at ``bundle_path`` (and the voice profile ``profile_json``,
    "" for none), cached by the clip's bytes, so that a rerun of the page does not decode and
    classify every upload again. Raises SERError."""
    from ser.voice.profile import VoiceProfile

    predictor = cached_predictor(bundle_path)
    profile = VoiceProfile.from_json(profile_json, space=predictor.profile_space) if profile_json else None
    return classify_source(name, data, predictor, profile)


@st.cache_data(show_spinner="Learning the voice…", max_entries=16)
def cached_profile(clips: tuple[bytes, ...], bundle_path: str, noun: str, what: str) -> tuple[str, dict[int, str]]:
    """The voice profile (JSON) of recordings of one speaker, from those that can be used (its
    source reads "2 of 3 ``noun`` ``what``"), and why each of the others could not be decoded, by
    index. Raises SERError."""
    from ser.serving.predict import one_speaker_profile

    profile, problems = one_speaker_profile(clips, cached_predictor(bundle_path), noun=noun, what=what)
    return profile.to_json(), problems


@st.cache_data(show_spinner=False)
def example_clips() -> dict[str, str]:
    """The bundled example clips (assets/examples, RAVDESS names) by their true emotion, in the
    model's emotion order: {"neutral": path, ...}; {} when the folder is missing."""
    from ser.config import EMOTIONS
    from ser.corpora.datasets import discover

    try:
        clips = {c.emotion: str(c.path) for c in discover(EXAMPLES_DIR).clips}
    except SERError:
        return {}
    return {emotion: clips[emotion] for emotion in EMOTIONS if emotion in clips}
