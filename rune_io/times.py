"""UTC time handling: one conversion for every time argument, and day windows.

Every time argument in ``rune_io`` goes through :func:`to_utc`. It accepts timezone-aware
datetimes, dates (UTC midnight, never local midnight), unix seconds and ISO 8601
strings with an offset. Naive datetimes are rejected: guessing a timezone is how data
ends up shifted by hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from rune_io.errors import UsageError, UsageTypeError

#: Anything :func:`to_utc` accepts.
TimeLike = datetime | date | int | float | str

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_utc(value: TimeLike) -> datetime:
    """A timezone-aware UTC datetime from a datetime, date, unix seconds or ISO string.

    - aware ``datetime``: converted to UTC;
    - naive ``datetime``: rejected (``ValueError``), never assumed local;
    - ``date``: midnight UTC of that day;
    - ``int``/``float``: unix seconds;
    - ``str``: ISO 8601 with an offset or ``Z`` (``2024-05-01T00:00:00Z``), or a bare
      date (``2024-05-01``, midnight UTC); naive date-times are rejected.
    """
    if isinstance(value, bool):
        raise UsageTypeError(
            "a time must be a datetime, date, unix seconds or ISO string, not bool"
        )
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise UsageError(
                f"naive datetime {value.isoformat()} has no timezone; pass an aware datetime "
                "(e.g. datetime(..., tzinfo=datetime.UTC)) - rune_io never assumes local time"
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)):
        return EPOCH + timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                return to_utc(date.fromisoformat(text))
            except ValueError:
                pass
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UsageError(f"cannot parse time {value!r}: expected ISO 8601") from None
        return to_utc(parsed)
    raise UsageTypeError(
        f"a time must be a datetime, date, unix seconds or ISO string, not {type(value).__name__}"
    )


def to_unix_ns(value: TimeLike) -> int:
    """Exact unix nanoseconds of a time (integer arithmetic; no float rounding)."""
    return ((to_utc(value) - EPOCH) // _ONE_US) * 1000


def to_unix(value: TimeLike) -> float:
    """Unix seconds of a time, as a float."""
    return to_utc(value).timestamp()


def windows(start: TimeLike, end: TimeLike, span: timedelta) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end)`` into consecutive windows of at most ``span``."""
    if span <= timedelta(0):
        raise UsageError(f"windows(): span must be positive, got {span}")
    lo, hi = to_utc(start), to_utc(end)
    out: list[tuple[datetime, datetime]] = []
    while lo < hi:
        nxt = min(lo + span, hi)
        out.append((lo, nxt))
        lo = nxt
    return out
