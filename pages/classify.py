"""Classify: upload clips or record one, and see the predicted emotion of each."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ser.audio import format_duration
from ser.config import AUDIO_EXTENSIONS, AudioConfig
from ser.errors import SERError
from ser.ui import (
    active_bundle_path,
    cached_classify,
    cached_predictor,
    cached_profile,
    md,
    my_voice,
    render_clip_result,
    through_app_navigation,
)

FORMATS = [ext.lstrip(".") for ext in AUDIO_EXTENSIONS]

through_app_navigation()
st.title("Classify")
path = active_bundle_path()
uploads = st.file_uploader(f"Audio clips ({', '.join(FORMATS)})", type=FORMATS, accept_multiple_files=True)
cap = format_duration(AudioConfig().max_duration_s)
st.caption(
    f"Up to {st.get_option('server.maxUploadSize')} MB per file. Clips longer than the model's window are "
    f"classified window by window, with an emotion timeline; of a recording longer than {cap}, the first {cap}."
)
recording = st.audio_input("…or record one")
clips = [(u.name, u) for u in uploads or []] + ([("recording", recording)] if recording else [])
history = st.session_state.setdefault("classify_history", [])

voice = my_voice(path) if path else ""
one_speaker = path and len(clips) > 1 and cached_predictor(path).takes_profiles
if one_speaker and st.checkbox("These clips are one speaker", help="their speech becomes the speaker's voice profile"):
    try:
        voice = cached_profile(tuple(c.getvalue() for _, c in clips), path, f"{len(clips)} clips marked as one speaker")
    except SERError as e:
        st.error(f"Cannot learn the speaker's voice from these clips: {md(e)}")

if path and clips:
    for i, (name, source) in enumerate(clips):
        try:
            result = cached_classify(name, source.getvalue(), path, voice)
        except SERError as e:
            st.error(f"{md(name)}: {md(e)}")
            continue
        render_clip_result(result, key=str(i))
        row = {"model": Path(path).name, **result.row()}
        if row not in history:
            history.append(row)

if history:
    st.subheader("This session")
    table = pd.DataFrame(history)
    st.dataframe(table, hide_index=True)
    st.download_button("Download CSV", table.to_csv(index=False), "ser-predictions.csv", mime="text/csv")
