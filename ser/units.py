"""Durations and levels as people read them: in messages, captions and the CLI's output."""

from __future__ import annotations

import math

SILENCE_FLOOR_DBFS = -120.0  # what ``dbfs`` gives for silence: amplitudes of 1e-6 of full scale and below


def format_duration(seconds: float) -> str:
    """A duration as a person writes it: 3600 -> '1 h'; 4330 -> '1 h 12 min' (seconds left out
    past an hour); 95.5 -> '1 min 36 s'; 120 -> '2 min'; 4.25 -> '4.25 s'. No zero parts."""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        minutes += secs >= 30  # to the nearest minute
        hours, minutes = hours + minutes // 60, minutes % 60
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def format_span(seconds: float) -> str:
    """A cap as said after "the first": 3600 -> 'hour', 7200 -> '2 hours', 60 -> 'minute',
    1800 -> '30 minutes', otherwise format_duration's form ('4.00 s', '1 min 30 s')."""
    for unit, name in ((3600, "hour"), (60, "minute")):
        if seconds >= unit and seconds % unit == 0:
            n = int(seconds // unit)
            return name if n == 1 else f"{n} {name}s"
    return format_duration(seconds)


def cut_note(cap_s: float, duration_s: float | None) -> str:
    """What the user is told of a recording cut at the cap (``load_audio_head``'s ``truncated``):
    'only the first hour of this 1 h 12 min recording was classified'."""
    whole = f" {format_duration(duration_s)}" if duration_s else ""
    return f"only the first {format_span(cap_s)} of this{whole} recording was classified"


def exactly(seconds: float) -> str:
    """A duration as a person reads it, with the seconds exactly where that rounds: '1 h (3601 s)'."""
    return format_duration(seconds) if seconds < 60 else f"{format_duration(seconds)} ({seconds:g} s)"


def short_seconds(duration_s: float) -> str:
    """A duration below the minimum, rounded down: 0.2999 s is '0.29', never the minimum's '0.30'."""
    return f"{math.floor(round(duration_s * 100, 6)) / 100:.2f}"


def dbfs(amplitude: float) -> float:
    """An amplitude (a peak, or an RMS level; 1.0 is full scale) in dBFS, at least SILENCE_FLOOR_DBFS.

    The one dB-of-full-scale conversion: the silence check's message, the corpus statistics'
    loudness and the Live page's level meter all read levels through it.
    """
    return 20 * math.log10(max(float(amplitude), 10 ** (SILENCE_FLOOR_DBFS / 20)))
