"""SER Studio entry point: page config, navigation, and the sidebar (active model, corpus)."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="SER Studio", page_icon=":studio_microphone:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/explore.py", title="Explore", icon=":material/query_stats:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/classify.py", title="Classify", icon=":material/graphic_eq:", default=True),
        st.Page("pages/live.py", title="Live", icon=":material/mic:"),
    ]
)

from ser.ui import sidebar_corpus, sidebar_model_status  # noqa: E402  (after set_page_config)

sidebar_model_status()
sidebar_corpus()
page.run()
