"""Every page renders on the demo corpus; training through the job manager shows its metrics."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from ser.config import AUDIO_EXTENSIONS, EMOTIONS, TrainConfig
from ser.errors import SERError
from tests.conftest import BUNDLED_SVM, DEMO_DIR, ROOT, tiny_manifest

APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny model trained through the job manager in a private models folder, made active."""
    from ser.app.jobs import JOB
    from ser.store.registry import set_active

    models_dir = tmp_path_factory.mktemp("models")
    saved = {k: os.environ.get(k) for k in ("SER_MODELS_DIR", "SER_DATA_DIR")}
    os.environ["SER_MODELS_DIR"] = str(models_dir)
    os.environ.pop("SER_DATA_DIR", None)
    name = JOB.start(tiny_manifest(), split="speaker", config=TrainConfig(epochs=2, batch_size=16), name="tiny-job")
    state = JOB.wait(timeout=120)
    assert state.status == "done", state.error
    set_active(name, models_dir)
    yield state
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def page(path: str | None = None, **state) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    if path is not None:
        app.switch_page(path).run()
    assert not app.exception, app.exception
    return app


def test_the_sidebar_paints_without_tensorflow():
    code = "import sys, ser.app.ui; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_classify_is_the_default_page_and_the_sidebar_shows_the_model(served):
    app = page()
    assert [t.value for t in app.title] == ["Classify"]
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "tiny-job" in sidebar
    assert app.sidebar.text_input[0].value == str(DEMO_DIR)
    captions = [c.value for c in app.sidebar.caption]
    # what the accuracy measures: tiny-job is scored on the demo corpus' voices, one left out at a time
    assert app.sidebar.metric[0].label == "Accuracy on a synthetic voice it never heard"
    assert "the demo corpus, leave one speaker out: each of its 2 speakers scored by a model trained" in captions[1]
    assert any(c.startswith("Using the bundled demo corpus: synthetic voices") for c in captions)
    assert "not a test of the model" in " ".join(captions)


def explore_view(view: str) -> AppTest:
    """The Explore page with one of its tabs open (only the open tab's content runs)."""
    app = page("pages/explore.py")
    app.session_state["view"] = view
    app.run()
    assert not app.exception, app.exception
    return app


def test_explore_counts_the_demo_corpus(served):
    app = page("pages/explore.py")
    assert any("synthetic voices" in i.value and "not a test of the model" in i.value for i in app.info)
    assert [t.label for t in app.tabs] == ["Overview", "Clip browser", "One word", "Emotions compared"]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Clips"] == "560" and metrics["Speakers"] == "4" and metrics["Unmatched files"] == "0"
    assert "EF1, EF2, EM1, EM2" in " ".join(c.value for c in app.caption)
    counts = app.table[0].value
    assert counts.loc["total", "total"] == 560 and counts.loc["EM2", "angry"] == 20
    # The overview draws the class balance and nothing of the other tabs.
    assert [json.loads(c.proto.spec)["data"][0]["type"] for c in app.get("plotly_chart")] == ["bar"]


def test_an_edited_corpus_is_seen_without_a_restart(served, tmp_path, monkeypatch):
    """Discovery was cached by path alone: a corrected CSV, or clips added to the folder, kept
    showing (and training on) the list of the first visit until the server restarted."""
    clips = tiny_manifest(n_words=1).clips
    manifest = tmp_path / "corpus.csv"
    manifest.write_text("path,emotion\n" + "".join(f"{c.path},{c.emotion}\n" for c in clips[:7]))
    monkeypatch.setenv("SER_DATA_DIR", str(manifest))
    app = page("pages/explore.py")
    assert {m.label: m.value for m in app.metric}["Clips"] == "7"
    manifest.write_text("path,emotion,speaker\n" + "".join(f"{c.path},{c.emotion},{c.speaker}\n" for c in clips))
    app.run()
    assert {m.label: m.value for m in app.metric}["Clips"] == "14"
    assert {m.label: m.value for m in app.metric}["Speakers"] == "2"

    folder = tmp_path / "folder"
    (folder / "more").mkdir(parents=True)
    (folder / clips[0].path.name).symlink_to(clips[0].path)
    monkeypatch.setenv("SER_DATA_DIR", str(folder))
    app = page("pages/explore.py")
    assert {m.label: m.value for m in app.metric}["Clips"] == "1"
    for clip in clips[1:]:
        (folder / "more" / clip.path.name).symlink_to(clip.path)
    app.run()
    assert {m.label: m.value for m in app.metric}["Clips"] == "14"
    assert not app.exception and not app.error


@pytest.mark.parametrize(("view", "n_charts"), [("Clip browser", 3), ("One word", 1)])
def test_each_explore_view_draws_only_its_own_charts(served, view, n_charts):
    app = explore_view(view)
    assert len(app.get("plotly_chart")) == n_charts
    assert not app.error and not app.table  # the overview's table is not sent


def test_one_word_gives_each_player_room_for_its_time_and_menu(served):
    """Seven players side by side were squeezed: their time hidden, their menu clipped."""
    app = explore_view("One word")
    players = [c for c in app.columns if c.get("audio")]
    assert len(players) == 7 and all(c.weight == pytest.approx(1 / 3) for c in players)


def test_one_word_builds_its_chart_once_for_later_visits(served, monkeypatch):
    """Seven spectrograms in a figure of subplots took 0.2 s on every visit of the view."""
    from ser.viz import corpus as plots_corpus

    calls = []
    build = plots_corpus.emotion_row_figure

    def counted(spectra):
        calls.append(list(spectra))
        return build(spectra)

    monkeypatch.setattr(plots_corpus, "emotion_row_figure", counted)
    import streamlit as st

    st.cache_data.clear()  # an earlier test may have built it already
    for _ in range(2):
        app = explore_view("One word")
        assert len(app.get("plotly_chart")) == 1 and not app.error
    assert len(calls) == 1


def test_explore_measures_a_small_corpus(served, tmp_path, monkeypatch):
    for clip in tiny_manifest(n_words=1).clips:
        (tmp_path / clip.path.name).symlink_to(clip.path)
    monkeypatch.setenv("SER_DATA_DIR", str(tmp_path))
    app = explore_view("Emotions compared")
    assert {m.label: m.value for m in app.metric}["Clips"] == "14"
    assert len(app.get("plotly_chart")) == 4  # duration, loudness and pitch boxes, the mean spectra
    assert not app.error and not app.warning
    assert "From $SER_DATA_DIR." in [c.value for c in app.sidebar.caption]


def test_train_page_shows_the_finished_run(served):
    app = page("pages/train.py")
    text = " ".join(m.label for m in app.metric)
    assert "Accuracy (speaker-independent" in text and "Macro-F1" in text
    assert any("Saved" in s.value for s in app.success)
    assert any(e.label.startswith("tiny-job  (active)") for e in app.expander)
    assert any(c.value == "tiny-job is the active model." for c in app.caption)
    assert not any(b.label == "Make tiny-job the active model" for b in app.button)  # it already is
    assert not app.error


def test_the_finished_run_is_offered_as_the_active_model_while_another_is(served):
    """The button itself is clicked in tests/test_browser.py: AppTest does not click inside a fragment."""
    from ser.store.registry import set_active

    models_dir = Path(os.environ["SER_MODELS_DIR"])
    shutil.copytree(ROOT / "models" / "cnn-tess-v1", models_dir / "other")
    try:
        set_active("other", models_dir)
        app = page("pages/train.py")
        assert any(b.label == "Make tiny-job the active model" for b in app.button)
        assert not app.error
    finally:
        set_active("tiny-job", models_dir)
        shutil.rmtree(models_dir / "other")


def test_the_job_log_tells_the_folds_apart(served):
    from ser.viz.plots import history_figure

    # Two speakers: two speaker-independent fits, each with its own epochs.
    assert [(e.fold_index, e.n_folds, e.epoch) for e in served.logs] == [(1, 2, 1), (1, 2, 2), (2, 2, 1), (2, 2, 2)]
    assert served.logs[0].fold == "speaker-independent: train EM1, test EF1"
    assert served.logs[0].fold != served.logs[-1].fold
    figure = history_figure(served.logs, "loss")
    assert len(figure.data) == 4  # train and validation curves for each fit
    assert list(figure.data[2].x) == [1, 2] and figure.data[2].name == "train"
    assert figure.data[2].legendgrouptitle.text == "train EF1, test EM1" != figure.data[0].legendgrouptitle.text
    assert figure.layout.xaxis.dtick == 1  # whole epochs, not 1.2, 1.4, ...
    assert figure.layout.legend.orientation != "h"  # beside the chart, not over the epoch axis title


def test_train_page_reports_broken_bundles(served, tmp_path):
    from pathlib import Path

    broken = Path(os.environ["SER_MODELS_DIR"]) / "broken"
    broken.mkdir()
    try:
        app = page("pages/train.py")
        assert any("broken" in e.value for e in app.error)
    finally:
        broken.rmdir()


def test_classify_accepts_every_format_the_library_decodes(served):
    (uploader,) = page().get("file_uploader")  # it let wav through but not aiff, opus or aac
    assert sorted(uploader.proto.type) == sorted(AUDIO_EXTENSIONS)


def test_classify_helpers_on_real_clips(served):
    from ser.app.results import classify_source
    from ser.serving.predict import Predictor

    predictor = Predictor.from_path(served.path)
    clips = tiny_manifest(n_words=3).clips
    result = classify_source("clip.ogg", clips[0].path, predictor)
    assert result.prediction.label in predictor.labels and result.timeline is None
    assert result.row()["emotion"] == result.prediction.label

    long = np.concatenate([sf.read(c.path, dtype="float32")[0] for c in clips[:6]])
    buffer = io.BytesIO()
    sf.write(buffer, long, 16_000, format="WAV")
    result = classify_source("long.wav", buffer.getvalue(), predictor)
    assert result.timeline is not None and len(result.timeline.starts_s) > 1

    with pytest.raises(SERError):
        classify_source("bad.wav", b"RIFF not really", predictor)


def classify_like_the_page(clip_path: str, bundle_path: str) -> None:
    from pathlib import Path

    import streamlit as st

    from ser.app.cache import cached_classify
    from ser.app.ui import clip_label, render_clip_result
    from ser.errors import SERError

    uploads = [("bad.wav", b"RIFF junk"), ("good.ogg", Path(clip_path).read_bytes())]
    for i, (name, data) in enumerate(uploads):
        try:
            result = cached_classify(name, data, bundle_path)
        except SERError as e:
            st.error(f"{name}: {e}")
            continue
        with st.expander(clip_label(result), expanded=True):
            render_clip_result(result, key=str(i))


def classify_a_recording_with_a_pause(clip_path: str, bundle_path: str) -> None:
    import io
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from ser.app.cache import cached_classify
    from ser.app.ui import render_clip_result

    speech = np.tile(sf.read(Path(clip_path), dtype="float32")[0], 3)
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate([speech, np.zeros(10 * 16_000, np.float32), speech]), 16_000, format="WAV")
    render_clip_result(cached_classify("pause.wav", buffer.getvalue(), bundle_path), key="0")


def classify_a_short_clip(clip_path: str, bundle_path: str) -> None:
    import io
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from ser.app.cache import cached_classify
    from ser.app.ui import render_clip_result

    speech = np.tile(sf.read(Path(clip_path), dtype="float32")[0], 3)[: int(3.6 * 16_000)]
    buffer = io.BytesIO()
    sf.write(buffer, speech, 16_000, format="WAV")
    render_clip_result(cached_classify("short.wav", buffer.getvalue(), bundle_path), key="0")


def test_a_clip_too_short_for_a_timeline_says_so_instead_of_drawing_a_spike(served):
    """A 3.2 s clip made two windows 0.2 s apart, drawn as a "timeline" spike."""
    clip = tiny_manifest(n_words=1).clips[0]
    app = AppTest.from_function(classify_a_short_clip, args=(str(clip.path), served.path))
    app.run(timeout=60)
    assert not app.exception and not app.error
    (caption,) = [c.value for c in app.caption if c.value.startswith("No emotion timeline: ")]
    assert "make 2 overlapping 3 s windows" in caption and "it takes 9 s of speech" in caption
    assert len(app.get("plotly_chart")) == 3 and not app.get("download_button")  # probabilities, waveform, mel


def test_a_pause_in_an_upload_is_shown_as_a_pause(served):
    clip = tiny_manifest(n_words=1).clips[0]
    app = AppTest.from_function(classify_a_recording_with_a_pause, args=(str(clip.path), served.path))
    app.run(timeout=60)
    assert not app.exception and not app.error
    (caption,) = [c.value for c in app.caption if c.value.startswith("Emotion over time")]
    assert "without speech and left out of the clip's emotion" in caption
    names = [trace["name"] for trace in json.loads(app.get("plotly_chart")[-1].proto.spec)["data"]]
    assert names[-1] == "no speech"
    (download,) = app.get("download_button")
    assert download.proto.label == "Download the timeline (CSV)"


def test_timeline_csv_has_a_row_per_window_with_pauses(served):
    import csv

    from ser.app.results import timeline_csv
    from ser.models.bundle import load_bundle
    from ser.serving.predict import Predictor

    speech = np.tile(sf.read(tiny_manifest(n_words=1).clips[0].path, dtype="float32")[0], 3)
    long = np.concatenate([speech, np.zeros(10 * 16_000, np.float32), speech])
    _, timeline = Predictor(load_bundle(served.path)).analyse(long)
    rows = list(csv.DictReader(io.StringIO(timeline_csv(timeline))))
    assert len(rows) == len(timeline.starts_s)
    assert list(rows[0])[:3] == ["start_s", "end_s", "emotion"] and list(rows[0])[3:] == timeline.labels
    assert [r["emotion"] for r in rows] == timeline.winners and "no speech" in timeline.winners


def test_a_bad_upload_shows_an_error_and_the_others_still_get_results(served):
    clip = tiny_manifest(n_words=1).clips[0]
    app = AppTest.from_function(classify_like_the_page, args=(str(clip.path), served.path), default_timeout=60)
    app.run()
    assert not app.exception
    assert len(app.error) == 1 and app.error[0].value.startswith("bad.wav: ")
    assert len(app.expander) == 1 and app.expander[0].label.startswith("good.ogg: ")
    assert "%" in app.expander[0].label


def test_live_page_renders_and_its_callback_feeds_the_classifier(served, monkeypatch):
    """webrtc_streamer needs a real Streamlit server (AppTest's runtime is a mock), so a stand-in
    records what the page asks for; the page's frame callback is then fed real frames."""
    import types

    import streamlit_webrtc

    calls = []

    def fake_streamer(**kwargs):
        calls.append(kwargs)
        return types.SimpleNamespace(state=types.SimpleNamespace(playing=True))

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake_streamer)
    app = page("pages/live.py")
    assert [t.value for t in app.title] == ["Live"]
    (kwargs,) = calls
    assert kwargs["mode"] == streamlit_webrtc.WebRtcMode.SENDONLY
    assert kwargs["rtc_configuration"] == {"iceServers": []}
    # The microphone as it is, like an upload: no automatic gain, noise suppression or echo cancellation.
    off = {"autoGainControl": False, "noiseSuppression": False, "echoCancellation": False}
    assert kwargs["media_stream_constraints"] == {"audio": off, "video": False}

    # 2 s of speech as 20 ms stereo s16 frames at 48 kHz, the way a browser sends them.
    clip = tiny_manifest(n_words=1).clips[0]
    speech = sf.read(clip.path, dtype="float32")[0]
    from ser.audio.load import resample

    speech = resample(speech, 16_000, 48_000)
    classifier = app.session_state["live_classifier"]
    for start in range(0, len(speech) - 960, 960):
        block = (speech[start : start + 960] * 32767).astype(np.int16)
        packed = np.repeat(block, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(packed, format="s16", layout="stereo")
        frame.sample_rate = 48_000
        assert kwargs["audio_frame_callback"](frame) is frame
    assert classifier.level_dbfs() > -60
    assert classifier.latest() is not None
    app.run()
    assert not app.exception
    assert app.subheader and "%" in app.subheader[0].value
    app.run()  # a second readout: the last minute's chart appears under the bars
    assert not app.exception
    names = [trace["name"] for trace in json.loads(app.get("plotly_chart")[-1].proto.spec)["data"]]
    assert names == classifier.predictor.labels
    assert any(c.value.startswith("The last 60 s") for c in app.caption)


@pytest.mark.parametrize("layout,fmt", [("stereo", "s16"), ("mono", "s16"), ("stereo", "fltp")])
def test_frame_to_array_gives_samples_by_channels(layout, fmt):
    from ser.audio.load import frame_to_array

    n, n_channels = 960, 2 if layout == "stereo" else 1
    samples = np.arange(n * n_channels).reshape(n, n_channels)
    # packed: one interleaved row; planar: one row per channel
    data = samples.astype(np.int16).reshape(1, -1) if fmt == "s16" else np.ascontiguousarray(samples.T, np.float32)
    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
    np.testing.assert_array_equal(frame_to_array(frame), samples)


def test_a_recording_past_the_cap_is_classified_over_its_first_part(served):
    from ser.app.results import classify_source
    from ser.config import AudioConfig
    from ser.models.bundle import load_bundle
    from ser.serving.predict import Predictor

    predictor = Predictor(load_bundle(served.path))
    predictor.audio_config = AudioConfig(max_duration_s=4.0)
    clips = tiny_manifest(n_words=3).clips
    long = np.concatenate([sf.read(c.path, dtype="float32")[0] for c in clips[:8]])  # 9.6 s
    buffer = io.BytesIO()
    sf.write(buffer, long, 16_000, format="WAV")
    result = classify_source("long.wav", buffer.getvalue(), predictor)
    assert result.duration_s == 4.0 and result.timeline is not None
    assert result.waveform_chart.data[0].x[-1] < 4.0 <= result.waveform_chart.data[0].x[-1] + 0.01
    assert result.note == "only the first 4.00 s of this 9.60 s recording was classified"


def test_a_cached_result_keeps_charts_not_the_audio(served):
    """Every upload's result stays in the page's cache: five minutes of audio (19 MB as float32)
    must not be kept with it, only its charts."""
    import pickle

    from ser.app.results import classify_source
    from ser.models.bundle import load_bundle
    from ser.serving.predict import Predictor

    clips = tiny_manifest(n_words=3).clips
    speech = np.concatenate([sf.read(c.path, dtype="float32")[0] for c in clips[:8]])
    five_minutes = np.tile(speech, math.ceil(300 * 16_000 / len(speech)))[: 300 * 16_000]
    buffer = io.BytesIO()
    sf.write(buffer, five_minutes, 16_000, format="WAV")
    result = classify_source("long.wav", buffer.getvalue(), Predictor(load_bundle(served.path)))
    assert result.duration_s == 300.0 and len(result.timeline.starts_s) > 100
    assert len(pickle.dumps(result)) < five_minutes.nbytes / 10


def render_markdown_of(name: str) -> None:
    import streamlit as st

    from ser.app.ui import md

    st.error(f"{md(name)}: could not be decoded")


@pytest.mark.parametrize("name", ["*draft*_[1](http://x).wav", "<img src=x onerror=alert(1)>.wav", "# $x$ | `a`.wav"])
def test_user_text_is_shown_literally(name):

    from markdown_it import MarkdownIt

    app = AppTest.from_function(render_markdown_of, args=(name,)).run()
    html = MarkdownIt("commonmark").render(app.error[0].value)
    assert (
        html == f"<p>{name.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}: could not be decoded</p>\n"
    )


def ravdess_and_csv_corpora(root):
    """Demo-corpus audio laid out as RAVDESS (with a calm clip, outside the 7 classes, and a file
    that is not audio) and as a CSV manifest without speakers."""
    clips = tiny_manifest(n_words=2).clips
    codes = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05", "fear": "06", "disgust": "07"}
    ravdess = root / "ravdess"
    actors = {s: i + 1 for i, s in enumerate(sorted({c.speaker for c in clips}))}
    statements = {w: i + 1 for i, w in enumerate(sorted({c.text for c in clips}))}
    for clip in (c for c in clips if c.emotion in codes):
        actor, statement = actors[clip.speaker], statements[clip.text]
        name = f"03-01-{codes[clip.emotion]}-01-{statement:02d}-01-{actor:02d}.wav"
        target = ravdess / f"Actor_{actor:02d}" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(clip.path)
    (ravdess / "Actor_01" / "03-01-02-01-01-01-01.wav").symlink_to(clips[0].path)  # calm
    (ravdess / "Actor_02" / "03-01-05-02-02-02-02.wav").write_bytes(b"not audio at all" * 100)
    listed = root / "listed"
    listed.mkdir()
    rows = [f"{c.path},{c.emotion}" for c in clips[:8]]
    (listed / "labels.csv").write_text("path,emotion\n" + "\n".join(rows) + "\n")
    return ravdess, listed / "labels.csv"


@pytest.mark.parametrize("view", ["Overview", "Clip browser", "One word", "Emotions compared"])
def test_every_explore_view_on_other_layouts_and_a_damaged_file(served, tmp_path, monkeypatch, view):
    ravdess, csv_path = ravdess_and_csv_corpora(tmp_path)
    for corpus in (ravdess, csv_path):
        monkeypatch.setenv("SER_DATA_DIR", str(corpus))
        app = explore_view(view)
        assert len(app.get("plotly_chart")) >= 1, (corpus, view)
    # The damaged RAVDESS file is named where it shows: as a clip that could not be measured.
    monkeypatch.setenv("SER_DATA_DIR", str(ravdess))
    app = explore_view(view)
    if view == "Emotions compared":
        assert any("could not be measured" in w.value and "03-01-05-02-02-02-02" in w.value for w in app.warning)


def test_one_word_shows_a_take_that_plays_when_another_is_damaged(served, tmp_path, monkeypatch):
    """A02 says statement 02 angrily twice (RAVDESS intensities 01 and 02); the second file is damaged.
    The view shows the good take and draws every emotion, rather than an error for angry."""
    ravdess, _ = ravdess_and_csv_corpora(tmp_path)
    monkeypatch.setenv("SER_DATA_DIR", str(ravdess))
    app = page("pages/explore.py")
    app.session_state["view"] = "One word"
    app.session_state["same_speaker"] = "A02"
    app.session_state["same_word"] = "02"
    app.run()
    assert not app.exception and not app.error
    (row,) = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    assert "angry" in [a["text"] for a in row["layout"]["annotations"]]


def test_train_page_adapts_the_active_model_to_a_speaker_in_the_background(served):
    from ser.app.jobs import JOB
    from ser.store.registry import active_name, models_folder

    # The page's own file: AppTest drops a button's click in a run through st.navigation.
    app = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60).run()
    app.selectbox(key="adapt_speaker").set_value("EF1")
    app.number_input(key="adapt_shots").set_value(2)
    assert app.button(key="adapt").label == "Adapt to EF1"
    app.button(key="adapt").click().run()
    state = JOB.wait(timeout=180)
    assert state.kind == "adapt" and state.status == "done", state.error
    assert state.steps_done == state.steps_total > 0
    adaptation = state.card.adaptation
    assert (adaptation["base_model"], adaptation["speaker"], adaptation["shots"]) == ("tiny-job", "EF1", 2)
    assert adaptation["after"]["n_clips"] == 18 * 7  # 20 words of EF1 in 7 emotions, minus the 2 adapted on

    app = page("pages/train.py")
    assert not app.error
    metric = next(m for m in app.metric if m.label == "Accuracy on the speaker's held-out clips")
    assert metric.value == f"{adaptation['after']['accuracy']:.1%}"
    assert f"(before: {adaptation['before']['accuracy']:.1%})" in metric.delta
    assert any(b.label == f"Make {state.name} the active model" for b in app.button)
    assert any(e.label.startswith(f"{state.name} — cnn, adapted to EF1: ") for e in app.expander)
    assert active_name(models_folder()) == "tiny-job"  # adapting never changes what is served


def test_train_page_adapts_without_labels(served):
    from ser.app.jobs import JOB

    app = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60).run()
    app.selectbox(key="adapt_speaker").set_value("EM1")
    app.number_input(key="adapt_shots").set_value(0)
    app.button(key="adapt").click().run()
    state = JOB.wait(timeout=180)
    assert state.kind == "adapt" and state.status == "done", state.error
    adaptation = state.card.adaptation
    assert adaptation["shots"] == 0 and adaptation["clips"] == [] and adaptation["method"] == "AdaBN"
    assert adaptation["after"]["n_clips"] == 20 * 7  # every clip of EM1: their audio adapted, their labels score

    app = page("pages/train.py")
    assert not app.error
    metric = next(m for m in app.metric if m.label == "Accuracy on the speaker's clips")
    assert metric.value == f"{adaptation['after']['accuracy']:.1%}"
    assert any("with no labels (AdaBN)" in m.value and "transductive" in m.value for m in app.markdown)


def test_adapting_is_not_offered_as_a_training_protocol(served):
    app = page("pages/train.py")
    assert app.selectbox[1].label == "Evaluation protocol"
    assert app.selectbox[1].options == [
        "speaker-independent (held-out speakers)", "random split (speaker-dependent)", "held-out words",
        "none (every clip trains)",
    ]  # fmt: skip


@pytest.mark.skipif(not BUNDLED_SVM.is_dir(), reason="the bundled speaker-normalised model is not in models/")
def test_live_page_shows_the_voice_profile_learning_from_the_stream(monkeypatch):
    """The profile grows from the stream; the page says how far ("learning your voice: 12 s of 20")."""
    import types

    import streamlit_webrtc

    from ser.app.cache import cached_predictor
    from ser.serving.stream import StreamClassifier

    monkeypatch.setenv("SER_MODELS_DIR", str(BUNDLED_SVM.parent))
    stopped = types.SimpleNamespace(state=types.SimpleNamespace(playing=False))
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", lambda **kwargs: stopped)
    classifier = StreamClassifier(cached_predictor(str(BUNDLED_SVM)))
    speech = np.concatenate([sf.read(c.path, dtype="float32")[0] for c in tiny_manifest(n_words=6).clips[:12]])
    for start in range(0, 12 * 16_000, 8_000):  # 12 s of speech, a readout every half second
        classifier.push(speech[start : start + 8_000], 16_000)
        classifier.readout()
    app = AppTest.from_file(str(ROOT / "pages" / "live.py"), default_timeout=60)
    app.session_state["live_classifier"] = classifier
    app.run()
    assert not app.exception
    (caption,) = [c.value for c in app.caption if c.value.startswith("Voice profile: ")]
    learnt, needed = classifier.voice_state()
    assert 8 <= learnt < needed == 20
    assert caption == f"Voice profile: learning your voice: {learnt:.0f} s of 20 (zero-shot until then)"


def add_bundles(models_dir: Path, names: list[str], *, start: str = "2025-01-01T00:00:00+00:00") -> None:
    """Copies of the bundled model under ``names``, one day apart from ``start`` in the given order."""
    import datetime as dt

    first = dt.datetime.fromisoformat(start)
    for i, name in enumerate(names):
        shutil.copytree(ROOT / "models" / "cnn-tess-v1", models_dir / name)
        card = json.loads((models_dir / name / "card.json").read_text())
        card["created_at"] = (first + dt.timedelta(days=i)).isoformat()
        (models_dir / name / "card.json").write_text(json.dumps(card))


def version_sections(app: AppTest) -> list[str]:
    return [e.label.split(" — ")[0] for e in app.expander if e.label.split(" — ")[0].startswith("v")]


def test_twenty_model_versions_draw_only_the_open_ones_charts_newest_first(served):
    """Every bundle drew its confusion matrices inside its collapsed section: 22 charts, 8-10 s to
    settle in the browser (bench/browser.py train records the figure)."""
    models_dir = Path(os.environ["SER_MODELS_DIR"])
    names = [f"v{i:02d}" for i in range(20)][::-1]  # v19 is the oldest: names and dates disagree
    n_before = len(page("pages/train.py").get("plotly_chart"))  # the finished job's own charts
    add_bundles(models_dir, names)
    try:
        app = page("pages/train.py")
        assert version_sections(app) == names[::-1]  # by "created_at", newest first
        assert len(app.get("plotly_chart")) == n_before
        app = page("pages/train.py", train_open_versions={"v07"})
        # cnn-tess-v1's card: two speaker-independent folds and one random split, a matrix each
        assert len(app.get("plotly_chart")) == n_before + 3
        (v07,) = [e for e in app.expander if e.label.startswith("v07 — ")]
        assert "created 2025-01-13 00:00" in v07.label
        assert [b.label for b in v07.button] == ["Make active", "Delete"]
    finally:
        for name in names:
            shutil.rmtree(models_dir / name)


def test_a_model_version_can_be_deleted_and_the_active_one_only_after_confirming(served):
    from ser.store.registry import active_name, set_active

    models_dir = Path(os.environ["SER_MODELS_DIR"])
    add_bundles(models_dir, ["old-a", "old-b"], start="2020-01-01T00:00:00+00:00")
    try:
        app = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60)
        app.session_state["train_open_versions"] = {"old-a", "old-b"}
        app.run()
        app.button(key="delete-old-a").click().run()
        assert not (models_dir / "old-a").exists()
        assert any(s.value == "Deleted old-a." for s in app.success)
        assert not any(e.label.startswith("old-a") for e in app.expander)

        set_active("old-b", models_dir)
        app.run()  # its section stays open, though its label now says "(active)"
        assert app.button(key="delete-old-b").label == "Delete…"
        app.button(key="delete-old-b").click().run()
        assert (models_dir / "old-b").is_dir() and active_name(models_dir) == "old-b"  # not without a yes
        assert any("is the active model" in w.value for w in app.warning)
        app.button(key="confirm-old-b").click().run()
        assert not (models_dir / "old-b").exists()
        newest = max(
            (json.loads((p / "card.json").read_text())["created_at"], p.name)
            for p in models_dir.iterdir()
            if (p / "card.json").is_file()
        )[1]
        assert active_name(models_dir) == newest
        assert any(f"{newest}, the newest model left, is now the active one" in s.value for s in app.success)
        assert not app.exception
    finally:
        set_active("tiny-job", models_dir)
        for name in ("old-a", "old-b"):
            shutil.rmtree(models_dir / name, ignore_errors=True)


def test_an_svm_run_on_the_train_page_shows_its_fits_not_epochs(served):
    """An SVM has no epochs: the field is off for it, and a running SVM shows its fits and its
    contour networks' progress, then finishes as any run does."""
    from ser.app.jobs import JOB

    app = page("pages/train.py")
    app.selectbox(key="train_arch").set_value("egemaps-svm").run()
    assert app.number_input(key="train_epochs").disabled
    JOB.start(tiny_manifest(), split="speaker", config=TrainConfig(arch="egemaps-svm"), name="svm-run")
    seen, deadline = set(), time.monotonic() + 300
    while JOB.snapshot().running and time.monotonic() < deadline:
        seen.add(JOB.snapshot().progress()[1].split(",")[0])
        app = page("pages/train.py")
        caption = next(c.value for c in app.caption if c.value.startswith("egemaps-svm on"))
        assert "epoch" not in caption
    state = JOB.wait(timeout=300)
    assert state.status == "done", state.error
    assert {"Fit 1 of 2", "Fit 2 of 2"} <= seen
    shutil.rmtree(Path(state.path), ignore_errors=True)


def test_a_running_job_keeps_start_disabled_and_its_settings_and_shows_under_start(served):
    from ser.app.jobs import JOB

    config = TrainConfig(epochs=37, patience=200, batch_size=16)
    JOB.start(tiny_manifest(), split="random", config=config, name="long-run")
    try:
        app = page("pages/train.py")  # a new session: the page opened again while the run goes
        assert app.number_input(key="train_epochs").value == 37
        assert app.selectbox(key="train_split").value == "random"
        assert app.button[0].label == "Start training" and app.button[0].disabled
        assert app.button(key="adapt").disabled
        headings = [n.value for n in app.main if getattr(n, "type", "") in ("header", "subheader")]
        assert headings.index("long-run — running") < headings.index("Adapt to one speaker")
        assert any(b.label == "Stop" for b in app.button)
    finally:
        JOB.stop()
        state = JOB.wait(timeout=120)
    assert state.status == "stopped", state.error
    app = page("pages/train.py")
    assert not app.button[0].disabled


def classify_page() -> AppTest:
    """The Classify page's own file: AppTest drops a button's click in a run through st.navigation."""
    app = AppTest.from_file(str(ROOT / "pages" / "classify.py"), default_timeout=60).run()
    assert not app.exception, app.exception
    return app


def test_try_an_example_classifies_it_beside_its_true_emotion(served):
    app = classify_page()
    assert app.selectbox(key="example_emotion").options == list(EMOTIONS)
    app.selectbox(key="example_emotion").set_value("sad")
    next(b for b in app.button if b.label == "Try an example").click().run()
    assert not app.exception and not app.error
    (section,) = app.expander
    assert re.fullmatch(rf"example-sad\.flac: ({'|'.join(EMOTIONS)}) \(\d+%\), true emotion sad", section.label)
    assert len(app.get("audio")) == 1  # the example's player
    assert len(app.get("plotly_chart")) == 3  # probabilities, waveform, spectrogram
    (row,) = app.dataframe[0].value.to_dict("records")
    assert row["clip"] == "example-sad.flac" and row["true_emotion"] == "sad" and row["model"] == "tiny-job"


def test_many_clips_show_the_table_first_and_only_the_newest_clip_open(served):
    """Nine uploads made a 9,079 px page with the session's table at the bottom."""
    app = classify_page()
    for emotion in EMOTIONS:
        app.selectbox(key="example_emotion").set_value(emotion)
        next(b for b in app.button if b.label == "Try an example").click().run()
    assert not app.exception and not app.error
    order = [n.type for n in app.main if getattr(n, "type", "") in ("subheader", "dataframe", "expander")]
    assert order == ["subheader", "dataframe", *["expander"] * len(EMOTIONS)], order
    assert len(app.dataframe[0].value) == len(EMOTIONS)
    assert len(app.get("plotly_chart")) == 3  # the newest clip's charts; the other sections are closed
    assert app.expander[-1].label.startswith(f"example-{EMOTIONS[-1]}.flac: ")
    assert [len(e.get("plotly_chart")) for e in app.expander] == [0] * (len(EMOTIONS) - 1) + [3]
    # Trying an earlier one again makes it the open one.
    app.selectbox(key="example_emotion").set_value(EMOTIONS[0])
    next(b for b in app.button if b.label == "Try an example").click().run()
    assert [len(e.get("plotly_chart")) for e in app.expander] == [3] + [0] * (len(EMOTIONS) - 1)


def test_the_examples_are_one_voice_in_every_emotion_with_their_licence():
    from ser.app.cache import EXAMPLES_DIR
    from ser.audio.decode import describe
    from ser.audio.load import load_audio
    from ser.corpora.datasets import discover

    clips = discover(EXAMPLES_DIR).clips
    assert sorted(c.emotion for c in clips) == sorted(EMOTIONS)
    assert {c.speaker for c in clips} == {"A16"}  # one RAVDESS actress, left out of the bundled model's training
    assert sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.suffix != ".flac") == ["LICENSE", "README.md"]
    licence = (EXAMPLES_DIR / "LICENSE").read_text()
    assert "CC BY-NC-SA 4.0" in licence and "Livingstone" in licence and "e0196391" in licence
    assert "actor 16" in (EXAMPLES_DIR / "README.md").read_text().lower()
    for clip in clips:
        waveform = load_audio(clip.path)
        assert 3.0 < len(waveform) / 16_000 < 5.0, clip.path.name
        assert describe(clip.path)["sample_rate"] == 16_000
