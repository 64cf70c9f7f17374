"""ser.viz.explore: what the Explore page measures of a clip and of a corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ser.audio.speech import trim_silence
from ser.corpora.datasets import discover
from ser.viz import explore
from tests.conftest import DEMO_DIR, tiny_manifest, voiced


def test_waveform_stats_measures_a_voiced_tone():
    stats = explore.waveform_stats(voiced(1.5, f0=200.0))
    assert stats.duration_s == pytest.approx(1.5)
    assert 0.5 < stats.speech_s <= 1.5
    assert -30 < stats.rms_dbfs < 0
    assert stats.f0_hz == pytest.approx(200.0, rel=0.08)
    assert stats.mel_db.shape == (explore.DISPLAY_FEATURES.n_mels,)


def test_median_f0_of_a_too_short_clip_is_nan():
    assert math.isnan(explore.median_f0(np.zeros(100, np.float32)))


def test_speech_duration_is_what_ser_audio_trims():
    """One silence trimmer: the corpus statistics trim as ser.audio.load does (they used librosa's own)."""
    tone = voiced(1.0, f0=220.0)
    padded = np.concatenate([np.zeros(8_000, np.float32), tone, np.zeros(12_000, np.float32)])
    stats = explore.waveform_stats(padded)
    assert stats.speech_s == len(trim_silence(padded, top_db=explore.VOICED_TOP_DB)) / 16_000
    assert stats.speech_s == pytest.approx(1.0, abs=0.2) and stats.duration_s == pytest.approx(2.25)


def test_spectrograms_have_time_and_frequency_axes(speech_like):
    spec = explore.spectrograms(speech_like)
    n_mels, t = spec.mel_db.shape
    assert n_mels == len(spec.mel_hz) == explore.DISPLAY_FEATURES.n_mels
    assert spec.mfcc.shape == (explore.DISPLAY_FEATURES.n_mfcc, t)
    assert len(spec.times_s) == t and spec.times_s[-1] == pytest.approx(2.0, abs=0.05)
    assert np.all(np.diff(spec.mel_hz) > 0)


def test_corpus_stats_and_mean_spectra(tmp_path):
    clips = [c for c in tiny_manifest(n_words=1).clips if c.speaker == "EF1"]
    broken = tmp_path / "EF1_back_angry.wav"
    broken.write_bytes(b"not audio")
    rows = explore.corpus_stats([*clips, type(clips[0])(broken, "tess", "EF1", "back", "angry")])
    assert len(rows) == len(clips) + 1
    assert all(r["error"] == "" and r["f0_hz"] > 60 for r in rows[:-1])
    assert rows[-1]["error"] and math.isnan(rows[-1]["duration_s"])
    spectra = explore.mean_mel_per_emotion(rows)
    assert set(spectra) == {c.emotion for c in clips}


def test_counts_table_and_total_duration_of_the_demo_corpus():
    manifest = discover(DEMO_DIR)
    table = explore.counts_table(manifest)
    assert list(table) == ["EF1", "EF2", "EM1", "EM2", "total"]
    assert table["total"]["total"] == 560 and table["EF1"]["sad"] == 20
    total_s, problems = explore.total_duration_s([c.path for c in manifest.clips[:10]])
    assert problems == [] and 5 < total_s < 40
