"""Live: the time from pressing START to the first emotion readout, in Chromium with a fake microphone.

    .venv/bin/python bench/live.py [--loads 5] [--servers 2]

For each of ``--servers`` fresh servers, ``--loads`` visits of the Live page in new browser
contexts: each presses START (Chromium's fake microphone plays the example clips, a RAVDESS actor,
on a loop, speaking from its first sample) and times, from the click, (a) the "listening…" state
and (b) the first readout (an emotion and its percentage), then presses STOP. The first visit of
a server (cold: the model and the detectors load) is reported apart from the later ones; medians
over all of them.
Target (issue 12): the first readout within 3 s of START (median), with "listening…" shown until then.

Needs Debian's chromium and playwright (both installed for `make test` by .ci/run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from appserver import CHROMIUM, CHROMIUM_ARGS, AppServer
from common import ROOT, emit
from playwright.async_api import async_playwright

EMOTIONS = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
READOUT = re.compile(rf"^({'|'.join(EMOTIONS)}) \(\d+%\)$")
TARGET_S = 3.0


def microphone_wav(path: Path) -> Path:
    """The example clips of one actor, end to end, as the 16-bit WAV the fake microphone loops:
    the speaker talks as soon as START is pressed (the first clip's leading silence is cut)."""
    import ser  # noqa: F401  (loads the native libraries in the order the app does)
    from ser.audio.load import load_audio
    from ser.audio.speech import speech_bounds

    clips = [load_audio(c) for c in sorted((ROOT / "assets" / "examples").glob("*.flac"))]
    clips[0] = clips[0][speech_bounds(clips[0])[0] :]
    sf.write(path, np.concatenate(clips), 16_000, subtype="PCM_16")
    return path


async def press_start(context, url: str) -> tuple[float, float]:
    """(seconds to "listening…", seconds to the first readout), both from the click on START."""
    page = await context.new_page()
    page.set_default_timeout(90_000)
    await page.goto(f"{url}/live")
    await page.get_by_text("microphone off").wait_for()
    start = page.frame_locator("iframe[title*='streamlit_webrtc']").first.get_by_role("button", name="START")
    await start.wait_for()
    clicked = time.perf_counter()
    await start.click()
    await page.get_by_text("listening…").first.wait_for()
    listening = time.perf_counter() - clicked
    await page.get_by_role("heading", name=READOUT).wait_for()
    readout = time.perf_counter() - clicked
    stop = page.frame_locator("iframe[title*='streamlit_webrtc']").first.get_by_role("button", name="STOP")
    await stop.click()
    await page.get_by_text("microphone off").wait_for()
    await page.close()
    return listening, readout


async def run(servers: int, loads: int) -> dict:
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        mic = microphone_wav(Path(tmp) / "mic.wav")
        args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}"]  # fmt: skip
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=args)
            for s in range(servers):
                with AppServer(Path(tmp) / f"server-{s}") as server:
                    for i in range(loads + 1):
                        context = await browser.new_context(permissions=["microphone"])
                        (cold if i == 0 else warm).append(await press_start(context, server.url))
                        await context.close()
            await browser.close()

    def summary(times: list[tuple[float, float]]) -> dict:
        listening, readout = zip(*times, strict=True)
        return {
            "n": len(times),
            "listening_s_median": round(statistics.median(listening), 3),
            "readout_s_median": round(statistics.median(readout), 3),
            "readout_s_min": round(min(readout), 3),
            "readout_s_max": round(max(readout), 3),
        }

    later = summary(warm)
    return {
        "what": "seconds from pressing START on the Live page to 'listening…' and to the first emotion readout",
        "first_visit_of_a_server": summary(cold),
        "later_visits": later,
        "target_readout_s": TARGET_S,
        "target_met": later["readout_s_median"] <= TARGET_S,
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    emit("live", asyncio.run(run(args.servers, args.loads)))


if __name__ == "__main__":
    main()
