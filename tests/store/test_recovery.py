"""What a killed process leaves in the models folder is found and cleared by the next one
(ser.store.recovery): the
job's record shows an interrupted run, half-written bundles of dead writers go, nothing else."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time

import pytest
from streamlit.testing.v1 import AppTest

from bench.appserver import AppServer
from ser.app.jobs import TrainingJob
from ser.store.recovery import (
    JOB_FILE,
    interrupted_job,
    process_alive,
    process_started,
    read_job_record,
    remove_job_record,
    remove_stale_bundles,
    temp_bundle_prefix,
    this_process,
    write_job_record,
)
from ser.store.registry import ACTIVE_FILE, list_bundles
from tests.conftest import ROOT
from tests.processes import PYTHON, forked_workers, gone, make_corpus, requires_proc, wait_until

BUNDLED = ROOT / "models" / "cnn-tess-v1"


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([PYTHON, "-c", "pass"])
    process.wait()
    return process.pid


def running_record(**changes) -> dict:
    """The record a training job keeps while it computes features, written by this process."""
    record = {
        "status": "running", "kind": "train", "name": "cnn-run", "data": "/data/tess", "split": "speaker",
        "config": {"arch": "cnn", "epochs": 20}, "features_done": 120, "features_total": 2800,
        "started_at": time.time() - 90, "updated_at": time.time() - 30, **this_process(),
    }  # fmt: skip
    return {**record, **changes}


def test_a_process_is_told_from_a_dead_one_and_from_one_that_reused_its_pid():
    me = os.getpid()
    assert process_alive(me) and process_alive(me, process_started(me))
    assert not process_alive(dead_pid())
    if process_started(me):  # Linux: the same pid started at another time is another process
        assert not process_alive(me, str(int(process_started(me)) + 1))


@pytest.mark.parametrize(
    "owner,status",
    [
        ("this process", None),  # still running
        ("a dead one", "interrupted"),
        ("our pid, reused", "interrupted"),  # the pid, but another start time: the writer is gone
        ("another host", None),  # cannot tell from here: left alone
    ],
)
def test_a_running_record_of_a_dead_process_is_marked_interrupted_once_and_for_all(tmp_path, owner, status):
    if owner == "our pid, reused" and not process_started(os.getpid()):
        pytest.skip("no process start times on this platform")
    changes = {
        "this process": {},
        "a dead one": {"pid": dead_pid()},
        "our pid, reused": {"process_started": "1"},
        "another host": {"pid": dead_pid(), "host": "another-machine"},
    }[owner]
    write_job_record(tmp_path, running_record(**changes))
    found = interrupted_job(tmp_path)
    assert (found or {}).get("status") == status
    assert read_job_record(tmp_path)["status"] == (status or "running")  # saved: the next start sees it too
    if status:
        assert interrupted_job(tmp_path)["interrupted_at"] == found["interrupted_at"]


def test_records_are_whole_json_or_nothing(tmp_path):
    assert read_job_record(tmp_path) is None
    (tmp_path / JOB_FILE).write_text('{"status": "runn')  # torn by hand: the writer never leaves this
    assert read_job_record(tmp_path) is None and interrupted_job(tmp_path) is None
    write_job_record(tmp_path, running_record())
    assert sorted(p.name for p in tmp_path.iterdir()) == [JOB_FILE]  # no temporary file left
    remove_job_record(tmp_path, status="interrupted")  # not interrupted: kept
    assert read_job_record(tmp_path) is not None
    remove_job_record(tmp_path)  # ours
    assert read_job_record(tmp_path) is None


def test_half_written_bundles_of_dead_writers_are_removed_and_nothing_else(tmp_path):
    shutil.copytree(BUNDLED, tmp_path / "kept")
    (tmp_path / ACTIVE_FILE).write_text('{"model": "kept"}\n')
    dead = tmp_path / f".cnn-a.{dead_pid()}_12345-k2j4h5g1.tmp"
    reused = tmp_path / f".cnn-b.{os.getpid()}_1-abcd_123.tmp"  # our pid, another start time
    alive = tmp_path / f"{temp_bundle_prefix('cnn-c')}x1y2z3.tmp"  # being written by this process
    fresh_old_style, stale_old_style = tmp_path / ".cnn-d.x1.tmp", tmp_path / ".cnn-e.x2.tmp"
    for folder in (dead, reused, alive, fresh_old_style, stale_old_style):
        folder.mkdir()
        (folder / "model.keras").write_bytes(b"PK half")
    os.utime(stale_old_style, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "notes.tmp").write_text("a file, not a bundle")
    removed = remove_stale_bundles(tmp_path)
    expected = {dead, stale_old_style} | ({reused} if process_started(os.getpid()) else set())
    assert set(removed) == expected and not any(p.exists() for p in expected)
    assert alive.exists() and fresh_old_style.exists() and (tmp_path / "notes.tmp").exists()
    assert [p.name for p, _ in list_bundles(tmp_path, check=True)] == ["kept"]
    assert (tmp_path / ACTIVE_FILE).read_text() == '{"model": "kept"}\n'


def test_a_new_process_shows_the_dead_run_as_interrupted_until_dismissed(tmp_path):
    write_job_record(tmp_path, running_record(pid=dead_pid(), epoch=3, fold_index=1, n_folds=2, fold="EF1"))
    job = TrainingJob()
    job.recover(tmp_path)
    state = job.snapshot()
    assert state.status == "interrupted" and not state.running and state.name == "cnn-run"
    assert "after epoch 3 of at most 20 of fit 1 of 2" in state.error
    assert "Nothing was saved" in state.error and "active model is unchanged" in state.error
    assert time.strftime("%H:%M:%S", time.localtime(state.finished_at)) in state.error  # last seen
    job.dismiss()
    assert job.snapshot().status == "idle" and read_job_record(tmp_path) is None


def test_a_job_that_ends_leaves_no_record(tmp_path):
    from ser.config import TrainConfig
    from ser.corpora.datasets import Manifest

    job = TrainingJob()
    job.start(Manifest([], tmp_path, []), split="none", config=TrainConfig(epochs=1), models_dir=tmp_path / "m")
    assert job.wait(timeout=30).status == "failed"
    assert not (tmp_path / "m" / JOB_FILE).exists()


def test_the_train_page_shows_an_interrupted_run(tmp_path, monkeypatch):
    shutil.copytree(BUNDLED, tmp_path / "cnn-tess-v1")
    (tmp_path / ACTIVE_FILE).write_text('{"model": "cnn-tess-v1"}\n')
    write_job_record(tmp_path, running_record(pid=dead_pid(), name="cnn-killed"))
    monkeypatch.setenv("SER_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr("ser.app.jobs.JOB", TrainingJob())
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.switch_page("pages/train.py").run()
    assert not app.exception
    assert "cnn-killed — interrupted" in [h.value for h in app.subheader]
    warning = " ".join(w.value for w in app.warning)
    assert "while computing features (120 of 2800 clips)" in warning and "Nothing was saved" in warning


# --- a real server, killed mid-job and started again ---------------------------------------------------


async def start_training(url: str) -> None:
    from bench.wsclient import StreamlitUser

    user = StreamlitUser(url)
    await user.connect()
    await user.run()
    await user.open("train")
    await user.click("Start training")
    await user.close()


async def train_page(url: str) -> tuple[list[str], list[str]]:
    from bench.wsclient import StreamlitUser

    user = StreamlitUser(url)
    await user.connect()
    await user.run()
    await user.open("train")
    await user.close()
    return user.headings, user.warnings


@pytest.mark.slow
@requires_proc
def test_a_server_killed_mid_job_shows_the_run_interrupted_when_it_starts_again(tmp_path):
    env = {"SER_DATA_DIR": str(make_corpus(tmp_path / "corpus", 2))}  # 1,224 clips: features take a while
    app = tmp_path / "app"
    with AppServer(app, env=env) as server:
        models, pid = server.models, server.process.pid
        active = (models / ACTIVE_FILE).read_text()
        visible = sorted(p.name for p in models.iterdir() if not p.name.startswith("."))
        asyncio.run(start_training(server.url))

        def computing() -> list[int]:
            record = read_job_record(models) or {}
            return forked_workers(pid) if record.get("features_done", 0) > 0 else []

        pool = wait_until(computing, 180, "the job computing features in the server's workers")
        name = read_job_record(models)["name"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        wait_until(gone(pool), 5.0, f"the killed server's workers {pool} still alive")
    assert read_job_record(models)["status"] == "running"  # as the killed server left it
    half_written = models / f".{name}.{pid}_1-abcd1234.tmp"  # as a server killed while saving leaves it
    half_written.mkdir()
    (half_written / "model.keras").write_bytes(b"PK")

    with AppServer(app, env=env) as server:
        headings, warnings = asyncio.run(train_page(server.url))
    assert f"{name} — interrupted" in headings
    warning = next(w for w in warnings if w.startswith("Interrupted"))
    assert "while computing features (" in warning and "Nothing was saved" in warning, warning
    assert read_job_record(models)["status"] == "interrupted"
    assert not half_written.exists()
    assert (models / ACTIVE_FILE).read_text() == active
    assert sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) == visible  # nothing saved
