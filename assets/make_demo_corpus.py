"""Generate the bundled SER Studio demo corpus: synthetic, TESS-style emotional speech.

The real TESS corpus is not redistributed with the project, so the app, the CLI and the tests
fall back on this small corpus when TESS is absent. It is made with the espeak-ng speech
synthesiser: four synthetic voices (EM1, EM2, EF1, EF2) say "Say the word <word>." for
20 TESS words in each of the seven TESS emotions (angry, disgust, fear, happy, neutral,
ps = pleasant surprise, sad). Each emotion has its own prosody (pitch, pitch range, rate,
loudness, spectral tilt, plus a tremolo for fear and a mild saturation for anger), with small seeded
per-clip variation, so the emotions are audible and learnable.

Layout (as in TESS): ``<out>/{SPK}_{emotion}/{SPK}_{word}_{emotion}.ogg``, 16 kHz mono
OGG Vorbis, plus ``<out>/README.md``.

Regenerate (needs the ``espeak-ng`` program, numpy, soundfile with OGG support, librosa)::

    python assets/make_demo_corpus.py [--out assets/demo_corpus]

The audio is deterministic (fixed seed); the OGG container bytes may still differ between
runs because libsndfile picks a random Ogg stream serial number.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import scipy.signal
import soundfile as sf

SAMPLE_RATE = 16_000
SEED = 20240611
OGG_QUALITY = 0.6  # soundfile compression_level for Vorbis: 0 = best quality, 1 = smallest

SPEAKERS: dict[str, str] = {
    "EM1": "en-us+m3",
    "EM2": "en-gb-x-rp+m1",
    "EF1": "en-us+f3",
    "EF2": "en-gb-x-rp+f4",
}

WORDS: tuple[str, ...] = (
    "back", "bar", "base", "bath", "bean", "beg", "bite", "boat", "bone", "book",
    "bought", "burn", "cab", "calm", "came", "cause", "chain", "chair", "chalk", "chat",
)  # fmt: skip


@dataclass(frozen=True)
class Prosody:
    """Per-emotion delivery: SSML prosody values (percent of default), peak level and effects."""

    pitch: float  # relative pitch change, percent (0 = voice default)
    range: float  # pitch range, percent of default (100 = default)
    rate: float  # speaking rate, percent of default
    peak_db: float  # peak level after normalisation, dBFS
    tilt: float = 0.0  # spectral tilt: >0 pre-emphasis (brighter), <0 one-pole low-pass (duller)
    tremolo: float = 0.0  # amplitude-modulation depth (0..1) at ~7 Hz
    drive: float = 0.0  # tanh saturation amount (0 = clean)


EMOTIONS: dict[str, Prosody] = {
    "angry": Prosody(pitch=10, range=180, rate=118, peak_db=-1.0, tilt=0.7, drive=2.5),
    "disgust": Prosody(pitch=-12, range=130, rate=80, peak_db=-5.0, tilt=-0.4),
    "fear": Prosody(pitch=40, range=40, rate=122, peak_db=-6.0, tremolo=0.45),
    "happy": Prosody(pitch=20, range=170, rate=112, peak_db=-2.0, tilt=0.3),
    "neutral": Prosody(pitch=0, range=100, rate=100, peak_db=-3.0),
    "ps": Prosody(pitch=60, range=300, rate=90, peak_db=-2.0, tilt=0.2),
    "sad": Prosody(pitch=-25, range=25, rate=72, peak_db=-9.0, tilt=-0.8),
}


@dataclass(frozen=True)
class Clip:
    """One clip to synthesise."""

    speaker: str
    voice: str
    word: str
    emotion: str

    @property
    def relpath(self) -> Path:
        return Path(f"{self.speaker}_{self.emotion}") / f"{self.speaker}_{self.word}_{self.emotion}.ogg"


def plan_clips() -> list[Clip]:
    """All (speaker, emotion, word) combinations, in a fixed order."""
    return [Clip(spk, voice, word, emo) for spk, voice in SPEAKERS.items() for emo in EMOTIONS for word in WORDS]


def clip_rng(clip: Clip) -> np.random.Generator:
    """A generator seeded from the clip's identity, so each clip is reproducible on its own."""
    key = zlib.crc32(f"{clip.speaker}/{clip.word}/{clip.emotion}".encode())
    return np.random.default_rng([SEED, key])


def ssml(word: str, p: Prosody, rng: np.random.Generator) -> str:
    """The TESS carrier sentence wrapped in jittered SSML prosody."""
    pitch = p.pitch + rng.normal(0, 4)
    rng_pct = max(10.0, p.range * rng.uniform(0.85, 1.15))
    rate = p.rate * rng.uniform(0.93, 1.07)
    return (
        f'<speak><prosody pitch="{pitch:+.0f}%" range="{rng_pct:.0f}%" rate="{rate:.0f}%">'
        f"Say the word {word}.</prosody></speak>"
    )


def synthesise(voice: str, text: str, wav: Path) -> tuple[np.ndarray, int]:
    """Run espeak-ng with SSML input into a WAV file and load it as float32 mono."""
    cmd = ["espeak-ng", "-m", "-z", "-v", voice, "-w", str(wav), text]
    subprocess.run(cmd, check=True, capture_output=True)
    audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    return audio.mean(axis=1), sr


def trim(y: np.ndarray, pad_s: float = 0.08) -> np.ndarray:
    """Cut leading/trailing silence, keeping a short pad either side."""
    _, (start, end) = librosa.effects.trim(y, top_db=40)
    pad = int(pad_s * SAMPLE_RATE)
    return y[max(0, start - pad) : min(len(y), end + pad)]


def apply_tilt(y: np.ndarray, tilt: float) -> np.ndarray:
    """Brighten (first-order pre-emphasis) or dull (one-pole low-pass) the spectrum."""
    if tilt > 0:
        return scipy.signal.lfilter([1.0, -tilt], [1.0], y)
    if tilt < 0:
        return scipy.signal.lfilter([1.0 + tilt], [1.0, tilt], y)
    return y


def apply_effects(y: np.ndarray, p: Prosody, rng: np.random.Generator) -> np.ndarray:
    """Spectral tilt, tremolo (fear), saturation (anger) and a faint noise floor."""
    y = apply_tilt(y, p.tilt)
    if p.tremolo:
        t = np.arange(len(y)) / SAMPLE_RATE
        rate_hz = rng.uniform(6.0, 8.0)
        y = y * (1.0 - p.tremolo * 0.5 * (1.0 + np.sin(2 * np.pi * rate_hz * t)))
    if p.drive:
        y = np.tanh(p.drive * y / (np.max(np.abs(y)) + 1e-9))
    noise = rng.normal(0.0, 1.0, len(y)) * 10 ** (-55 / 20) * np.max(np.abs(y))
    return (y + noise).astype(np.float32)


def normalise(y: np.ndarray, peak_db: float) -> np.ndarray:
    """Scale so the absolute peak sits at peak_db dBFS."""
    return (y * (10 ** (peak_db / 20) / (np.max(np.abs(y)) + 1e-9))).astype(np.float32)


def render(clip: Clip, out: Path, tmp: Path) -> Path:
    """Synthesise, post-process and write one clip; return its path."""
    rng = clip_rng(clip)
    p = EMOTIONS[clip.emotion]
    raw, sr = synthesise(clip.voice, ssml(clip.word, p, rng), tmp / f"{clip.relpath.stem}.wav")
    y = librosa.resample(raw, orig_sr=sr, target_sr=SAMPLE_RATE)
    y = apply_effects(trim(y), p, rng)
    y = normalise(y, p.peak_db + rng.uniform(-1.0, 0.5))
    dest = out / clip.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dest, y, SAMPLE_RATE, format="OGG", subtype="VORBIS", compression_level=OGG_QUALITY)
    return dest


def readme_text(n_clips: int) -> str:
    """Contents of the corpus README."""
    voices = "\n".join(f"| {spk} | `{voice}` |" for spk, voice in SPEAKERS.items())
    emos = "\n".join(
        f"| {e} | {p.pitch:+.0f}% | {p.range:.0f}% | {p.rate:.0f}% | {p.peak_db:.0f} dBFS | {p.tilt:+.1f} |"
        for e, p in EMOTIONS.items()
    )
    return f"""# SER Studio demo corpus

Synthetic emotional speech made with the espeak-ng synthesiser by `assets/make_demo_corpus.py`,
so that the app, the command line and the tests work without the real TESS corpus.
It is **not** real emotional speech: emotions are imitated with prosody (pitch, pitch range,
rate, loudness), spectral tilt, a tremolo for `fear` and mild saturation for `angry`.

Regenerate with `python assets/make_demo_corpus.py` (needs espeak-ng, numpy, soundfile, librosa).

- Layout as in TESS: `{{SPK}}_{{emotion}}/{{SPK}}_{{word}}_{{emotion}}.ogg`
- Audio: 16 kHz mono OGG Vorbis, carrier sentence "Say the word <word>."
- {len(SPEAKERS)} speakers x {len(EMOTIONS)} emotions x {len(WORDS)} words = {n_clips} clips

| speaker | espeak-ng voice |
|---|---|
{voices}

| emotion | pitch | range | rate | peak | tilt |
|---|---|---|---|---|---|
{emos}

Words: {", ".join(WORDS)}.

Speaker codes are deliberately not TESS's (OAF, YAF). License: generated by the project,
distributed under the project's license.
"""


def generate(out: Path, workers: int = 2) -> list[Path]:
    """Build the whole corpus into ``out`` (replacing it) and return the clip paths."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    clips = plan_clips()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        paths = list(pool.map(lambda c: render(c, out, Path(tmp)), clips))
    (out / "README.md").write_text(readme_text(len(paths)), encoding="utf-8")
    return paths


def verify(paths: list[Path], min_s: float = 0.8, max_s: float = 3.0) -> list[str]:
    """Return one message per clip that fails to decode or has an odd duration."""
    problems = []
    for path in paths:
        try:
            info = sf.info(path)
        except RuntimeError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if info.samplerate != SAMPLE_RATE or info.channels != 1 or not min_s <= info.duration <= max_s:
            problems.append(f"{path}: {info.samplerate} Hz, {info.channels} ch, {info.duration:.2f} s")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "demo_corpus")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("espeak-ng not found on PATH", file=sys.stderr)
        return 1
    paths = generate(args.out, args.workers)
    problems = verify(paths)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{len(paths)} clips, {size / 1e6:.2f} MB in {args.out}")
    for msg in problems:
        print("PROBLEM", msg, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
