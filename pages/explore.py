"""Explore: what is in the corpus, how each clip looks and sounds, how the emotions differ."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from ser.app.ui import DEMO_NOTE, load_manifest, md, through_app_navigation
from ser.config import SAMPLE_RATE
from ser.corpora.datasets import is_demo_corpus
from ser.errors import SERError
from ser.viz import corpus as plots_corpus
from ser.viz import explore, plots

STATS_CHUNK = 20  # clips per cached piece of the corpus-wide pass (the progress bar's step)
PLAYERS_PER_ROW = 3  # the One word view's audio players: at ~350 px each they show their time and menu
ALL = "(all)"


@st.cache_data(show_spinner=False, max_entries=8)
def total_duration(paths: tuple) -> tuple[float, list[str]]:
    return explore.total_duration_s(paths)


@st.cache_data(show_spinner=False, max_entries=2000)
def chunk_stats(clips: tuple) -> list[dict]:
    return explore.corpus_stats(clips)


@st.cache_data(show_spinner=False, max_entries=64)
def clip_waveform(path: str):
    from ser.audio.load import load_audio

    return load_audio(path)


@st.cache_data(show_spinner=False, max_entries=64)
def word_figure(takes: tuple[tuple[str, str], ...]):
    """The One word chart of these (emotion, clip path) pairs: seven spectrograms and a figure of
    subplots take 0.2 s, on every visit before it was kept."""
    return plots_corpus.emotion_row_figure({emotion: clip_waveform(path) for emotion, path in takes})


def corpus_stats(clips: list) -> pd.DataFrame:
    """The per-clip statistics, computed once per clip (cached across sessions) with a progress
    bar; the finished table is kept in this session, so a later visit reads one table instead of
    looking up every chunk."""
    measured = st.session_state.setdefault("measured_corpora", {})
    key = hashlib.sha1("\n".join(str(c.path) for c in clips).encode()).hexdigest()
    if key in measured:
        return measured[key]
    bar = st.progress(0.0, text="Measuring every clip (first time only)…")
    rows = []
    for start in range(0, len(clips), STATS_CHUNK):
        rows += chunk_stats(tuple(clips[start : start + STATS_CHUNK]))
        done = min(start + STATS_CHUNK, len(clips))
        bar.progress(done / len(clips), text=f"Measured {done} of {len(clips)} clips")
    bar.empty()
    measured[key] = pd.DataFrame(rows)
    return measured[key]


through_app_navigation()
st.title("Explore")
manifest = load_manifest()
if manifest is None:
    st.stop()
if is_demo_corpus(manifest.root):
    st.info(DEMO_NOTE)

duration_s, header_problems = total_duration(tuple(c.path for c in manifest.clips))
cols = st.columns(4)
cols[0].metric("Clips", len(manifest))
cols[1].metric("Speakers", len(manifest.speakers), help=", ".join(manifest.speakers))
cols[2].metric("Total duration", f"{duration_s / 60:.1f} min")
cols[3].metric("Unmatched files", len(manifest.unmatched))
st.caption(f"{md(manifest.root)} — speakers {', '.join(manifest.speakers)}; corpora {', '.join(manifest.corpora)}")
if manifest.unmatched:
    with st.expander(f"{len(manifest.unmatched)} audio files matched no corpus layout"):
        st.code("\n".join(str(p.relative_to(manifest.root)) for p in manifest.unmatched[:200]))
if header_problems:
    n = len(header_problems)
    st.warning(
        f"{n} {'file is' if n == 1 else 'files are'} left out of the total duration (no length in the header, "
        f"or not readable): {md('; '.join(header_problems[:3]))}"
    )

# One view at a time: each renders only when its tab is open (a later visit draws 1-4 charts, not
# 9), and the open tab is in the address (?view=Clip+browser), so a view can be linked to.
VIEWS = ["Overview", "Clip browser", "One word", "Emotions compared"]
overview, browser, one_word, compared = st.tabs(VIEWS, key="view", bind="query-params")

if overview.open:
    with overview:
        st.subheader("Clips per speaker and emotion")
        # A static table: the interactive grid of st.dataframe is 0.5 MB more of scripts for a new tab to run
        st.table(pd.DataFrame(explore.counts_table(manifest)).T)
        st.plotly_chart(plots_corpus.class_balance_figure(manifest.counts(), manifest.emotions), key="balance")

words = sorted({c.text for c in manifest.clips})
if browser.open:
    with browser:
        cols = st.columns(3)
        speaker = cols[0].selectbox("Speaker", [ALL, *manifest.speakers])
        emotion = cols[1].selectbox("Emotion", [ALL, *manifest.emotions])
        word = cols[2].selectbox("Word", [ALL, *words])
        matching = [
            c
            for c in manifest.clips
            if speaker in (ALL, manifest.speaker_of(c)) and emotion in (ALL, c.emotion) and word in (ALL, c.text)
        ]
        if not matching:
            st.info("No clip matches these filters.")
        else:
            clip = st.selectbox(f"{len(matching)} clips", matching, format_func=lambda c: c.path.name)
            try:
                waveform = clip_waveform(str(clip.path))
            except SERError as e:
                st.error(f"{md(clip.path.name)}: {md(e)}")
            else:
                st.audio(str(clip.path))
                mel, mfcc = plots.spectrogram_figures(waveform)
                st.plotly_chart(plots.waveform_figure(waveform, SAMPLE_RATE), key="browser-wave")
                left, right = st.columns(2)
                left.plotly_chart(mel.update_layout(title="Mel spectrogram"), key="browser-mel")
                right.plotly_chart(mfcc.update_layout(title="MFCC"), key="browser-mfcc")

if one_word.open:
    with one_word:
        cols = st.columns(2)
        same_speaker = cols[0].selectbox("Speaker ", manifest.speakers, key="same_speaker")
        same_word = cols[1].selectbox("Word ", words, key="same_word")
        same: dict[str, list] = {}  # emotion -> its takes of the word (RAVDESS has several)
        for c in manifest.clips:
            if manifest.speaker_of(c) == same_speaker and c.text == same_word:
                same.setdefault(c.emotion, []).append(c)
        if same:
            ordered = sorted(same.items(), key=lambda kv: manifest.emotions.index(kv[0]))
            cells = [cell for _ in range(0, len(ordered), PLAYERS_PER_ROW) for cell in st.columns(PLAYERS_PER_ROW)]
            spectra = {}  # emotion -> the path of its take that decodes
            for col, (emo, takes) in zip(cells, ordered, strict=False):
                col.markdown(f"**{emo}**")
                problems = []
                for clip in takes:  # the first take that decodes; a damaged one is named, not shown
                    try:
                        clip_waveform(str(clip.path))
                    except SERError as e:
                        problems.append(f"{md(clip.path.name)}: {md(e)}")
                        continue
                    spectra[emo] = str(clip.path)
                    col.audio(str(clip.path))
                    break
                for problem in problems:
                    col.error(problem)
            if spectra:  # one chart for all of them: each plotly chart costs the browser its own start-up
                st.plotly_chart(word_figure(tuple(spectra.items())), key="same-word")
        else:
            st.info(f"{same_speaker} has no recording of '{same_word}'.")

if compared.open:
    with compared:
        stats = corpus_stats(manifest.clips)
        failed = stats[stats["error"] != ""]
        if len(failed):
            first = failed.iloc[0]
            st.warning(f"{len(failed)} clips could not be measured, e.g. {first['path']}: {first['error']}")
        rows, emotions = stats.to_dict("records"), manifest.emotions
        cols = st.columns(3)
        for col, (column, title) in zip(
            cols,
            [("speech_s", "speech duration (s)"), ("rms_dbfs", "RMS loudness (dBFS)"), ("f0_hz", "median f0 (Hz)")],
            strict=True,
        ):
            col.plotly_chart(plots_corpus.emotion_box_figure(rows, column, emotions, title=title), key=f"box-{column}")
        mean_mel = explore.mean_mel_per_emotion(rows)
        freqs = explore.mel_frequencies(explore.DISPLAY_FEATURES)
        st.plotly_chart(plots_corpus.mean_spectrum_figure(mean_mel, freqs, emotions), key="mean-mel")
