"""Shared fixtures: a seeded rng, synthetic waveforms (tones and real synthesised speech), corpus paths."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

import ser  # noqa: F401  first: it loads pylibsrtp before any test loads TensorFlow (see ser/__init__.py)

ROOT = Path(__file__).resolve().parent.parent
# The bundled default, as models/active.json names it
BUNDLED_SVM = ROOT / "models" / json.loads((ROOT / "models" / "active.json").read_text())["model"]
TESS_DIR = ROOT.parent / "shared" / "data" / "tess"
DEMO_DIR = ROOT / "assets" / "demo_corpus"

requires_tess = pytest.mark.skipif(
    not TESS_DIR.is_dir(), reason=f"real TESS not found at {TESS_DIR} (../shared is absent on this machine)"
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def voiced(duration_s: float, sr: int = 16_000, f0: float = 180.0, seed: int = 0) -> np.ndarray:
    """A vowel-like harmonic tone with vibrato and an amplitude envelope, float32 in [-1, 1]: sound
    that decodes and trims like speech, but that the voice-activity detector rightly calls no speech
    (``spoken`` is speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sr)) / sr
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 4 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(np.pi * t / t[-1]), 0, None) ** 0.5 if len(t) > 1 else np.ones_like(t)
    wave = wave * envelope + 0.01 * rng.standard_normal(len(t))
    return (0.5 * wave / np.max(np.abs(wave))).astype(np.float32)


DEMO_VOICES = ("EF1", "EM1", "EF2", "EM2")


@functools.cache
def _demo_words(voice: str) -> tuple[np.ndarray, ...]:
    from ser.audio.load import load_audio
    from ser.audio.speech import trim_silence

    return tuple(trim_silence(load_audio(p)) for p in sorted(DEMO_DIR.glob(f"{voice}_*/*.ogg")))


def spoken(duration_s: float, sr: int = 16_000, voice: str = "EF1", seed: int = 0) -> np.ndarray:
    """Real speech, synthesised: the demo corpus' words of one voice (espeak-ng, in every emotion)
    end to end, from word ``seed`` on, cut to ``duration_s`` at ``sr``; float32, peak 0.5."""
    from ser.audio.load import resample

    words, parts, i = _demo_words(voice), [], seed
    while sum(map(len, parts)) < duration_s * 16_000:
        parts.append(words[i % len(words)])
        i += 7  # another word, another emotion
    wave = resample(np.concatenate(parts)[: round(duration_s * 16_000)], 16_000, sr)[: round(duration_s * sr)]
    return (0.5 * wave / max(float(np.max(np.abs(wave))), 1e-9)).astype(np.float32)


@pytest.fixture
def speech_like() -> np.ndarray:
    """Two seconds of real (synthesised) speech at 16 kHz."""
    return spoken(2.0)


def bundle_folders(models_dir: Path) -> set[str]:
    """The folders in a models folder (bundles, and bundles being written)."""
    return {p.name for p in models_dir.iterdir() if p.is_dir()} if models_dir.is_dir() else set()


@pytest.fixture(scope="session", autouse=True)
def _private_models_folder(tmp_path_factory):
    """Every test serves from and trains into a copy of models/ ($SER_MODELS_DIR), never the
    repository's own; a test that leaves a new folder in models/ anyway fails the session."""
    import os
    import shutil

    from ser.store.registry import MODELS_DIR, MODELS_DIR_ENV

    before = bundle_folders(MODELS_DIR)
    private = tmp_path_factory.mktemp("session") / "models"
    shutil.copytree(MODELS_DIR, private, ignore=shutil.ignore_patterns(".*"))
    old = os.environ.get(MODELS_DIR_ENV)
    os.environ[MODELS_DIR_ENV] = str(private)
    yield private
    if old is None:
        os.environ.pop(MODELS_DIR_ENV, None)
    else:
        os.environ[MODELS_DIR_ENV] = old
    left = sorted(bundle_folders(MODELS_DIR) - before)
    if left:
        pytest.fail(f"tests left {', '.join(left)} in {MODELS_DIR}; train into tmp_path or $SER_MODELS_DIR")


@pytest.fixture(scope="session", autouse=True)
def _private_feature_cache(tmp_path_factory):
    """Tests never read or fill the user's feature cache."""
    import os

    old = os.environ.get("SER_CACHE_DIR")
    os.environ["SER_CACHE_DIR"] = str(tmp_path_factory.mktemp("feature-cache"))
    yield
    if old is None:
        os.environ.pop("SER_CACHE_DIR", None)
    else:
        os.environ["SER_CACHE_DIR"] = old


def tiny_manifest(n_words: int = 4, speakers: tuple[str, ...] = ("EF1", "EM1")):
    """A few demo-corpus words from two speakers in all seven emotions."""
    from ser.corpora.datasets import Manifest, discover

    demo = discover(DEMO_DIR)
    words = sorted({c.text for c in demo.clips})[:n_words]
    clips = [c for c in demo.clips if c.speaker in speakers and c.text in words]
    return Manifest(clips=clips, root=DEMO_DIR, unmatched=[])


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real model trained for two epochs on a tiny slice of the demo corpus (shared by the tests)."""
    from ser.config import TrainConfig
    from ser.training.train import train

    models_dir = tmp_path_factory.mktemp("models")
    path, _card = train(
        tiny_manifest(),
        split="speaker",
        config=TrainConfig(epochs=2, batch_size=16),
        models_dir=models_dir,
        name="tiny",
        command="pytest tiny_bundle",
    )
    return path


def clip_with_a_pause(folder: Path) -> Path:
    """A 7 s recording of two speech parts with a 1.6 s pause between them (several 3 s windows, one
    of them mostly pause), named as a TESS clip of EF1 saying "long" angrily."""
    import soundfile as sf

    sr = 16_000
    parts = [spoken(2.5, voice="EM1", seed=1), np.zeros(int(1.6 * sr), np.float32), spoken(2.9, voice="EF2", seed=2)]
    path = folder / "EF1_long_angry.wav"
    sf.write(path, np.concatenate(parts), sr)
    return path


def lstm_card(config, labels=("angry", "sad")):
    """A card for a seed-lstm network of ``labels``."""
    from ser.store.card import ModelCard

    return ModelCard(architecture="seed-lstm", labels=tuple(labels), feature_config=config)


@pytest.fixture
def saved(tmp_path):
    """A freshly built seed-lstm network saved as bundle "good" in tmp_path: (models folder, bundle)."""
    from ser.models.archs import ARCHITECTURES
    from ser.models.bundle import save_bundle
    from ser.models.network import NetworkModel
    from ser.models.network.layers import build_model

    config = ARCHITECTURES["seed-lstm"].features
    model = NetworkModel(build_model("seed-lstm", config, 2), ("angry", "sad"), config)
    path = save_bundle(model, lstm_card(config), tmp_path, "good")
    return tmp_path, path
