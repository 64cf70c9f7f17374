"""Start-up of the command line, each command a fresh process as a user runs it.

Timed from outside (wall time to exit, peak RSS of that child from ``os.wait4``), ``--repeats``
times each: ``--help``, ``models``, an argument error (``train --epochs 0``) and ``predict`` of
one example clip (assets/examples) with the active bundled model. For each command, once more
under ``python -X importtime``: the import time by top-level package (each module's own time, so
a package imported inside another is not counted twice) and whether TensorFlow was imported.

Where a single predict's time goes: the same road as ``python -m ser predict`` (ser.cli.commands.cmd_predict)
in one fresh process, timed stage by stage against the wall clock shared with this one:
interpreter start, ``import ser.cli.parser``, ``import ser.serving.predict`` (scikit-learn), load the bundle
(skops), decode the file, start openSMILE, start the voice-activity detector (onnxruntime), features,
classify, print, and the exit.

    .venv/bin/python bench/startup.py [--repeats 5] [--clip assets/examples/....flac]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, emit

EXAMPLES = ROOT / "assets" / "examples"
DEMO = ROOT / "assets" / "demo_corpus"
HEAVY = ("tensorflow", "keras", "sklearn", "scipy", "pandas", "skops", "opensmile", "librosa", "av")

# The stages of cmd_predict, each stamped with the wall clock (time.time(), shared with the parent).
STAGES = """
import json, sys, time
stamps = [("start", time.time())]
def stamp(name): stamps.append((name, time.time()))
import ser.cli.parser; stamp("import_ser_cli")
from ser.serving.predict import Predictor, classify; stamp("import_ser_predict")
from ser.cli.commands import _bundle
predictor = Predictor(_bundle(None)); stamp("load_bundle")
from ser.audio.load import load_audio_head
head = load_audio_head(sys.argv[1], config=predictor.audio_config); stamp("decode")
from ser.features.functionals import _smile
_smile(); stamp("start_opensmile")
from ser.audio.speech import _vad_session
_vad_session(); stamp("start_detector")
from ser.features.windows import iter_features
chunks = list(iter_features(head.waveform, predictor.feature_config, predictor.audio_config)); stamp("features")
prediction, _ = predictor.answer(chunks); stamp("classify")
print(sys.argv[1], prediction.label, round(prediction.confidence, 3)); stamp("print")
print(json.dumps(stamps), file=sys.stderr)
from ser.__main__ import exit_now
exit_now(0)
"""


def spawn(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str, str]:
    """Run ``python ARGS`` in the repository. Returns (wall seconds, peak RSS in MB, exit status, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return seconds, usage.ru_maxrss / 1024, process.returncode, out.read().decode(), err.read().decode()


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def import_times(stderr: str) -> tuple[dict[str, float], float]:
    """``-X importtime`` output -> (seconds by top-level package, largest first; all imports, seconds)."""
    by_package: dict[str, float] = {}
    total_us = 0
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, module = int(match[1]), int(match[2]), match[3], match[4]
        package = module.split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + self_us / 1e6
        if len(indent) == 1:  # imported by the program itself: the cumulative times add up to all
            total_us += cumulative_us
    return dict(sorted(by_package.items(), key=lambda kv: -kv[1])), total_us / 1e6


def measure(name: str, args: list[str], repeats: int, env: dict[str, str], expect: int) -> dict:
    walls, peaks = [], []
    for _ in range(repeats):
        seconds, peak, status, _out, err = spawn(args, env)
        if status != expect:
            raise SystemExit(f"{name}: exit status {status}, expected {expect}:\n{err[-2000:]}")
        walls.append(seconds)
        peaks.append(peak)
    _, _, _, _, err = spawn(["-X", "importtime", *args], env)
    by_package, total = import_times(err)
    imported = sorted(p for p in HEAVY if p in by_package)
    return {
        "command": "python " + " ".join(args),
        "wall_s": summary(walls),
        "peak_rss_mb": summary(peaks),
        "runs_s": walls,
        "imports_s": total,
        "import_s_by_package": {k: round(v, 4) for k, v in by_package.items() if v >= 0.01},
        "heavy_packages_imported": imported,
        "imports_tensorflow": "tensorflow" in imported,
    }


def predict_stages(clip: Path, repeats: int, env: dict[str, str]) -> dict:
    """Seconds per stage of a predict in a fresh process (median, min, max over ``repeats``)."""
    stages: dict[str, list[float]] = {}
    for _ in range(repeats):
        before = time.time()
        _, _, status, _, err = spawn(["-c", STAGES, str(clip)], env)
        after = time.time()
        if status != 0:
            raise SystemExit(f"predict stages failed:\n{err[-2000:]}")
        stamps = [tuple(s) for s in json.loads(err.strip().splitlines()[-1])]
        stamps = [("spawn", before), *stamps, ("exit", after)]
        for (_, t0), (name, t1) in itertools.pairwise(stamps):
            stages.setdefault("python_start" if name == "start" else name, []).append(t1 - t0)
    return {name: summary(values) for name, values in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clip", type=Path, default=sorted(EXAMPLES.glob("*.flac"))[0])
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("SER_MODELS_DIR", "SER_DATA_DIR")}
    clip = args.clip.resolve()
    commands = {
        "help": (["-m", "ser", "--help"], 0),
        "models": (["-m", "ser", "models"], 0),
        "argument_error": (["-m", "ser", "train", str(DEMO), "--epochs", "0"], 2),
        "predict": (["-m", "ser", "predict", str(clip)], 0),
    }
    results = {name: measure(name, a, args.repeats, env, expect) for name, (a, expect) in commands.items()}
    stages = predict_stages(clip, args.repeats, env)
    emit(
        "startup",
        {
            "repeats": args.repeats,
            "clip": str(clip.relative_to(ROOT)) if clip.is_relative_to(ROOT) else str(clip),
            "model": (ROOT / "models" / "active.json").read_text().strip(),
            "commands": results,
            "predict_stages_s": stages,
            "load_average_1min": os.getloadavg()[0],
            "targets_s": {"help": 1.0, "models": 1.0, "argument_error": 1.0},
        },
    )


if __name__ == "__main__":
    main()
