"""ser.app.jobs: the app's training job in the background: its errors, its progress, a stop at any
point, and its bundle zipped for download."""

from __future__ import annotations

import os
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from ser.app.jobs import TrainingJob, models_folder, zip_bundle
from ser.config import TrainConfig
from ser.corpora.datasets import Manifest, discover
from ser.errors import TrainingError
from ser.store.registry import MODELS_DIR
from tests.conftest import DEMO_DIR, tiny_manifest
from tests.processes import forked_workers


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_models_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SER_MODELS_DIR", raising=False)
    assert models_folder() == MODELS_DIR
    monkeypatch.setenv("SER_MODELS_DIR", str(tmp_path))
    assert models_folder() == tmp_path


def test_a_failing_job_reports_its_error(tmp_path):
    one_emotion = tiny_manifest(n_words=2)
    one_emotion = Manifest([c for c in one_emotion.clips if c.emotion == "sad"], one_emotion.root, [])
    job = TrainingJob()
    job.start(one_emotion, split="none", config=TrainConfig(epochs=1), models_dir=tmp_path)
    state = job.wait(timeout=30)
    assert state.status == "failed"
    assert "at least two" in state.error
    assert not state.running and state.path == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_second_start_is_refused_and_stop_leaves_no_bundle(tmp_path):
    job = TrainingJob()
    manifest = tiny_manifest()
    config = TrainConfig(epochs=200, patience=200, batch_size=16)
    name = job.start(manifest, split="none", config=config, models_dir=tmp_path, name="long-run")
    with pytest.raises(TrainingError, match="long-run"):
        job.start(manifest, split="none", config=config, models_dir=tmp_path)
    wait_for(lambda: job.snapshot().logs or not job.snapshot().running)
    job.stop()
    assert job.snapshot().status in ("stopping", "failed")
    state = job.wait(timeout=60)
    assert state.status == "stopped", state.error
    assert "stopped" in state.error and name == state.name
    assert 1 <= len(state.logs) < 200
    assert list(tmp_path.iterdir()) == []
    # Once it has ended, a new run may start.
    job.start(Manifest([], manifest.root, []), split="none", config=config, models_dir=tmp_path)
    assert job.wait(timeout=30).status == "failed"


def test_zip_bundle_holds_the_bundle_files(tmp_path):
    bundle = tmp_path / "tiny"
    bundle.mkdir()
    (bundle / "card.json").write_text("{}")
    (bundle / "model.keras").write_bytes(b"weights")
    with zipfile.ZipFile(BytesIO(zip_bundle(bundle))) as archive:
        assert sorted(archive.namelist()) == ["tiny/card.json", "tiny/model.keras"]
        assert archive.read("tiny/model.keras") == b"weights"


def test_stop_while_features_are_computed_ends_the_run_then(tmp_path, monkeypatch, capfd):
    """Stop pressed during "Computing features…" waited for every clip's features and a first
    epoch (minutes on a cold TESS); now the clips not started are left undone."""
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))  # cold: every clip is computed
    job = TrainingJob()
    job.start(discover(DEMO_DIR), split="none", config=TrainConfig(epochs=1), models_dir=tmp_path / "models")
    wait_for(lambda: job.snapshot().features_done > 0 or not job.snapshot().running, timeout_s=180)
    job.stop()
    state = job.wait(timeout=120)
    assert state.status == "stopped", state.error
    assert state.logs == [] and state.features_done < state.features_total
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())
    if Path("/proc/self/stat").exists():  # and the pool's workers are gone: ended, not left to finish
        assert forked_workers(os.getpid()) == []
    assert "Traceback" not in capfd.readouterr().err  # from the workers ended, nor from the pool


def test_an_svm_runs_progress_names_its_fit_and_its_networks_steps():
    """An SVM run has no epochs to show: the bar follows its fits, their features, then the contour
    networks' batches, and never goes back."""
    job = TrainingJob()
    hooks = job._hooks()  # what a run of ser.training.train.train calls as it goes
    seen = [job.snapshot().progress()]
    hooks.on_fit("leave one corpus out: test emodb", 1, 3)
    for done in (1, 5, 10):
        hooks.progress(done, 10)
        seen.append(job.snapshot().progress())
    for step in (1, 100, 200):
        hooks.on_step(step, 200, 1.5)
        seen.append(job.snapshot().progress())
    hooks.on_fit("leave one corpus out: test ravdess", 2, 3)
    hooks.progress(10, 10)
    seen.append(job.snapshot().progress())
    hooks.on_step(50, 200, 1.2)
    seen.append(job.snapshot().progress())
    fractions, texts = zip(*seen, strict=True)
    assert list(fractions) == sorted(fractions) and fractions[-1] == pytest.approx((1 + 0.5 + 0.5 * 50 / 200) / 3)
    assert texts[0] == "Preparing…" and texts[1] == "Fit 1 of 3, computing features…"
    assert texts[3] == "Fit 1 of 3, leave one corpus out: test emodb: fitting"
    assert texts[-1] == "Fit 2 of 3, leave one corpus out: test ravdess: contour networks, step 50 of 200"
