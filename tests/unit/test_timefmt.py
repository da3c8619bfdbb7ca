"""``pipeline.timefmt.iso_utc``: one shape for every stored time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.timefmt import iso_utc

SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.mark.parametrize(("value", "expected"), [
    (datetime(2026, 3, 2, 12, 0, tzinfo=UTC), "2026-03-02T12:00:00.000Z"),
    (datetime(2026, 3, 2, 12, 0, 5, 123456, tzinfo=UTC), "2026-03-02T12:00:05.123Z"),
    (datetime(2026, 3, 2, 14, 0, tzinfo=timezone(timedelta(hours=2))), "2026-03-02T12:00:00.000Z"),
    (datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "2026-03-02T04:30:00.000Z"),
    (datetime(2026, 3, 2, 12, 0, 0, 999), "2026-03-02T12:00:00.000Z"),  # naive: taken as UTC
])
def test_iso_utc_is_utc_milliseconds_with_z(value, expected):
    assert iso_utc(value) == expected
    assert SHAPE.match(iso_utc(value))


def test_iso_utc_strings_sort_like_the_times():
    base = datetime(2026, 1, 1, tzinfo=UTC)
    times = [base + timedelta(milliseconds=ms) for ms in (0, 5, 999, 1000, 60_000, 86_400_000)]
    assert sorted(iso_utc(t) for t in reversed(times)) == [iso_utc(t) for t in times]
    assert datetime.fromisoformat(iso_utc(times[2]).replace("Z", "+00:00")) == times[2]
