"""UTC conversion and day windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from rune_io.times import to_unix_ns, to_utc, windows
from tests.rune_io.conftest import day_windows

T0 = datetime(2024, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        T0,
        datetime(2024, 3, 9, 16, tzinfo=timezone(timedelta(hours=-8))),
        date(2024, 3, 10),
        T0.timestamp(),
        int(T0.timestamp()),
        "2024-03-10",
        "2024-03-10T00:00:00Z",
        "2024-03-10T01:00:00+01:00",
    ],
)
def test_to_utc(value):
    out = to_utc(value)
    assert out == T0 and out.tzinfo is UTC


def test_date_is_utc_midnight_not_local(monkeypatch):
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    assert to_utc(date(2024, 1, 1)).timestamp() == 1704067200


@pytest.mark.parametrize("value", [datetime(2024, 1, 1), "2024-01-01T00:00:00"])
def test_naive_rejected(value):
    with pytest.raises(ValueError, match="never assumes local"):
        to_utc(value)


@pytest.mark.parametrize("value", [True, None, [1]])
def test_bad_types(value):
    with pytest.raises(TypeError):
        to_utc(value)


def test_bad_string():
    with pytest.raises(ValueError, match="ISO 8601"):
        to_utc("yesterday")


def test_unix_ns_exact():
    t = datetime(2024, 3, 10, 0, 0, 0, 123456, tzinfo=UTC)
    assert to_unix_ns(t) == 1710028800_123456000
    assert to_unix_ns(0) == 0


def test_day_windows_aligned_and_partial():
    start = datetime(2024, 3, 10, 18, tzinfo=UTC)
    end = datetime(2024, 3, 13, 6, tzinfo=UTC)
    w = day_windows(start, end)
    assert w == [
        (start, datetime(2024, 3, 11, tzinfo=UTC)),
        (datetime(2024, 3, 11, tzinfo=UTC), datetime(2024, 3, 12, tzinfo=UTC)),
        (datetime(2024, 3, 12, tzinfo=UTC), datetime(2024, 3, 13, tzinfo=UTC)),
        (datetime(2024, 3, 13, tzinfo=UTC), end),
    ]
    assert day_windows(date(2024, 3, 10), date(2024, 3, 12)) == [
        (T0, T0 + timedelta(days=1)),
        (T0 + timedelta(days=1), T0 + timedelta(days=2)),
    ]


def test_day_windows_empty_and_inverted():
    assert day_windows(T0, T0) == []
    assert day_windows(T0 + timedelta(days=1), T0) == []


def test_day_windows_from_other_timezone():
    tz = timezone(timedelta(hours=9))
    w = day_windows(datetime(2024, 3, 10, 12, tzinfo=tz), datetime(2024, 3, 11, 12, tzinfo=tz))
    assert [a.hour for a, _ in w] == [3, 0]


def test_windows_span():
    w = windows(T0, T0 + timedelta(days=200), timedelta(days=90))
    assert [(b - a).days for a, b in w] == [90, 90, 20]
    with pytest.raises(ValueError, match="span"):
        windows(T0, T0, timedelta(0))
