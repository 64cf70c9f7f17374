"""Classify: upload clips or record one, and see the predicted emotion."""

from __future__ import annotations

import streamlit as st

from ser.errors import SERError
from ser.ui import active_bundle_path, cached_predictor

st.title("Classify")
path = active_bundle_path()
uploads = st.file_uploader("Audio clips (wav, flac, ogg, mp3, m4a, webm)", accept_multiple_files=True)
recording = st.audio_input("…or record one")
clips = list(uploads or []) + ([recording] if recording else [])
if path and clips:
    predictor = cached_predictor(path)
    for clip in clips:
        try:
            result = predictor.predict_file(clip)
        except SERError as e:
            st.error(f"{clip.name}: {e}")
            continue
        st.subheader(f"{clip.name}: {result.label} ({result.confidence:.0%})")
        st.bar_chart(result.probabilities)
