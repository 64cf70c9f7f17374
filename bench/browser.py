"""The app in Chromium: first paint, and a load test of concurrent sessions classifying a clip.

    .venv/bin/python bench/browser.py paint [--servers 3] [--loads 5]
    .venv/bin/python bench/browser.py load [--sessions 1,4,16] [--rounds 5] [--repeats 3] [--client ws|chromium]
    .venv/bin/python bench/browser.py explore [--corpus ../shared/data/tess] [--loads 5]
    .venv/bin/python bench/browser.py train [--bundles 20] [--loads 5] [--compare PATH]

paint: for each of ``--servers`` fresh servers, the time from opening the app's address in a new
browser context to the Classify heading being visible, first (cold server) and then ``--loads``
more times (warm server); medians over servers and loads.

load: one server; for each N, N users open Classify, then all upload the same 2 s clip at once:
with ``--client ws`` (the default) headless Streamlit sessions over the websocket
(bench/wsclient.py), so the server is measured rather than 16 Chromium tabs drawing charts on
the same 2 cores; with ``--client chromium`` browser contexts. Reported: the time from the upload
to the predicted label, p50 and p95 over all sessions of ``--rounds`` rounds, and the number of
sessions that saw an error or no result; ``--repeats`` whole runs on fresh servers, and the median
of their ratios.
Every session uploads a clip of its own (the same word with different noise), so none of the
results comes from Streamlit's cache.
Target (issue 4): 0 errors at N = 16, p95 at N = 16 at most 8 x p50 at N = 1.

explore: Explore on a corpus (default: the bundled demo corpus), timed until the view is done as a
user sees it: every chart's traces drawn, the script run over, nothing stale. The first load (the
corpus-wide comparison, on a fresh server), then ``--loads`` later loads of each view in a new tab
by its address, and as many switches to each view by its tab on an open page; with the seconds the
browser's main thread was busy in each. Targets (issues 3, 12): first load at most 60 s, later
loads at most 3 s (the slowest view's median).

train: the Train page with ``--bundles`` model versions (copies of the bundled model, a day apart),
opened by its address in a new tab, timed until it has settled: every version's section there,
every chart drawn and no script running. The first load on a fresh server (which imports
TensorFlow) and ``--loads`` later ones. ``--compare PATH``: another checkout's app (say the code
before a change, from `git archive`), on a server of its own with the same models, loaded in turn
with this one's. Target (issue 12): later loads settle within 3 s.

Needs Debian's chromium and playwright (both installed for `make test` by .ci/run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
import soundfile as sf
from appserver import CHROMIUM, CHROMIUM_ARGS, AppServer
from common import ROOT, emit
from playwright.async_api import async_playwright
from wsclient import StreamlitUser

RESULT = re.compile(r"^clip-\d+\.wav: [a-z]+ \(\d+%\)$")


def clip_bytes(seed: int) -> bytes:
    """2 s of a demo-corpus word with a little seeded noise (different bytes each round), as WAV."""
    path = sorted((ROOT / "assets" / "demo_corpus").rglob("*.ogg"))[0]
    waveform, sr = sf.read(path, dtype="float32")
    waveform = np.pad(waveform, (0, max(0, 2 * sr - len(waveform))))[: 2 * sr]
    waveform = waveform + np.random.default_rng(seed).normal(0, 1e-3, len(waveform)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, waveform, sr, format="WAV")
    return buffer.getvalue()


async def open_classify(browser, url: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(120_000)
    start = time.perf_counter()
    await page.goto(url)
    await page.get_by_role("heading", name="Classify", exact=True).wait_for(timeout=120_000)
    return context, page, time.perf_counter() - start


async def paint(servers: int, loads: int) -> dict:
    cold, warm = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(servers):
            with tempfile.TemporaryDirectory() as tmp, AppServer(Path(tmp)) as server:
                for i in range(loads + 1):
                    context, _page, seconds = await open_classify(browser, server.url)
                    (cold if i == 0 else warm).append(seconds)
                    await context.close()
        await browser.close()
    return {
        "cold_first_paint_s": {"median": statistics.median(cold), "runs": cold},
        "warm_first_paint_s": {"median": statistics.median(warm), "runs": warm},
        "target_s": 3.0,
    }


# Explore's views (its tabs) and the plotly charts each one draws on the demo corpus and on TESS.
EXPLORE_VIEWS = {"Overview": 1, "Clip browser": 3, "One word": 1, "Emotions compared": 4}
# Done as a user sees it: the view's charts all there, each with its traces drawn (a bar, box or
# line trace, or a heatmap's image), the script run over, and nothing left stale from a run before.
EXPLORE_DONE = """(n) => {
  const charts = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];
  return charts.length === n
    && charts.every(c => c.querySelector('.main-svg .cartesianlayer .trace, .main-svg .heatmaplayer image'))
    && !document.querySelector('[data-testid=stStatusWidget]')
    && !document.querySelector('[data-stale=true]');
}"""


async def browser_busy_s(cdp) -> float:
    """Seconds the tab's main thread has been busy (scripts, style, layout, paint) so far."""
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "TaskDuration")


async def until_done(page, cdp, start: float, busy: float, n_charts: int) -> tuple[float, float]:
    """Wait for EXPLORE_DONE; returns (seconds since ``start``, seconds the browser was busy)."""
    while not await page.evaluate(EXPLORE_DONE, n_charts):
        if time.perf_counter() - start > 600:
            raise TimeoutError(f"{page.url}: {n_charts} charts not drawn in 600 s")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start, await browser_busy_s(cdp) - busy


async def explore_tab(context, url: str, n_charts: int):
    """Open ``url`` in a new tab and wait for its view to be done: (page, cdp, seconds, busy seconds)."""
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    start, busy = time.perf_counter(), await browser_busy_s(cdp)
    await page.goto(url)
    return page, cdp, *(await until_done(page, cdp, start, busy, n_charts))


async def switch_view(page, cdp, view: str) -> tuple[float, float]:
    """Click ``view``'s tab on an open Explore page; seconds until it is done, and busy seconds."""
    start, busy = time.perf_counter(), await browser_busy_s(cdp)
    await page.get_by_role("tab", name=view).click()
    return await until_done(page, cdp, start, busy, EXPLORE_VIEWS[view])


# The floor under any Explore view: a bare Streamlit page with one small plotly chart, loaded in a
# new tab of the same browser in turn with the views, so a busy machine slows both alike.
FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st

st.title("Floor")
st.plotly_chart(go.Figure(go.Bar(x=["a", "b", "c"], y=[1, 3, 2])), key="bar")
"""


def medians(runs: dict[str, list[tuple[float, float]]]) -> dict:
    return {
        "median_by_view": {view: statistics.median(s for s, _ in r) for view, r in runs.items()},
        "browser_busy_median_by_view": {view: statistics.median(b for _, b in r) for view, r in runs.items()},
        "slowest_view_median": max(statistics.median(s for s, _ in r) for r in runs.values()),
        "runs": {view: [round(s, 3) for s, _ in r] for view, r in runs.items()},
    }


async def explore(corpus: Path | None, loads: int) -> dict:
    """Time to a complete Explore view (EXPLORE_DONE) on ``corpus`` (None: the bundled demo corpus),
    in one browser profile, as one person coming back: later loads find the app's scripts (plotly.js
    alone is 4.7 MB to compile and run) in the browser's cache and the corpus' measures in the
    server's. The first load is the corpus-wide comparison on a fresh server, which measures every
    clip. Later loads: each view opened by its address (/explore?view=...) in a new tab, and each
    view reached by clicking its tab on an open Explore page (the browser has plotly.js running).
    Each later load by address is followed by a load of FLOOR_APP, the least a page with a chart costs."""
    by_address: dict[str, list] = {view: [] for view in EXPLORE_VIEWS}
    by_tab: dict[str, list] = {view: [] for view in EXPLORE_VIEWS}
    floor_runs: list[tuple[float, float]] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        env = {"SER_DATA_DIR": str(corpus)} if corpus else {}
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            (tmp / "floor").mkdir()
            (tmp / "floor" / "app.py").write_text(FLOOR_APP)
            server = stack.enter_context(AppServer(tmp / "app", env=env))
            floor = stack.enter_context(AppServer(tmp / "floor-server", root=tmp / "floor"))
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page, _, first, first_busy = await explore_tab(context, f"{server.url}/explore?view=Emotions+compared", 4)
            await page.close()
            await (await explore_tab(context, floor.url, 1))[0].close()  # its scripts in the cache too
            for _ in range(loads):
                for view, n_charts in EXPLORE_VIEWS.items():
                    url = f"{server.url}/explore?view={urllib.parse.quote_plus(view)}"
                    page, _, seconds, busy = await explore_tab(context, url, n_charts)
                    by_address[view].append((seconds, busy))
                    await page.close()
                    page, _, seconds, busy = await explore_tab(context, floor.url, 1)
                    floor_runs.append((seconds, busy))
                    await page.close()
            page, cdp, _, _ = await explore_tab(context, f"{server.url}/explore", EXPLORE_VIEWS["Overview"])
            for _ in range(loads):
                for view in [*list(EXPLORE_VIEWS)[1:], "Overview"]:
                    by_tab[view].append(await switch_view(page, cdp, view))
            await context.close()
            log = server.stop()
        await browser.close()
    return {
        "corpus": str(corpus) if corpus else "assets/demo_corpus (bundled)",
        "done_when": "every plotly chart of the view has its traces drawn, the script run is over, nothing stale",
        "first_load_s": first,
        "first_load_browser_busy_s": first_busy,
        "later_loads_s": medians(by_address),
        "floor_s": {
            "what": "a bare Streamlit page with one small plotly chart, new tab, in turn with each later load",
            "median": statistics.median(s for s, _ in floor_runs),
            "browser_busy_median": statistics.median(b for _, b in floor_runs),
        },
        "later_over_floor_by_view": {
            view: statistics.median(s for s, _ in runs) / statistics.median(s for s, _ in floor_runs)
            for view, runs in by_address.items()
        },
        "view_switches_s": medians(by_tab),
        "load_average_1min": os.getloadavg()[0],
        "server_tracebacks": log.count("Traceback"),
        "targets_s": {"first": 60, "later": 3},
    }


TRAIN_SETTLED = """(n) => {
  const charts = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];
  return document.querySelectorAll('[data-testid=stExpander]').length >= n
    && charts.every(c => c.querySelector('.main-svg'))
    && !document.querySelector('[data-testid=stStatusWidget]');
}"""


def add_bundles(models: Path, n: int) -> None:
    """A copy of models/ at ``models``, with ``n`` copies of the bundled model in it, a day apart."""
    import datetime as dt
    import json
    import shutil

    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns(".*"))
    for i in range(n):
        target = models / f"cnn-copy-{i:02d}"
        shutil.copytree(ROOT / "models" / "cnn-tess-v1", target)
        card = json.loads((target / "card.json").read_text())
        card["created_at"] = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=i)).isoformat()
        (target / "card.json").write_text(json.dumps(card))


async def train_load(context, url: str, n_sections: int) -> tuple[float, int]:
    """Seconds from opening the Train page to its having settled, and the charts it drew."""
    page = await context.new_page()
    start = time.perf_counter()
    await page.goto(f"{url}/train")
    await page.get_by_role("heading", name="Model versions").wait_for(timeout=600_000)
    while not await page.evaluate(TRAIN_SETTLED, n_sections):
        if time.perf_counter() - start > 600:
            raise TimeoutError(f"{url}/train did not settle in 600 s")
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - start
    n_charts = await page.locator("[data-testid=stPlotlyChart]").count()
    await page.close()
    return seconds, n_charts


async def train(n_bundles: int, loads: int, roots: list[Path]) -> dict:
    """The Train page of each checkout in ``roots`` (this one first), one server each, all up at
    once and loaded in turn, so that a busy machine slows each of them alike."""
    results = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with contextlib.ExitStack() as stack:
            servers = {}
            for root in roots:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                add_bundles(tmp / "models", n_bundles)
                servers[root] = stack.enter_context(AppServer(tmp, root=root))
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            for root, server in servers.items():
                first, n_charts = await train_load(context, server.url, n_bundles + 1)
                results[str(root)] = {"first_load_s": first, "charts_drawn": n_charts, "later_loads_s": []}
            for _ in range(loads):
                for root, server in servers.items():
                    results[str(root)]["later_loads_s"].append(
                        (await train_load(context, server.url, n_bundles + 1))[0]
                    )
            await context.close()
        await browser.close()
    for result in results.values():
        result["later_median_s"] = statistics.median(result["later_loads_s"])
    return {
        "bundles": n_bundles + 1,
        "by_checkout": results,
        "load_average_1min": os.getloadavg()[0],
        "target_s": 3.0,
    }


async def upload_and_wait(page, name: str, data: bytes) -> tuple[float | None, str]:
    """Upload a clip on an open Classify page and wait for its label. Returns (seconds or None, error)."""
    try:
        start = time.perf_counter()
        upload = {"name": name, "mimeType": "audio/wav", "buffer": data}
        await page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(upload)
        heading = page.get_by_role("heading", name=re.compile(rf"^{re.escape(name)}: "))
        await heading.wait_for(timeout=120_000)
        text = (await heading.inner_text()).strip()
        seconds = time.perf_counter() - start
        if await page.get_by_test_id("stException").count() or await page.get_by_test_id("stAlert").count():
            return None, "the page showed an error"
        return (seconds, "") if RESULT.match(text) else (None, f"unexpected result {text!r}")
    except Exception as e:  # a timeout or a crashed page counts as an error of this session
        return None, f"{type(e).__name__}: {str(e).splitlines()[0]}"


async def sessions_at_once(browser, url: str, n: int, clips: list[bytes]) -> list[tuple[float | None, str]]:
    """N users with Classify open (all pages loaded first, so page loads are not timed) upload
    the clip at the same moment."""
    opened = await asyncio.gather(*(open_classify(browser, url) for _ in range(n)), return_exceptions=True)
    pages = [o for o in opened if not isinstance(o, BaseException)]
    failed = [(None, f"page did not open: {o}") for o in opened if isinstance(o, BaseException)]
    try:
        outcomes = await asyncio.gather(
            *(upload_and_wait(page, f"clip-{i}.wav", clips[i]) for i, (_, page, _) in enumerate(pages))
        )
    finally:
        for context, _, _ in pages:
            await context.close()
    return [*outcomes, *failed]


async def ws_upload_and_wait(user: StreamlitUser, name: str, data: bytes) -> tuple[float | None, str]:
    try:
        start = time.perf_counter()
        await user.upload(name, data)
        seconds = time.perf_counter() - start
        results = [h for h in user.headings if h.startswith(f"{name}: ")]
        if user.errors:
            return None, f"the page showed an error: {user.errors[0][:200]}"
        return (seconds, "") if results and RESULT.match(results[0]) else (None, f"no result in {user.headings}")
    except Exception as e:  # a dropped connection counts as an error of this session
        return None, f"{type(e).__name__}: {e}"


async def ws_sessions_at_once(url: str, n: int, clips: list[bytes]) -> list[tuple[float | None, str]]:
    """N websocket users with Classify open (connected and run first) upload the clip at once."""
    users = [StreamlitUser(url) for _ in range(n)]
    try:
        for user in users:
            await user.connect()
        await asyncio.gather(*(user.run() for user in users))
        return await asyncio.gather(*(ws_upload_and_wait(u, f"clip-{i}.wav", clips[i]) for i, u in enumerate(users)))
    finally:
        for user in users:
            await user.close()


async def load(sizes: list[int], rounds: int, client: str) -> dict:
    results = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with tempfile.TemporaryDirectory() as tmp, AppServer(Path(tmp)) as server:

            async def sessions(n: int, clips: list[bytes]) -> list[tuple[float | None, str]]:
                if client == "ws":
                    return await ws_sessions_at_once(server.url, n, clips)
                return await sessions_at_once(browser, server.url, n, clips)

            await sessions(1, [clip_bytes(0)])  # warm-up: load the model once
            seed = 1
            for n in sizes:
                times, errors = [], []
                for _ in range(rounds):
                    clips = [clip_bytes(seed * 1000 + i) for i in range(n)]  # every user a clip of their own
                    seed += 1
                    outcomes = await sessions(n, clips)
                    times += [t for t, _ in outcomes if t is not None]
                    errors += [e for t, e in outcomes if t is None]
                results[str(n)] = {
                    "sessions": n * rounds,
                    "p50_s": float(np.percentile(times, 50)) if times else None,
                    "p95_s": float(np.percentile(times, 95)) if times else None,
                    "errors": len(errors),
                    "error_examples": errors[:3],
                }
            log = server.stop()
        await browser.close()
    first, last = results[str(sizes[0])], results[str(sizes[-1])]
    ratio = last["p95_s"] / first["p50_s"] if first["p50_s"] and last["p95_s"] else None
    return {
        "client": client,
        "by_sessions": results,
        f"p95_at_{sizes[-1]}_over_p50_at_{sizes[0]}": ratio,
        "target": "0 errors at N = 16; p95 at 16 at most 8 x p50 at 1",
        "server_tracebacks": log.count("Traceback"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p_paint = sub.add_parser("paint")
    p_paint.add_argument("--servers", type=int, default=3)
    p_paint.add_argument("--loads", type=int, default=5)
    p_explore = sub.add_parser("explore")
    p_explore.add_argument("--corpus", type=Path, default=None, help="default: the bundled demo corpus")
    p_explore.add_argument("--loads", type=int, default=5)
    p_train = sub.add_parser("train")
    p_train.add_argument("--bundles", type=int, default=20)
    p_train.add_argument("--loads", type=int, default=5)
    p_train.add_argument(
        "--compare", type=Path, action="append", default=[],
        help="another checkout to load in turn with this one (say the code before a change)",
    )  # fmt: skip
    p_load = sub.add_parser("load")
    p_load.add_argument("--sessions", default="1,4,16")
    p_load.add_argument("--rounds", type=int, default=5)
    p_load.add_argument("--repeats", type=int, default=3, help="whole runs, each on a fresh server")
    p_load.add_argument(
        "--client", choices=["ws", "chromium"], default="ws",
        help="ws: headless Streamlit users over the websocket (measures the server); chromium: browser tabs",
    )  # fmt: skip
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    if args.what == "paint":
        emit("first_paint", asyncio.run(paint(args.servers, args.loads)))
    elif args.what == "explore":
        emit("explore", asyncio.run(explore(args.corpus, args.loads)))
    elif args.what == "train":
        emit("train_page", asyncio.run(train(args.bundles, args.loads, [ROOT, *(c.resolve() for c in args.compare)])))
    else:
        sizes = [int(n) for n in args.sessions.split(",")]
        runs = [asyncio.run(load(sizes, args.rounds, args.client)) for _ in range(args.repeats)]
        key = f"p95_at_{sizes[-1]}_over_p50_at_{sizes[0]}"
        summary = {
            "rounds": args.rounds,
            "repeats": args.repeats,
            f"{key}_median": statistics.median(r[key] for r in runs),
            f"{key}_runs": [r[key] for r in runs],
            "errors": sum(v["errors"] for r in runs for v in r["by_sessions"].values()),
            "runs": runs,
        }
        emit("load" if args.client == "ws" else "load-chromium", summary)


if __name__ == "__main__":
    main()
