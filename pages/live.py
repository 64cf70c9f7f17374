"""Live: stream the microphone over WebRTC and watch the emotion of the last few seconds."""

from __future__ import annotations

import av
import numpy as np
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from ser.app.cache import cached_predictor
from ser.app.ui import active_bundle_path, through_app_navigation
from ser.audio.load import frame_to_array
from ser.serving.stream import StreamClassifier
from ser.viz.plots import probability_figure, timeline_figure

LEVEL_FLOOR_DBFS = -60.0  # the level meter's empty end
MICROPHONE = {"autoGainControl": False, "noiseSuppression": False, "echoCancellation": False}


def make_callback(classifier: StreamClassifier):
    """The frame callback: runs on the WebRTC thread, so it only feeds the classifier's buffer."""

    def on_frame(frame: av.AudioFrame) -> av.AudioFrame:
        classifier.push(frame_to_array(frame), frame.sample_rate)
        return frame

    return on_frame


through_app_navigation()
st.title("Live")
path = active_bundle_path()
if path is None:
    st.stop()
predictor = cached_predictor(path)
if getattr(st.session_state.get("live_classifier"), "predictor", None) is not predictor:
    st.session_state["live_classifier"] = StreamClassifier(predictor)
classifier: StreamClassifier = st.session_state["live_classifier"]

st.caption(f"Model {predictor.bundle.name}: the last {predictor.feature_config.window_s:g} s are classified.")
context = webrtc_streamer(
    key="live",
    mode=WebRtcMode.SENDONLY,
    audio_frame_callback=make_callback(classifier),
    # The upload path has no automatic gain, noise suppression or echo cancellation; nor may the
    # microphone, or a quiet sad passage arrives pumped up and reads as anger.
    media_stream_constraints={"audio": MICROPHONE, "video": False},
    rtc_configuration={"iceServers": []},  # localhost needs no STUN server
)


@st.fragment(run_every=0.5)
def live_panel() -> None:
    voice = classifier.voice_text()
    if not context.state.playing:
        if st.session_state.pop("live_was_playing", False):
            classifier.reset()  # stopped: nothing stale on screen, and the next stream starts afresh
        st.progress(0.0, text="microphone off")
        st.info("Press START and allow the microphone.")
        if voice:
            st.caption(f"Voice profile: {voice}")
        return
    st.session_state["live_was_playing"] = True
    if voice:
        st.caption(f"Voice profile: {voice}")
    level = classifier.level_dbfs()
    fill = float(np.clip((level - LEVEL_FLOOR_DBFS) / -LEVEL_FLOOR_DBFS, 0.0, 1.0))
    st.progress(fill, text=f"input level {level:.0f} dBFS")
    prediction = classifier.readout()
    if prediction is None:
        st.info(classifier.waiting)
    else:
        st.subheader(f"{prediction.label} ({prediction.confidence:.0%})")
        st.plotly_chart(probability_figure(prediction.probabilities), key="live-probs")
    recent = classifier.recent()
    if recent is not None:
        st.caption(f"The last {classifier.history_s:g} s, a readout every half second")
        st.plotly_chart(timeline_figure(recent, at_end=True, last_s=classifier.history_s), key="live-recent")


live_panel()
