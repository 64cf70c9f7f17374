"""Streamlit glue: cached loaders and small render helpers shared by the pages.

The only module of ``ser`` that imports Streamlit.
"""

from __future__ import annotations

import streamlit as st

from ser.errors import SERError
from ser.model import active_path, read_card


@st.cache_resource(show_spinner="Loading the model…")
def cached_predictor(path: str):
    """One Predictor per bundle path, shared by every session (read-only)."""
    from ser.predict import Predictor

    return Predictor.from_path(path)


def active_bundle_path() -> str | None:
    """The active bundle's folder, or None (with an st.error) when there is none."""
    try:
        return str(active_path())
    except SERError as e:
        st.error(f"No model to serve: {e}")
        return None


def sidebar_model_status() -> None:
    """Active model name, architecture and its speaker-independent accuracy from the card."""
    with st.sidebar:
        path = active_bundle_path()
        if path is None:
            return
        try:
            card = read_card(path)
        except SERError as e:
            st.error(str(e))
            return
        st.markdown(f"**Model** `{card.get('name', path.rsplit('/', 1)[-1])}`")
        st.caption(f"architecture: {card['architecture']}")
        speaker = card.get("evaluation", {}).get("speaker", {})
        if "accuracy" in speaker:
            st.metric("Speaker-independent accuracy", f"{speaker['accuracy']:.1%}")
