"""Many users, one server, no lost model: shared predictor, training beside serving, kill -9
during training, damaged bundles."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ser.audio.load import load_audio
from ser.config import TrainConfig
from ser.errors import ModelError
from ser.store.registry import ACTIVE_FILE, MODEL_FILE, active_name, check_bundle, serving_bundle, set_active
from tests.conftest import ROOT, tiny_manifest

BUNDLED = ROOT / "models" / "cnn-tess-v1"


def models_copy(tmp_path: Path, *names: str) -> Path:
    """A models folder holding a copy of the bundled model under each name; the first is active."""
    models = tmp_path / "models"
    models.mkdir(parents=True)
    for name in names:
        shutil.copytree(BUNDLED, models / name)
    set_active(names[0], models)
    return models


def test_eight_threads_through_the_cached_predictor_match_sequential_calls():
    from ser.app.cache import cached_predictor

    clips = [load_audio(c.path) for c in tiny_manifest(n_words=3).clips]  # 42 clips
    predictor = cached_predictor(str(BUNDLED))
    sequential = [predictor.predict(c).probabilities for c in clips]

    def classify(clip):
        return cached_predictor(str(BUNDLED)).predict(clip).probabilities  # the one shared instance

    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(classify, clips * 2))
    assert parallel == sequential * 2


def test_serving_keeps_the_previous_model_while_a_run_trains_and_until_it_is_activated(tmp_path):
    from ser.app.jobs import TrainingJob
    from ser.serving.predict import Predictor

    models = models_copy(tmp_path, "old")
    job = TrainingJob()
    name = job.start(tiny_manifest(n_words=2), split="none", config=TrainConfig(epochs=3), models_dir=models)
    seen = set()
    while job.snapshot().running:
        seen.add(serving_bundle(models)[0].name)
        assert not (models / name).exists() or check_bundle(models / name)  # never visible half-written
        time.sleep(0.05)
    state = job.wait()
    assert state.status == "done", state.error
    assert seen == {"old"} and serving_bundle(models) == (models / "old", [])
    assert Predictor.from_path(models_dir=models).bundle.path.name == "old"
    set_active(name, models)
    assert Predictor.from_path(models_dir=models).bundle.path.name == name


def test_readers_never_see_a_missing_or_partial_pointer_while_it_flips(tmp_path):
    models = models_copy(tmp_path, "a", "b")
    stop, errors = threading.Event(), []

    def read():
        while not stop.is_set():
            try:
                assert active_name(models) in ("a", "b")
            except Exception as e:
                errors.append(e)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for i in range(300):
        set_active("ab"[i % 2], models)
    stop.set()
    for reader in readers:
        reader.join()
    assert errors == []


@pytest.mark.parametrize(
    "damage,reason",
    [
        ("truncate-model", "damaged or half-written"),
        ("delete-model", "no model.keras"),
        ("garbage-card", "cannot be read"),
        ("garbage-pointer", "damaged"),
        ("dangling-pointer", "missing"),
    ],
)
def test_a_damaged_active_bundle_is_reported_and_a_whole_one_served(tmp_path, damage, reason):
    models = models_copy(tmp_path, "broken", "spare")
    broken = models / "broken"
    if damage == "truncate-model":
        data = (broken / MODEL_FILE).read_bytes()
        (broken / MODEL_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "delete-model":
        (broken / MODEL_FILE).unlink()
    elif damage == "garbage-card":
        (broken / "card.json").write_text("{not json")
    elif damage == "garbage-pointer":
        (models / ACTIVE_FILE).write_text("\x00\x01")
    elif damage == "dangling-pointer":
        shutil.rmtree(broken)
    path, problems = serving_bundle(models)
    whole = {"broken", "spare"} if damage == "garbage-pointer" else {"spare"}  # the newest whole bundle
    assert path.parent == models and path.name in whole
    assert reason in problems[0] and problems[-1] == f"serving {path.name} instead"


def test_the_app_starts_on_damaged_models_and_says_so(tmp_path, monkeypatch):
    models = models_copy(tmp_path, "broken", "spare")
    (models / "broken" / MODEL_FILE).write_bytes(b"PK\x03\x04 half a zip")
    (models / ".cnn-20260101.x.tmp").mkdir()  # a bundle being written when its process died
    monkeypatch.setenv("SER_MODELS_DIR", str(models))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert "spare" in " ".join(m.value for m in app.sidebar.markdown)
    warnings = " ".join(w.value for w in app.sidebar.warning)
    assert "The active model cannot be served" in warnings and "damaged" in warnings

    app.switch_page("pages/train.py").run()
    assert not app.exception
    assert any(e.value.startswith("broken: ") and "damaged" in e.value for e in app.error)
    assert not any(".cnn-20260101" in x.label for x in app.expander)

    for f in ("broken", "spare"):
        shutil.rmtree(models / f)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert any("No model to serve" in e.value for e in app.sidebar.error)


@pytest.mark.slow
def test_kill_9_during_training_leaves_the_active_model_whole(tmp_path):
    """A real `python -m ser train --activate` killed with SIGKILL at several points of its run:
    start-up, features, fitting, and around saving."""
    from ser.serving.predict import Predictor

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for clip in tiny_manifest(n_words=2).clips:
        (corpus / clip.path.name).symlink_to(clip.path)
    probe = load_audio(next(corpus.iterdir()))
    reference = Predictor.from_path(BUNDLED).predict(probe).probabilities

    def run(models: Path, name: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "ser", "train", str(corpus), "--split", "none", "--epochs", "4",
                   "--out", str(models), "--name", name, "--activate"]  # fmt: skip
        env = {**os.environ, "SER_CACHE_DIR": str(tmp_path / f"cache-{name}")}  # cold: features are computed
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    # One uninterrupted run tells how long a run takes here.
    start = time.monotonic()
    full = run(models_copy(tmp_path / "full", "old"), "new")
    assert full.wait(timeout=600) == 0, full.stderr.read().decode()[-2000:]
    duration = time.monotonic() - start

    for i, fraction in enumerate((0.15, 0.4, 0.7, 0.9, 0.97)):
        models = models_copy(tmp_path / f"kill-{i}", "old")
        process = run(models, "new")
        time.sleep(fraction * duration)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        name = active_name(models)
        assert name in ("old", "new")  # "new" only when the run got as far as activating it
        check_bundle(models / name)
        predictor = Predictor.from_path(models_dir=models)
        assert predictor.bundle.path.name == name
        if name == "old":
            assert predictor.predict(probe).probabilities == reference
        visible = sorted(p.name for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))
        assert visible in (["old"], ["new", "old"])
        if visible == ["new", "old"]:
            check_bundle(models / "new")  # a bundle that is visible is whole
        assert json.loads((models / ACTIVE_FILE).read_text()) == {"model": name}


def test_no_usable_bundle_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no usable model bundle"):
        serving_bundle(tmp_path)
