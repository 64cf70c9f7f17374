"""SER Studio entry point: page config, navigation, and the sidebar (active model, corpus).

Every page has its own address: /explore, /train, /classify, /live; the root (/) opens
/classify, and an address no page has shows where the pages are.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="SER Studio", page_icon=":studio_microphone:", layout="wide")

from ser.app.ui import (  # noqa: E402  (after set_page_config)
    redirect_page,
    sidebar_corpus,
    sidebar_model_status,
    unknown_address_pages,
)

PAGES = [
    st.Page("pages/explore.py", title="Explore", icon=":material/query_stats:", url_path="explore"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/classify.py", title="Classify", icon=":material/graphic_eq:", url_path="classify"),
    st.Page("pages/live.py", title="Live", icon=":material/mic:", url_path="live"),
]
page = st.navigation([redirect_page(PAGES[2]), *PAGES, *unknown_address_pages(PAGES)])
sidebar_model_status()
sidebar_corpus()
page.run()
