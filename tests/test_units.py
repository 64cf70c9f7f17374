"""ser.units: levels and durations in the words a person reads: dBFS down to the silence floor, a
duration as a person writes it, and the note on a recording cut at the cap."""

from __future__ import annotations

import pytest

from ser.units import SILENCE_FLOOR_DBFS, dbfs


@pytest.mark.parametrize(
    ("amplitude", "level"), [(1.0, 0.0), (0.1, -20.0), (1e-3, -60.0), (1e-6, -120.0), (1e-9, -120.0), (0.0, -120.0)]
)
def test_dbfs_of_an_amplitude_stops_at_the_silence_floor(amplitude: float, level: float) -> None:
    assert dbfs(amplitude) == pytest.approx(level) and dbfs(amplitude) >= SILENCE_FLOOR_DBFS


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4.25, "4.25 s"), (60, "1 min"), (95.5, "1 min 36 s"), (3600, "1 h"), (3601, "1 h"), (4330, "1 h 12 min"),
     (7170, "2 h"), (7200, "2 h")],
)  # fmt: skip
def test_format_duration_reads_as_a_person_writes_it(seconds: float, text: str) -> None:
    from ser.units import format_duration

    assert format_duration(seconds) == text  # it said "1 h 0 min (3600 s)"


def test_the_note_of_a_recording_cut_at_the_cap() -> None:
    from ser.units import cut_note

    assert cut_note(3600, 4330) == "only the first hour of this 1 h 12 min recording was classified"
    assert cut_note(3600, None) == "only the first hour of this recording was classified"
    assert cut_note(7200, 9000) == "only the first 2 hours of this 2 h 30 min recording was classified"
    assert cut_note(4.0, 9.6) == "only the first 4.00 s of this 9.60 s recording was classified"
