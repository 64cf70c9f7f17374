"""ser.cli.reports: what the command line prints, progress included."""

from __future__ import annotations

import io

from ser.cli.reports import log_progress, terminal_progress


def test_progress_is_shown_when_stderr_is_not_a_terminal(monkeypatch):
    log = io.StringIO()  # `python -m ser train ... 2>train.log`: isatty() is False
    monkeypatch.setattr("sys.stderr", log)
    report = terminal_progress("features")
    for done in (1, 2, 3):
        report(done, 3)
    assert log.getvalue() == "features: 1/3 clips, 0 s\nfeatures: 3/3 clips, 0 s\n"


def test_progress_in_a_log_is_a_line_every_few_seconds_and_at_the_end():
    """A line at a pass's first clip, at most one every 5 s, one at its last; a second pass
    starts its count and its seconds again."""
    log = io.StringIO()
    now = [0.0]
    report = log_progress("features", stream=log, clock=lambda: now[0])
    for done in range(1, 1121):  # 1,120 clips in 35 s, 1/32 s each (exact in binary)
        now[0] = done / 32
        report(done, 1120)
    lines = log.getvalue().splitlines()
    assert lines[:2] == ["features: 1/1120 clips, 0 s", "features: 161/1120 clips, 5 s"]
    assert len(lines) == 8 and lines[-1] == "features: 1120/1120 clips, 35 s"
    for done in (1, 2):  # the next pass, 2 clips
        now[0] += 1
        report(done, 2)
    assert log.getvalue().splitlines()[-2:] == ["features: 1/2 clips, 0 s", "features: 2/2 clips, 1 s"]
