"""Classify: upload clips, record one or try an example, and see the predicted emotion of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from ser.app.cache import cached_classify, cached_predictor, cached_profile, example_clips
from ser.app.results import smooth_together
from ser.app.ui import active_bundle_path, clip_label, md, render_clip_result, through_app_navigation
from ser.app.voice import my_voice
from ser.config import AUDIO_EXTENSIONS, AudioConfig
from ser.errors import SERError
from ser.units import format_span

FORMATS = [ext.lstrip(".") for ext in AUDIO_EXTENSIONS]
SEEN = "classify_seen"  # session key: every clip's id in the order it first came (the last is the active one)
OPENED = "classify_opened"  # session key: the ids of the clips whose sections the user opened
EXAMPLES = "classify_examples"  # session key: the emotions whose example clips were tried


@dataclass(frozen=True)
class Clip:
    id: str  # the upload's file id, or "example-<emotion>"
    name: str
    source: object  # an UploadedFile or an example's path
    truth: str | None = None  # an example's true emotion

    def data(self) -> bytes:
        return Path(self.source).read_bytes() if isinstance(self.source, str) else self.source.getvalue()


def cap_caption() -> str:
    span = format_span(AudioConfig().max_duration_s)  # "hour"
    longer = {"hour": "an hour", "minute": "a minute"}.get(span, span)
    return (
        f"Up to {st.get_option('server.maxUploadSize')} MB per file. Clips longer than the model's window are "
        f"classified window by window, with an emotion timeline; of a recording longer than {longer}, only "
        f"the first {span} is classified."
    )


def try_example() -> None:
    """The Try button's callback: the chosen emotion's example joins the clips, as the newest."""
    emotion = st.session_state["example_emotion"]
    tried = st.session_state.setdefault(EXAMPLES, [])
    if emotion not in tried:
        tried.append(emotion)
    seen = st.session_state.setdefault(SEEN, [])
    if f"example-{emotion}" in seen:  # tried again: it becomes the active clip again
        seen.remove(f"example-{emotion}")
    seen.append(f"example-{emotion}")


def example_form() -> None:
    examples = example_clips()
    if not examples:
        return
    cols = st.columns([2, 1, 3], vertical_alignment="bottom")
    cols[0].selectbox("…or try an example", list(examples), key="example_emotion")
    cols[1].button("Try an example", on_click=try_example)
    cols[2].caption(
        "One clip per emotion by RAVDESS actress 16 (CC BY-NC-SA 4.0), a voice the bundled model never heard."
    )


def current_clips(uploads, recording) -> list[Clip]:
    clips = [Clip(u.file_id, u.name, u) for u in uploads or []]
    if recording:
        clips.append(Clip(recording.file_id, "recording", recording))
    examples = example_clips()
    for emotion in st.session_state.get(EXAMPLES, []):
        clips.append(Clip(f"example-{emotion}", f"example-{emotion}.flac", examples[emotion], truth=emotion))
    seen = st.session_state.setdefault(SEEN, [])
    seen += [c.id for c in clips if c.id not in seen]
    return clips


def history_row(result, clip: Clip, model: str) -> dict:
    row = result.row()
    first = {"model": model, "clip": row.pop("clip"), "emotion": row.pop("emotion")}
    return {**first, **({"true_emotion": clip.truth} if clip.truth else {}), **row}


def same_clip(a: dict, b: dict) -> bool:
    """Two history rows of one clip answered by one model."""
    return a["model"] == b["model"] and a["clip"] == b["clip"]


def remember_opened(clip_id: str) -> None:
    opened = st.session_state.setdefault(OPENED, set())
    (opened.add if st.session_state[f"clip-{clip_id}"] else opened.discard)(clip_id)


def show_clip(clip: Clip, result, active: str) -> None:
    """One clip in a section of its own, open for the newest clip (and those the user opened);
    a closed one draws nothing."""
    opened = clip.id == active or clip.id in st.session_state.get(OPENED, set())
    section = st.expander(
        clip_label(result, clip.truth), expanded=opened, key=f"clip-{clip.id}", on_change=remember_opened,
        args=(clip.id,),
    )  # fmt: skip
    if not section.open:
        return
    with section:
        if clip.truth:
            st.audio(clip.source)
        render_clip_result(result, key=clip.id)


through_app_navigation()
st.title("Classify")
path = active_bundle_path()
uploads = st.file_uploader(f"Audio clips ({', '.join(FORMATS)})", type=FORMATS, accept_multiple_files=True)
st.caption(cap_caption())
recording = st.audio_input("…or record one")
example_form()
clips = current_clips(uploads, recording)
history = st.session_state.setdefault("classify_history", [])

voice = my_voice(path) if path else ""
one_speaker = path and len(clips) > 1 and cached_predictor(path).takes_profiles
if one_speaker and st.checkbox("These clips are one speaker", help="their speech becomes the speaker's voice profile"):
    try:
        # A clip that cannot be decoded is left out of the profile; its own error shows below.
        voice, _ = cached_profile(tuple(c.data() for c in clips), path, "clips", "marked as one speaker")
    except SERError as e:
        st.error(f"Cannot learn the speaker's voice from these clips: {md(e)}")

results = []
if path:
    for clip in clips:
        try:
            results.append((clip, cached_classify(clip.name, clip.data(), path, voice)))
        except SERError as e:
            st.error(f"{md(clip.name)}: {md(e)}")
    if voice and results:  # the clips are that voice's: their answers lean on each other
        smoothed = smooth_together([r for _, r in results], cached_predictor(path))
        results = [(clip, result) for (clip, _), result in zip(results, smoothed, strict=True)]
    for clip, result in results:
        row = history_row(result, clip, Path(path).name)
        if row not in history:
            history.append(row)
            if voice:  # a clip's smoothed answer moves as clips join: its last answer stands
                history[:] = [r for r in history[:-1] if not same_clip(r, row)] + [row]

if history:  # the summary first; each clip's details below it, the newest open
    st.subheader("This session")
    table = pd.DataFrame(history)
    st.dataframe(table, hide_index=True)
    st.download_button("Download CSV", table.to_csv(index=False), "ser-predictions.csv", mime="text/csv")
if results:
    seen = st.session_state[SEEN]
    active = max((clip.id for clip, _ in results), key=seen.index)
    for clip, result in results:
        show_clip(clip, result, active)
