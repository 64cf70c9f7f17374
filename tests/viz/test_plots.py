"""The figures (ser.viz.plots): what they draw must be what the numbers say (colours, pauses, bins, axes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.config import ALL_EMOTIONS, EMOTIONS, NO_SPEECH
from ser.serving.predict import Timeline
from ser.viz import corpus as plots_corpus
from ser.viz import plots
from ser.viz.explore import DISPLAY_FEATURES, mel_frequencies, spectrograms
from ser.viz.plots import EMOTION_COLOURS, emotion_colour
from tests.conftest import ROOT, tiny_manifest, voiced

LABELS = list(EMOTIONS)
HIGH_AROUSAL, LOW_AROUSAL = ("angry", "fear", "happy", "surprise"), ("sad", "neutral", "boredom", "calm")


def make_timeline(n_windows: int, *, pauses: slice = slice(0, 0), window_s: float = 3.0, seed: int = 0) -> Timeline:
    """Windows every second, mostly disgust (like the hour-long mp3 of issue 12: disgust 61%, fear
    ~0.0006 a window), with the windows of ``pauses`` in a pause."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(len(LABELS)), n_windows) * 0.39
    probabilities[:, LABELS.index("disgust")] += 0.61
    probabilities[:, LABELS.index("disgust")] += probabilities[:, LABELS.index("fear")] - 0.0006
    probabilities[:, LABELS.index("fear")] = 0.0006
    speech = np.ones(n_windows, bool)
    speech[pauses] = False
    return Timeline(np.arange(n_windows, dtype=float), window_s, probabilities, LABELS, speech)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return sf.read(tiny_manifest(n_words=1).clips[0].path, dtype="float32")[0]


def every_figure(speech: np.ndarray) -> dict[str, object]:
    """One figure from every builder in ser.viz.plots and ser.viz.corpus, on small inputs."""
    rows = [
        {"emotion": e, "speech_s": 1.0 + i, "rms_dbfs": -20.0 - i, "f0_hz": float("nan") if i == 2 else 150.0 + i}
        for i, e in enumerate(LABELS)
    ]
    freqs = mel_frequencies(DISPLAY_FEATURES)
    spectra = {e: np.linspace(-60, -20, len(freqs)) for e in LABELS}
    mel, mfcc = plots.spectrogram_figures(np.tile(speech, 3))
    counts = {(s, e): 3 for s in ("EF1", "EM1") for e in LABELS}
    logs = [{"epoch": 1, "loss": 1.0, "val_loss": 1.1}, {"epoch": 2, "loss": 0.9, "val_loss": 1.0}]
    return {
        "probability": plots.probability_figure(dict(zip(LABELS, np.full(7, 1 / 7), strict=True))),
        "waveform": plots.waveform_figure(speech, 16_000),
        "mel": mel,
        "mfcc": mfcc,
        "emotion_row": plots_corpus.emotion_row_figure({e: speech for e in LABELS}),
        "timeline": plots.timeline_figure(make_timeline(40, pauses=slice(10, 20))),
        "live_timeline": plots.timeline_figure(make_timeline(20, pauses=slice(5, 8)), at_end=True, last_s=60),
        "class_balance": plots_corpus.class_balance_figure(counts, LABELS),
        "box": plots_corpus.emotion_box_figure(rows, "f0_hz", LABELS, title="median f0 (Hz)"),
        "mean_spectrum": plots_corpus.mean_spectrum_figure(spectra, freqs, LABELS),
        "history": plots.history_figure(logs, "loss"),
        "confusion": plots.confusion_figure({"labels": LABELS, "confusion": np.eye(7, dtype=int).tolist()}),
    }


def test_the_figures_need_no_streamlit():
    code = "import sys, ser.viz.plots, ser.viz.corpus; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_no_chart_uses_a_colour_streamlit_takes_for_its_own(speech):
    """Streamlit's chart theme swaps the colours #000001..#0000ff for its palette (Magma's black
    drew silence pink); every figure must keep clear of them."""
    for name, figure in every_figure(speech).items():
        ours = figure.to_plotly_json()
        ours["layout"].pop("template", None)  # Streamlit's own template, where the placeholders belong
        assert not re.findall(r"#0000[0-9a-f]{2}\b", json.dumps(ours, default=str), flags=re.I), name


def test_every_log_frequency_axis_names_its_ticks_in_full(speech):
    """Plotly's own log ticks read "5, 2, 1000, 5, 2, 100": each frequency axis gives its own."""
    n_log_axes = 0
    for name, figure in every_figure(speech).items():
        layout = figure.to_plotly_json()["layout"]
        for axis_name, axis in layout.items():
            if not re.fullmatch(r"[xy]axis\d*", axis_name) or axis.get("type") != "log":
                continue
            n_log_axes += 1
            assert axis.get("tickvals") and len(axis["tickvals"]) == len(axis["ticktext"]), (name, axis_name)
            assert set(axis["ticktext"]) <= {"100", "200", "500", "1k", "2k", "4k", "8k"}, (name, axis_name)
            assert len(axis["ticktext"]) >= 4, (name, axis_name)
    assert n_log_axes >= 3 + 6  # the mel spectrogram, the mean spectrum, and each of the emotion row's subplots


def test_the_palette_is_one_distinct_arousal_coherent_colour_per_emotion():
    assert set(EMOTION_COLOURS) == {*ALL_EMOTIONS, NO_SPEECH}
    assert len(set(map(str.lower, EMOTION_COLOURS.values()))) == len(EMOTION_COLOURS)
    rgb = {k: tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for k, c in EMOTION_COLOURS.items()}
    assert len(set(rgb[NO_SPEECH])) == 1  # the pause is grey
    assert all(rgb[e][0] > rgb[e][2] for e in HIGH_AROUSAL)  # warm: more red than blue
    assert all(rgb[e][2] > rgb[e][0] for e in LOW_AROUSAL)  # cool: more blue than red
    assert sum(rgb["angry"]) > sum(rgb["sad"]) and sum(rgb["happy"]) > sum(rgb["neutral"])  # brighter
    assert emotion_colour("ecstatic") == plots.OTHER_COLOUR


# Machado, Oliveira & Fernandes (2009): linear-RGB matrices simulating full protanopia, deuteranopia, tritanopia.
DICHROMACY = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.3039]],
}


def cie_lab(hex_colour: str, vision: list | None = None) -> np.ndarray:
    srgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    linear = np.clip(np.asarray(vision or np.eye(3)) @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / [0.95047, 1.0, 1.08883]
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("vision", [None, *DICHROMACY])
def test_the_modelled_emotions_and_the_pause_stay_apart_with_colour_vision_deficiency(vision):
    """Every pair at least 12 CIE76 units apart (about 2.3 is just noticeable) even with one cone
    type missing: measured 15 at the closest (deuteranopia: fear and pause)."""
    names = [*EMOTIONS, NO_SPEECH]
    lab = {n: cie_lab(EMOTION_COLOURS[n], DICHROMACY.get(vision)) for n in names}
    closest = min((float(np.linalg.norm(lab[a] - lab[b])), a, b) for i, a in enumerate(names) for b in names[i + 1 :])
    assert closest[0] >= 12, closest


def test_every_figure_draws_each_emotion_in_its_palette_colour(speech):
    figures = every_figure(speech)
    bars = figures["probability"].data[0]
    assert list(bars.marker.color) == [EMOTION_COLOURS[e] for e in bars.y]
    for name in ("timeline", "live_timeline"):
        traces = figures[name].data
        assert [t.name for t in traces] == [*LABELS, NO_SPEECH]
        assert all(t.fillcolor == t.line.color == EMOTION_COLOURS[t.name] for t in traces), name
    for trace in figures["class_balance"].data:
        assert list(trace.marker.color) == [EMOTION_COLOURS[e] for e in trace.x]
    assert [(t.name, t.line.color) for t in figures["box"].data] == [(e, EMOTION_COLOURS[e]) for e in LABELS]
    assert [(t.name, t.line.color) for t in figures["mean_spectrum"].data] == [(e, EMOTION_COLOURS[e]) for e in LABELS]
    row = figures["emotion_row"].layout
    assert [s.fillcolor for s in row.shapes] == [EMOTION_COLOURS[a.text] for a in row.annotations]


def test_probability_numbers_stay_level_beside_their_bars():
    """Inside a thin bar plotly turned its number on end ("%9")."""
    bars = plots.probability_figure({"neutral": 0.02, "angry": 0.91, "sad": 0.07}).data[0]
    assert bars.textangle == 0 and bars.textposition == "outside" and bars.cliponaxis is False
    assert list(bars.text) == ["2%", "<b>91%</b>", "7%"]  # the most probable in bold


def test_a_long_timeline_is_binned_without_outlines_and_its_pauses_are_grey_bands():
    """The hour of issue 12: 3,598 windows, 58 in pauses, mostly disgust. Drawn window by window
    with outlines it looked teal (fear's outline) with orange spikes where the pauses were."""
    pauses = np.r_[1000:1029, 2400:2429]
    timeline = make_timeline(3598)
    timeline.speech[pauses] = False
    figure = plots.timeline_figure(timeline)
    traces = {t.name: t for t in figure.data}
    assert list(traces) == [*LABELS, NO_SPEECH]
    n_points = len(traces[NO_SPEECH].x)
    assert 200 <= n_points <= plots.TIMELINE_MAX_POINTS
    assert "each point the mean of 12 windows: 12 s bins" in figure.layout.xaxis.title.text  # the bin width, said
    assert all(t.line.width == 0 and t.line.shape == "hvh" and t.stackgroup == "p" for t in figure.data)
    stacked = np.sum([np.asarray(t.y) for t in figure.data], axis=0)
    np.testing.assert_allclose(stacked, 1.0, rtol=1e-6)  # every bin's column is full, pause included
    # The areas' share of the chart is the windows' share: disgust most, fear next to nothing.
    shares = {name: float(np.mean(t.y)) for name, t in traces.items()}
    assert max(shares, key=shares.get) == "disgust" and shares["disgust"] > 0.6 and shares["fear"] < 0.001
    assert shares[NO_SPEECH] == pytest.approx(len(pauses) / 3598, rel=0.01)
    # A bin wholly inside a pause is one grey band, no emotion in it.
    inside = np.array([not timeline.speech[start : start + 12].any() for start in range(0, 3598, 12)])
    assert inside.sum() == 3 and np.all(np.asarray(traces[NO_SPEECH].y)[inside] == 1)
    assert not any(np.asarray(t.y)[inside].any() for name, t in traces.items() if name != NO_SPEECH)
    assert len(figure.to_json()) < 200_000  # a few hundred points per trace, not 3,598


def test_a_pause_inside_a_short_recording_is_a_band_and_no_emotion_is_drawn_over_it():
    timeline = make_timeline(30, pauses=slice(10, 18))
    figure = plots.timeline_figure(timeline)
    pause = next(t for t in figure.data if t.name == NO_SPEECH)
    np.testing.assert_array_equal(np.asarray(pause.y) == 1, ~timeline.speech)
    for trace in figure.data:
        if trace.name != NO_SPEECH:
            assert not np.asarray(trace.y)[~timeline.speech].any()
    assert figure.layout.xaxis.title.text == "time (s, window centre)"  # no bins: each window is a point
    assert list(figure.layout.xaxis.range) == [0, 29 + 3]  # to the last window's end
    # to the clip's end, trailing silence included: lined up with the waveform above it
    assert list(plots.timeline_figure(timeline, end_s=40.0).layout.xaxis.range) == [0, 40.0]
    assert not any(t.name == NO_SPEECH for t in plots.timeline_figure(make_timeline(30)).data)


def test_the_live_timeline_spans_its_rolling_minute():
    figure = plots.timeline_figure(make_timeline(4), at_end=True, last_s=60)
    assert list(figure.layout.xaxis.range) == [0, 60]  # two seconds of readouts are a sliver, not a spike
    figure = plots.timeline_figure(Timeline(np.arange(100.0, 190.0, 0.5), 3.0, np.full((180, 7), 1 / 7), LABELS,
                                            np.ones(180, bool)), at_end=True, last_s=60)  # fmt: skip
    assert list(figure.layout.xaxis.range) == [132.5, 192.5]


@pytest.mark.parametrize(
    ("n_windows", "speech_s", "drawn"),
    [(1, 2.0, False), (2, 3.2, False), (5, 7.0, False), (7, 9.0, True), (3598, 3600.0, True)],
)
def test_a_timeline_is_drawn_only_with_enough_speech_for_one(n_windows, speech_s, drawn):
    """A 3.2 s clip made two windows 0.2 s apart, drawn as a spike."""
    timeline = None if n_windows == 1 else make_timeline(n_windows)
    reason = plots.no_timeline_reason(timeline, speech_s)
    assert (reason == "") == drawn
    if not drawn:
        assert reason.startswith("No emotion timeline: ") and f"{speech_s:.1f} s of speech" in reason
    if n_windows == 2:
        assert f"it takes {plots.MIN_TIMELINE_WINDOWS * 3:g} s of speech" in reason


def test_class_balance_stacks_each_speaker_in_the_emotions_colours():
    counts = {("EF1", "angry"): 5, ("EF1", "sad"): 2, ("EM1", "sad"): 4}
    figure = plots_corpus.class_balance_figure(counts, ["sad", "angry"])
    assert [t.name for t in figure.data] == ["EF1", "EM1"] and figure.layout.barmode == "stack"
    assert [list(t.y) for t in figure.data] == [[2, 5], [4, 0]]
    assert all(t.textangle == 0 for t in figure.data)


def test_emotion_boxes_leave_out_clips_that_could_not_be_measured():
    rows = [{"emotion": "sad", "f0_hz": 120.0}, {"emotion": "sad", "f0_hz": np.nan}]
    rows.append({"emotion": "angry", "f0_hz": 200.0})
    figure = plots_corpus.emotion_box_figure(rows, "f0_hz", ["sad", "angry"], title="f0")
    assert [list(t.y) for t in figure.data] == [[120.0], [200.0]]


def test_spectrogram_of_a_long_recording_is_averaged_down_over_the_whole_clip(speech):
    long = np.tile(speech, int(300 * 16_000 / len(speech)) + 1)[: 300 * 16_000]  # 5 minutes
    mel, mfcc = plots.spectrogram_figures(long, max_columns=1000)
    times = np.asarray(mel.data[0].x)
    assert 900 <= len(times) <= 1000 and times[0] < 0.5 and 299 < times[-1] <= 300
    assert np.all(np.diff(times) > 0) and np.isfinite(np.asarray(mel.data[0].z)).all()
    np.testing.assert_array_equal(np.asarray(mfcc.data[0].x), times)
    short_mel, _ = plots.spectrogram_figures(speech)
    assert len(short_mel.data[0].x) == len(speech) // 320 + 1  # a clip under the cap keeps every frame
    # frequencies named in full ("2k"), not plotly's log-axis shorthand ("2", "5")
    assert list(mel.layout.yaxis.ticktext) == ["100", "200", "500", "1k", "2k", "4k"]


def test_one_word_row_averages_each_clip_down_to_its_columns():
    clips = {c.emotion: sf.read(c.path, dtype="float32")[0] for c in tiny_manifest(n_words=1).clips[:3]}
    clips["long"] = np.tile(clips[next(iter(clips))], 4)  # a few seconds: more frames than columns
    figure = plots_corpus.emotion_row_figure(clips, max_columns=50)
    assert [a.text for a in figure.layout.annotations] == list(clips)
    for trace, waveform in zip(figure.data, clips.values(), strict=True):
        spec = spectrograms(waveform)
        times, z = np.asarray(trace.x), np.asarray(trace.z)
        assert z.shape == (len(spec.mel_hz), len(times)) and len(times) <= 50
        assert spec.times_s[0] <= times[0] and times[-1] <= spec.times_s[-1] and np.all(np.diff(times) > 0)
        # each column is the mean of its frames: the overall level is kept
        assert abs(z.mean() - spec.mel_db.mean()) < 1.0
    assert len(figure.data[-1].x) > 25  # the long clip did need averaging, to at most 50 columns
    assert figure.layout.shapes[-1].fillcolor == plots.OTHER_COLOUR  # "long" is no emotion


def test_mean_spectrum_has_one_line_per_emotion_present():
    freqs = mel_frequencies(DISPLAY_FEATURES)
    spectra = {"sad": np.zeros(len(freqs)), "angry": np.ones(len(freqs))}
    figure = plots_corpus.mean_spectrum_figure(spectra, freqs, ["neutral", "angry", "sad"])
    assert [t.name for t in figure.data] == ["angry", "sad"]
    assert figure.layout.xaxis.type == "log" and figure.layout.title.text == "Average mel spectrum"


def test_waveform_envelope_keeps_its_extremes():
    waveform = voiced(2.0)
    figure = plots.waveform_figure(waveform, 16_000, max_points=100)
    assert len(figure.data[0].x) <= 101
    assert max(figure.data[0].y) == pytest.approx(waveform.max())
    assert min(figure.data[1].y) == pytest.approx(waveform.min())
