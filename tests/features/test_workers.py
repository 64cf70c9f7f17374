"""Worker pools (ser.features.workers) leave nothing behind: real processes, real signals, processes
counted in /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from ser.features import workers
from tests.conftest import ROOT
from tests.processes import PYTHON, forked_workers, gone, in_session, make_corpus, requires_proc, wait_until

pytestmark = requires_proc

# A process that owns a pool of two workers, each stuck in a long task; "thread": the pool is run
# from a second thread, as the app's training job runs it; "no-prctl": the watchdog alone guards.
POOL_OWNER = r"""
import sys, threading, time
import ser.features.workers as workers
if "no-prctl" in sys.argv:
    workers._ask_kernel_for_death_signal = lambda: None
def nap(seconds):
    time.sleep(seconds)
def main():
    with workers.process_pool(2) as pool:
        for _ in range(4):
            pool.submit(nap, 600)
        print("ready", flush=True)
        time.sleep(600)
try:
    if "thread" in sys.argv:
        threading.Thread(target=main, daemon=True).start()
        time.sleep(600)
    else:
        main()
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
"""


def as_from_a_terminal() -> None:
    """A child's Ctrl-C as a terminal's program has it. A shell's background job (``make test &``)
    starts with SIGINT ignored, and Python keeps an ignored SIGINT ignored: the Ctrl-C tests then
    wait in vain."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_pool_owner(*args: str) -> tuple[subprocess.Popen, list[int]]:
    process = subprocess.Popen(
        [PYTHON, "-c", POOL_OWNER, *args], cwd=ROOT, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    assert process.stdout.readline() == "ready\n", process.stderr.read()
    pool = wait_until(lambda: len(forked_workers(process.pid)) == 2 and forked_workers(process.pid), 10, "2 workers")
    return process, pool


@pytest.mark.parametrize("how", ["main", "thread", "no-prctl"])
def test_workers_exit_within_2_s_of_their_owner_being_killed(how):
    owner, pool = start_pool_owner(how)
    owner.send_signal(signal.SIGKILL)  # the owner alone: its workers must notice by themselves
    owner.wait(timeout=10)
    wait_until(gone(pool), 2.0, f"workers {pool} of a killed owner ({how}) still alive")
    assert in_session(owner.pid) == []


def test_ctrl_c_ends_the_workers_without_a_traceback():
    owner, pool = start_pool_owner("main")
    os.killpg(owner.pid, signal.SIGINT)  # as a terminal sends it: to the whole process group
    assert owner.wait(timeout=10) == 130
    assert owner.stderr.read() == "interrupted\n"  # one line from the owner, nothing from its workers
    wait_until(gone(pool), 2.0, f"workers {pool} still alive after Ctrl-C")


def test_the_pool_is_no_larger_than_the_free_memory_holds(monkeypatch):
    cpus = workers.usable_cpus()
    monkeypatch.setattr(workers, "available_memory_mb", lambda: 1e9)
    assert workers.pool_size(1000) == cpus and workers.pool_size(1) == 1
    monkeypatch.setattr(workers, "available_memory_mb", lambda: workers.RESERVE_MB + 1.5 * workers.WORKER_MB)
    assert workers.pool_size(1000) == 1
    monkeypatch.setattr(workers, "available_memory_mb", lambda: 100.0)  # nearly out of memory: still one
    assert workers.pool_size(1000) == 1


def test_available_memory_is_read_from_the_system():
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_mb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:")) / 1024
    assert 0 < workers.available_memory_mb() <= total_mb


# --- a real `python -m ser train`, killed ------------------------------------------------------------


class Training:
    """``python -m ser train`` in its own session, its stderr read line by line as it comes, and
    a thread that sends ``sig`` once the run reaches ``phase`` ("features": its pool's workers
    busy; "fit": a first epoch done), then times how long its processes take to go."""

    def __init__(self, folder, corpus, *, epochs: int, phase: str, sig: signal.Signals) -> None:
        self.cache = folder / "cache"  # fresh: every clip's features are computed
        self.models = folder / "models"
        self.phase, self.sig = phase, sig
        command = [PYTHON, "-m", "ser", "train", str(corpus), "--arch", "cnn", "--split", "none",
                   "--epochs", str(epochs), "--out", str(self.models)]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "SER_CACHE_DIR": str(self.cache)}, start_new_session=True,
            text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=as_from_a_terminal,
        )  # fmt: skip
        self.lines: list[str] = []
        self.pool: list[int] = []  # the workers when the signal was sent
        self.left: list[int] = []  # processes of the run still alive 5 s after it
        self.error: BaseException | None = None
        threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True).start()
        self.killer = threading.Thread(target=self._kill_at_phase, daemon=True)
        self.killer.start()

    def _kill_at_phase(self) -> None:
        try:
            wait_until(self._computing_features if self.phase == "features" else self._fitting, 180, self.phase)
            self.pool = forked_workers(self.process.pid)
            if self.sig == signal.SIGINT:
                os.killpg(self.process.pid, self.sig)  # Ctrl-C in a terminal: the whole process group
            else:
                self.process.send_signal(self.sig)  # the run alone: its workers must go by themselves
            self.process.wait(timeout=30)
            try:
                wait_until(lambda: not in_session(self.process.pid), 5.0, "the run's processes gone")
            except AssertionError:
                self.left = in_session(self.process.pid)
        except BaseException as e:
            self.error = e
        finally:
            for pid in in_session(self.process.pid):  # never leave anything, even when failing
                os.kill(pid, signal.SIGKILL)

    def _running(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the run ended early ({self.process.returncode}): {''.join(self.lines)[-2000:]}")
        return True

    def _computing_features(self) -> bool:
        return self._running() and bool(forked_workers(self.process.pid)) and any(self.cache.rglob("*.np[yz]"))

    def _fitting(self) -> bool:
        return self._running() and any(line.startswith("epoch") for line in self.lines)

    def result(self) -> Training:
        self.killer.join(240)
        if self.error is not None:
            raise self.error
        return self


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    """Three runs at once (one start-up's time for all three on 2 cores): killed and interrupted
    while computing the features of a generated corpus (1,224 clips, too many to finish before
    the signal), and killed during the fit of a small one."""
    folder = tmp_path_factory.mktemp("killed-runs")
    big = make_corpus(folder / "big", 2)
    small = make_corpus(folder / "small", 1, speakers=("EF1",), words=3)
    runs = {
        "features-SIGKILL": Training(folder / "a", big, epochs=3, phase="features", sig=signal.SIGKILL),
        "features-SIGINT": Training(folder / "b", big, epochs=3, phase="features", sig=signal.SIGINT),
        "fit-SIGKILL": Training(folder / "c", small, epochs=500, phase="fit", sig=signal.SIGKILL),
    }
    yield runs
    for run in runs.values():
        run.process.kill()


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_a_run_killed_while_computing_features_leaves_no_process(killed_runs, sig):
    run = killed_runs[f"features-{sig}"].result()
    assert run.pool, "the signal came while the workers computed"
    assert run.left == [], f"alive 5 s after {sig}: {run.left}"
    if sig == "SIGINT":  # Ctrl-C: a one-line message and the interrupted status, no traceback
        assert run.process.returncode == 130 and run.lines[-1] == "interrupted\n", "".join(run.lines)
        assert not any("Traceback" in line for line in run.lines), "".join(run.lines)


@pytest.mark.slow
def test_a_run_killed_while_it_fits_leaves_no_process(killed_runs):
    run = killed_runs["fit-SIGKILL"].result()
    assert run.left == [], f"alive 5 s after SIGKILL: {run.left}"
    assert not run.models.exists() or not any(p for p in run.models.iterdir() if not p.name.startswith("."))
