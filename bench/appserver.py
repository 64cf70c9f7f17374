"""`streamlit run app.py` on a free loopback port, for the browser tests and the browser benchmarks.

    with AppServer(workdir) as server:     # a private copy of models/ and a private feature cache
        page.goto(server.url)

Imported by tests (``from bench.appserver import AppServer``) and by the scripts beside it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless Debian Chromium as root in a container, with a fake microphone and no network chatter.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    # many tabs at once (the load test): no throttling of tabs in the background
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows", "--disable-features=IntensiveWakeUpThrottling",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """Start the app in ``workdir`` (models copied there, so training never touches the bundled
    ones); ``stop`` ends it and returns its log. ``root``: the folder holding the app.py to run;
    ``watch``: keep the file watcher of its .streamlit/config.toml (off by default: nothing reloads)."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        timeout_s: float = 60,
        root: Path = ROOT,
        watch: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.root, self.watch = Path(root), watch
        self.models = self.workdir / "models"
        self.log_path = self.workdir / "streamlit.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.timeout_s = timeout_s
        self.process: subprocess.Popen | None = None

    def start(self) -> AppServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.models.exists():
            shutil.copytree(ROOT / "models", self.models, ignore=shutil.ignore_patterns(".*"))
        env = {**os.environ, "SER_MODELS_DIR": str(self.models), "SER_CACHE_DIR": str(self.workdir / "cache")}
        env.pop("SER_DATA_DIR", None)
        env.update(self.env)
        command = [
            sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.port={self.port}",
            "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
        ]  # fmt: skip
        if not self.watch:
            command.append("--server.fileWatcherType=none")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout_s
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"streamlit did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                return response.read() == b"ok"
        except OSError:
            return False

    def stop(self) -> str:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log_path.read_text() if self.log_path.exists() else ""

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
