"""The command line (ser.cli), run as a user runs it: predict, evaluate, models and train."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import DEMO_DIR, ROOT, tiny_manifest, voiced


def ser(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ser", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def csv_manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    lines = ["path,emotion,speaker"]
    for clip in tiny_manifest(n_words=1).clips:
        lines.append(f"{clip.path},{clip.emotion},{clip.speaker}")
    other_word = next(c for c in tiny_manifest(n_words=2).clips if c not in tiny_manifest(n_words=1).clips)
    lines.append(f"{other_word.path},calm,EF1")
    path = folder / "clips.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_prints_json_per_file_and_fails_on_bad_ones(tmp_path, tiny_bundle):
    good = tiny_manifest().clips[0].path
    bad = tmp_path / "not audio.wav"
    bad.write_text("hello")
    silent = tmp_path / "silent.wav"
    sf.write(silent, 0 * voiced(1.0), 16_000)
    done = ser("predict", str(good), str(bad), str(silent), "--model", str(tiny_bundle), "--json")
    assert done.returncode == 1
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[0]["label"] in rows[0]["probabilities"]
    assert rows[1]["kind"] == "AudioDecodeError" and "not audio.wav" in rows[1]["file"]
    assert rows[2]["kind"] == "AudioContentError" and "silent" in rows[2]["error"]
    assert "Traceback" not in done.stderr


def test_predict_timeline_of_a_long_recording_with_a_pause(tmp_path, tiny_bundle):
    """Speech, 8 s of silence, speech: --timeline lists every window, the silent ones as pauses,
    and the file's emotion is the mean of the speech windows alone."""
    speech = np.concatenate([sf.read(c.path, dtype="float32")[0] for c in tiny_manifest().clips[:3]])
    long = tmp_path / "meeting.flac"
    sf.write(long, np.concatenate([speech, np.zeros(8 * 16_000, np.float32), speech]), 16_000)
    done = ser("predict", str(long), "--model", str(tiny_bundle), "--json", "--timeline")
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    windows = row["timeline"]
    labels = list(row["probabilities"])
    assert len(windows) > 5 and all(a["start_s"] < b["start_s"] for a, b in itertools.pairwise(windows))
    gap = [w for w in windows if w["start_s"] >= len(speech) / 16_000 and w["end_s"] <= len(speech) / 16_000 + 8]
    assert gap and all(w["emotion"] == "no speech" for w in gap)
    spoken = [w for w in windows if w["emotion"] != "no speech"]
    assert spoken and all(w["emotion"] in labels for w in spoken)
    mean = np.mean([[w[label] for label in labels] for w in spoken], axis=0)
    assert labels[int(np.argmax(mean))] == row["label"]
    text = ser("predict", str(long), "--model", str(tiny_bundle), "--timeline")
    assert text.returncode == 0 and text.stdout.count(" s  no speech") == len(windows) - len(spoken)
    plain = ser("predict", str(long), "--model", str(tiny_bundle), "--json")
    assert "timeline" not in json.loads(plain.stdout)


def test_predict_into_a_closed_pipe_stops_quietly(tiny_bundle):
    """`python -m ser predict *.wav | head -1`: the reader goes away, the command stops, no traceback."""
    good = str(tiny_manifest().clips[0].path)
    command = [sys.executable, "-m", "ser", "predict", good, good, "--model", str(tiny_bundle)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # before the first line is written
    stderr = process.stderr.read()
    assert process.wait(timeout=600) == 141, stderr  # 128 + SIGPIPE, as a shell tool killed by the signal
    assert "BrokenPipeError" not in stderr and "Traceback" not in stderr, stderr


def test_predict_with_the_bundled_model_in_text(tmp_path):
    done = ser("predict", str(next(DEMO_DIR.rglob("*.ogg"))))
    assert done.returncode == 0, done.stderr
    assert "%" in done.stdout


def test_same_speaker_says_how_many_files_it_learnt_the_voice_from(tmp_path):
    """A file that cannot be read is no part of the speaker's profile, and the profile says so; when
    none can be read, the error says why rather than that they hold no speech."""
    clip, missing = str(next(DEMO_DIR.rglob("*.ogg"))), str(tmp_path / "missing.wav")
    done = ser("predict", missing, clip, "--same-speaker")
    assert done.returncode == 1 and "1 of 2 files marked as one speaker" in done.stdout
    assert "could not be read" in done.stderr and "Traceback" not in done.stderr
    none = ser("predict", missing, str(tmp_path / "also-missing.wav"), "--same-speaker")
    # none can be: each file's reason, told before any model loads, and no word of speech
    assert none.returncode == 1 and none.stderr.count("could not be read") == 2 and "speech" not in none.stderr


def test_evaluate_json_on_a_csv_manifest(csv_manifest, tiny_bundle):
    done = ser("evaluate", str(csv_manifest), "--model", str(tiny_bundle), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"accuracy", "macro_f1", "n_clips", "per_class", "confusion", "skipped"} <= set(report)
    assert report["n_clips"] == 14 and report["skipped"]["n"] == 1


def test_evaluate_text_report(csv_manifest, tiny_bundle):
    done = ser("evaluate", str(csv_manifest), "--model", str(tiny_bundle))
    assert done.returncode == 0, done.stderr
    assert "macro-F1" in done.stdout and "confusion" in done.stdout and "skipped 1 clips" in done.stdout


def test_evaluate_text_report_names_the_files_it_could_not_use(csv_manifest, tiny_bundle, tmp_path):
    broken = tmp_path / "broken clip.wav"
    broken.write_bytes(b"RIFF, but not audio")
    manifest = tmp_path / "clips.csv"
    manifest.write_text(csv_manifest.read_text() + f"{broken},angry,EF1\n")
    done = ser("evaluate", str(manifest), "--model", str(tiny_bundle))
    assert done.returncode == 0, done.stderr
    assert "1  could not be decoded or used" in done.stdout
    assert "broken clip.wav: the file" in done.stdout and "could not be decoded as audio" in done.stdout


def test_evaluate_pools_several_data_arguments(csv_manifest, tiny_bundle, tmp_path):
    header, *rows = csv_manifest.read_text().splitlines()
    halves = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for half, part, corpus in zip(halves, (rows[::2], rows[1::2]), ("one", "two"), strict=True):
        half.write_text("\n".join([f"{header},corpus", *(f"{row},{corpus}" for row in part)]) + "\n")
    done = ser("evaluate", *map(str, halves), "--model", str(tiny_bundle), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["n_clips"] == 14 and report["skipped"]["n"] == 1


def test_missing_data_and_missing_model_are_clear_errors(tmp_path):
    done = ser("evaluate", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "not found" in done.stderr and "Traceback" not in done.stderr
    clip = next((ROOT / "assets" / "examples").glob("*.flac"))
    done = ser("predict", str(clip), "--model", str(tmp_path))
    assert done.returncode == 1 and "card.json" in done.stderr and "Traceback" not in done.stderr


def test_files_that_cannot_be_audio_are_told_before_any_model_loads(tmp_path):
    """Missing files, folders and empty files are refused from their names and sizes alone; a model
    is loaded only when at least one file may be audio."""
    (tmp_path / "empty.wav").touch()
    bad = [str(tmp_path / "missing.wav"), str(tmp_path), str(tmp_path / "empty.wav")]
    code = (
        "import sys; from ser.cli.parser import main; status = main(sys.argv[1:]); "
        "print(status, sorted(m for m in ('ser.models.bundle', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, "predict", *bad], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.split("\n")[0] == "1 []", done.stderr[-2000:]
    assert "could not be read: No such file" in done.stderr and "is a folder" in done.stderr
    assert "empty (0 bytes)" in done.stderr and "Traceback" not in done.stderr
    json_lines = ser("predict", *bad, "--json").stdout.splitlines()
    assert [json.loads(line)["file"] for line in json_lines] == bad


def test_an_argument_error_prints_its_commands_usage():
    done = ser("train", str(DEMO_DIR), "--epochs", "0")
    assert done.returncode == 2 and done.stderr.startswith("usage: python -m ser train") and "epochs" in done.stderr


def test_every_argument_says_what_it_is_for():
    from ser.cli.parser import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    silent = [f"{name} {action.dest}" for name, command in commands.items() for action in command._actions
              if not action.help and action.dest != "help"]  # fmt: skip
    assert len(commands) == 5 and not silent, silent


def test_exit_now_flushes_the_output_and_runs_the_exit_handlers(tmp_path):
    """``python -m ser`` ends without tearing the interpreter down, but nothing of its end is lost."""
    code = (
        "import atexit, pathlib, sys; from ser.__main__ import exit_now; "
        "atexit.register(pathlib.Path(sys.argv[1]).write_text, 'ran'); print('out', end=''); exit_now(3)"
    )
    flag = tmp_path / "flag"
    done = subprocess.run([sys.executable, "-c", code, str(flag)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 3 and done.stdout == "out" and flag.read_text() == "ran"


def test_models_says_when_the_folder_is_missing_or_holds_no_bundle(tmp_path):
    done = ser("models", "--dir", str(tmp_path / "typo"))
    assert done.returncode == 1 and "models folder not found" in done.stderr and "typo" in done.stderr
    done = ser("models", "--dir", str(tmp_path))
    assert done.returncode == 0 and f"no model bundles in {tmp_path}" in done.stdout


def test_the_cli_serves_from_ser_models_dir_like_the_app(tiny_bundle, tmp_path, monkeypatch):
    """$SER_MODELS_DIR moves the app's models; the CLI must serve and list the same folder."""
    from ser.models.bundle import load_bundle
    from ser.serving.predict import Predictor, classify

    shutil.copytree(tiny_bundle, tmp_path / "tiny")
    (tmp_path / "active.json").write_text(json.dumps({"model": "tiny"}) + "\n")
    monkeypatch.setenv("SER_MODELS_DIR", str(tmp_path))
    clip = next(DEMO_DIR.rglob("*.ogg"))
    done = ser("predict", str(clip), "--json")
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout)["probabilities"]
    expected = classify(clip, Predictor(load_bundle(tmp_path / "tiny"))).prediction.probabilities
    assert served == pytest.approx(expected, abs=1e-5)
    listing = ser("models")
    assert listing.returncode == 0 and "tiny" in listing.stdout and "cnn-tess" not in listing.stdout


def test_train_from_the_command_line(csv_manifest, tmp_path):
    done = ser("train", str(csv_manifest), "--epochs", "1", "--out", str(tmp_path), "--name", "cli", "--activate")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch   1/1" in done.stderr
    progress = re.findall(r"^features: (\d+)/(\d+) clips, \d+ s$", done.stderr, re.M)  # stderr is not a terminal
    assert progress[0][0] == "1" and progress[-1][0] == progress[-1][1] != "1"
    card = json.loads((tmp_path / "cli" / "card.json").read_text())
    assert card["command"] == f"python -m ser train {csv_manifest} --epochs 1 --out {tmp_path} --name cli --activate"
    assert json.loads((tmp_path / "active.json").read_text()) == {"model": "cli"}
