"""Memory of one run: `python -m ser train` on the demo corpus and on TESS, and the app's server
with one page of each kind open.

    .venv/bin/python bench/memory.py [--epochs 5] [--skip-tess]

A training run, cold feature cache, is sampled every 0.2 s from /proc: the main process's RSS
(and its peak, VmHWM), each pool worker's RSS and its private memory (USS: what a worker adds
to the machine; its other pages are shared with the parent it was forked from), and the PSS of
the whole tree (shared pages counted once). The largest worker USS is what ``ser.features.workers``
budgets per worker when it caps the pool by free memory.

The server (``bench/appserver.py``, the corpus TESS when present, else the demo corpus) gets one
headless session (``bench/wsclient.py``) that classifies an uploaded clip, opens Explore, Train
and Live in turn; RSS and peak RSS of the server after each.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from appserver import AppServer
from common import ROOT, TESS_DIR, emit
from wsclient import StreamlitUser

DEMO = ROOT / "assets" / "demo_corpus"
SAMPLE_S = 0.2


def status_mb(pid: int, field: str) -> float:
    """A field of /proc/PID/status in MB (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rollup_mb(pid: int) -> dict[str, float]:
    """PSS and USS (private clean + dirty) of a process, MB, from /proc/PID/smaps_rollup."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0]) / 1024
    except (OSError, ValueError):
        return {"pss": 0.0, "uss": 0.0}
    return {"pss": values.get("Pss", 0.0), "uss": values.get("Private_Clean", 0.0) + values.get("Private_Dirty", 0.0)}


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def measure_train(corpus: Path, epochs: int) -> dict:
    """One cold `python -m ser train CORPUS --split none`, sampled until it exits."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SER_CACHE_DIR": f"{tmp}/cache"}
        command = [sys.executable, "-m", "ser", "train", str(corpus), "--arch", "cnn", "--split", "none",
                   "--epochs", str(epochs), "--out", f"{tmp}/models"]  # fmt: skip
        start = time.monotonic()
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()
        peak = {"main_rss_mb": 0.0, "main_hwm_mb": 0.0, "tree_pss_mb": 0.0, "worker_rss_mb": 0.0, "worker_uss_mb": 0.0}
        n_workers, first_epoch_s = 0, None
        while process.poll() is None:
            workers = children(process.pid)
            n_workers = max(n_workers, len(workers))
            main = rollup_mb(process.pid)
            tree = main["pss"]
            for worker in workers:
                usage = rollup_mb(worker)
                tree += usage["pss"]
                peak["worker_uss_mb"] = max(peak["worker_uss_mb"], usage["uss"])
                peak["worker_rss_mb"] = max(peak["worker_rss_mb"], status_mb(worker, "VmRSS"))
            peak["tree_pss_mb"] = max(peak["tree_pss_mb"], tree)
            peak["main_rss_mb"] = max(peak["main_rss_mb"], status_mb(process.pid, "VmRSS"))
            peak["main_hwm_mb"] = max(peak["main_hwm_mb"], status_mb(process.pid, "VmHWM"))
            if first_epoch_s is None and any(line.startswith("epoch") for line in lines):
                first_epoch_s = time.monotonic() - start
            time.sleep(SAMPLE_S)
        if process.returncode != 0:
            raise RuntimeError(f"train failed: {''.join(lines)[-2000:]}")
        return {
            "corpus": str(corpus),
            "epochs": epochs,
            "wall_s": round(time.monotonic() - start, 1),
            "first_epoch_done_s": None if first_epoch_s is None else round(first_epoch_s, 1),
            "n_workers": n_workers,
            **{k: round(v, 1) for k, v in peak.items()},
        }


async def visit_pages(url: str, clip: bytes, pid: int) -> list[dict]:
    """Classify an upload on the default page, then open each other page; the server's RSS after each."""
    user = StreamlitUser(url)
    await user.connect()
    await user.run()
    await user.upload("clip.wav", clip)
    visits = [{"page": "classify", "rss_mb": round(status_mb(pid, "VmRSS"), 1), "errors": list(user.errors)}]
    for page in ("explore", "train", "live"):
        await user.open(page)
        visits.append({"page": page, "rss_mb": round(status_mb(pid, "VmRSS"), 1), "errors": list(user.errors)})
    await user.close()
    return visits


def measure_server(corpus: Path) -> dict:
    waveform, sr = sf.read(sorted(DEMO.rglob("*.ogg"))[0], dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, np.pad(waveform, (0, 2 * sr)), sr, format="WAV")
    with tempfile.TemporaryDirectory() as tmp, AppServer(Path(tmp), env={"SER_DATA_DIR": str(corpus)}) as server:
        pid = server.process.pid
        at_start = status_mb(pid, "VmRSS")
        visits = asyncio.run(visit_pages(server.url, buffer.getvalue(), pid))
        return {
            "corpus": str(corpus),
            "rss_mb_at_start": round(at_start, 1),
            "rss_mb_all_pages_open": round(status_mb(pid, "VmRSS"), 1),
            "peak_rss_mb": round(status_mb(pid, "VmHWM"), 1),
            "pages": visits,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (the peak comes in the first)")
    parser.add_argument("--skip-tess", action="store_true")
    args = parser.parse_args()
    tess = TESS_DIR.is_dir() and not args.skip_tess
    result = {"train_demo": measure_train(DEMO, args.epochs)}
    result["train_tess"] = measure_train(TESS_DIR, args.epochs) if tess else "skipped: TESS not found"
    result["server"] = measure_server(TESS_DIR if tess else DEMO)
    result["load_average_at_end"] = os.getloadavg()[0]  # a shared machine: the times depend on it
    emit("memory", result)


if __name__ == "__main__":
    main()
