"""Streamlit glue: the "my voice" controls. A voice profile built from a few unlabelled
recordings, or loaded from a saved file, kept in this browser session only.
"""

from __future__ import annotations

import streamlit as st

from ser.app.cache import cached_predictor, cached_profile
from ser.app.ui import FORMATS, md
from ser.errors import SERError

PROFILE_KEY = "voice_profile"  # st.session_state: the user's VoiceProfile as JSON ("my voice")


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
            "A few recordings of your voice, no labels, in varied moods if you can (all calm makes your calm your "
            "average), teach the model how you usually sound; later "
            "clips are then heard against that. It stays in this browser session only (the server keeps nothing), "
            "and you can download it and load it again another day."
        )
        _learn_voice(bundle_path)
        _load_voice(predictor.profile_space)
        _show_voice()
    return st.session_state.get(PROFILE_KEY, "")


def _learn_voice(bundle_path: str) -> None:
    recordings = st.file_uploader("Recordings of your voice", type=FORMATS, accept_multiple_files=True,
                                  key="my_voice_clips")  # fmt: skip
    if recordings and st.button("Learn my voice", key="my_voice_learn"):
        clips = tuple(r.getvalue() for r in recordings)
        try:
            st.session_state[PROFILE_KEY], problems = cached_profile(clips, bundle_path, "recordings", "of my voice")
        except SERError as e:
            st.error(f"Cannot learn the voice: {md(e)}")
            return
        for i, problem in problems.items():
            st.warning(f"Left out {md(recordings[i].name)}: {md(problem)}")


def _load_voice(space: str) -> None:
    """A saved profile, checked whole: a damaged, foreign or edited file changes nothing."""
    from ser.voice.profile import VoiceProfile

    saved = st.file_uploader("…or load a saved profile (JSON)", type=["json"], key="my_voice_file")
    if saved is None or st.session_state.get("my_voice_loaded") == saved.file_id:
        return
    st.session_state["my_voice_loaded"] = saved.file_id
    try:
        st.session_state[PROFILE_KEY] = VoiceProfile.from_json(saved.getvalue(), space=space).to_json()
    except SERError as e:
        st.error(f"{md(saved.name)} is not usable, nothing changed: {md(e)}")


def _show_voice() -> None:
    from ser.voice.profile import VoiceProfile

    current = st.session_state.get(PROFILE_KEY, "")
    if not current:
        return
    profile = VoiceProfile.from_json(current)
    st.success(f"Using your voice profile: {md(profile.source)}, {profile.speech_s:.0f} s of speech.")
    st.download_button("Download my voice profile", current, "my-voice-profile.json", mime="application/json")
    if st.button("Forget my voice", key="my_voice_forget"):
        st.session_state.pop(PROFILE_KEY, None)
        st.rerun()
