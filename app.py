"""SER Studio entry point: page config, navigation, and the sidebar's model status."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="SER Studio", page_icon=":studio_microphone:", layout="wide")

page = st.navigation([st.Page("pages/classify.py", title="Classify", icon=":material/graphic_eq:", default=True)])

from ser.ui import sidebar_model_status  # noqa: E402  (after set_page_config)

sidebar_model_status()
page.run()
