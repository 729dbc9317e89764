"""Planning: which (stream, day) windows a run fetches, and how they are grouped.

Plain functions over :class:`~rune_io.models.StreamMeta` and watermarks; no I/O, so the
incremental rules are tested directly:

- A window is one UTC day ``[D, D+1)`` of one stream, clipped to the stream's data
  (``maxTime``) and to the run's bounds. One window is one lake partition file.
- A stream's *watermark* is the exclusive end of what is loaded, contiguously from its
  first data. A refresh starts at the UTC midnight at or before the watermark, so a day
  that was loaded only partly (the last one) is fetched again in full and its file is
  replaced, while complete days are not fetched again.
- ``lookback_days`` re-fetches that many complete days before the watermark's day, for
  data that arrives late.
- A stream whose ``maxTime`` has not moved past its watermark is skipped entirely
  (unless a lookback asks for a re-read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from rune_io.models import StreamMeta
from rune_io.windows import TimeLike, day_windows, to_utc

_DAY = timedelta(days=1)
_US = timedelta(microseconds=1)


def floor_day(t: datetime) -> datetime:
    """UTC midnight at or before ``t``."""
    t = to_utc(t)
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """``[start, end)`` of one stream inside one UTC day."""

    stream_id: str
    start: datetime
    end: datetime

    @property
    def day(self) -> date:
        return self.start.date()

    @property
    def complete(self) -> bool:
        """True when the window spans the whole UTC day."""
        return self.start == floor_day(self.start) and self.end == floor_day(self.start) + _DAY

    def __str__(self) -> str:
        return f"{self.stream_id}@{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True)
class Chunk:
    """The unit of work of one task: consecutive windows of one stream."""

    stream_id: str
    windows: tuple[Window, ...]

    @property
    def start(self) -> datetime:
        return self.windows[0].start

    @property
    def end(self) -> datetime:
        return self.windows[-1].end

    @property
    def label(self) -> str:
        return f"{self.stream_id[:12]} {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"


def data_bounds(stream: StreamMeta) -> tuple[datetime, datetime] | None:
    """``[first sample, last sample + 1 µs)`` of a stream, or None if it has no data."""
    if stream.min_time is None or stream.max_time is None:
        return None
    return to_utc(stream.min_time), to_utc(stream.max_time) + _US


def plan_refresh(
    stream: StreamMeta,
    watermark: datetime | None,
    *,
    lookback_days: int = 0,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
) -> list[Window]:
    """Windows an incremental refresh fetches for one stream.

    ``since`` bounds the first load of a never-seen stream (e.g. "only the last 30
    days"); ``until`` caps the end (defaults to the stream's ``maxTime``).
    """
    if lookback_days < 0:
        raise ValueError(f"lookback_days must be >= 0, got {lookback_days}")
    bounds = data_bounds(stream)
    if bounds is None:
        return []
    lo, hi = bounds
    if until is not None:
        hi = min(hi, to_utc(until))
    if watermark is None:
        start = floor_day(max(lo, to_utc(since)) if since is not None else lo)
    else:
        watermark = to_utc(watermark)
        if hi <= watermark and lookback_days == 0:
            return []
        start = floor_day(watermark) - lookback_days * _DAY
        if since is not None:
            start = max(start, floor_day(to_utc(since)))
    start = max(start, floor_day(lo))
    return [Window(stream.id, s, e) for s, e in day_windows(start, hi)]


def plan_backfill(
    stream: StreamMeta,
    start: TimeLike,
    end: TimeLike,
    *,
    existing_days: Iterable[date] = (),
    overwrite: bool = False,
) -> list[Window]:
    """Windows a backfill of ``[start, end)`` fetches for one stream.

    Day-aligned: the days touched by ``[start, end)`` are fetched whole (a partition
    file is always a whole day, or the day up to ``maxTime``). Without ``overwrite``,
    days already in the lake (``existing_days``) are skipped.
    """
    bounds = data_bounds(stream)
    if bounds is None:
        return []
    lo, hi = bounds
    s = max(floor_day(to_utc(start)), floor_day(lo))
    e = min(to_utc(end), hi)
    if e > floor_day(e):
        e = min(floor_day(e) + _DAY, hi)
    skip = set() if overwrite else set(existing_days)
    return [Window(stream.id, a, b) for a, b in day_windows(s, e) if a.date() not in skip]


def chunk_windows(windows: Sequence[Window], max_days: int) -> list[Chunk]:
    """Group each stream's consecutive windows into chunks of at most ``max_days``."""
    if max_days < 1:
        raise ValueError(f"chunk size must be at least 1 day, got {max_days}")
    by_stream: dict[str, list[Window]] = {}
    for w in windows:
        by_stream.setdefault(w.stream_id, []).append(w)
    chunks: list[Chunk] = []
    for sid, ws in by_stream.items():
        ws.sort(key=lambda w: w.start)
        for i in range(0, len(ws), max_days):
            chunks.append(Chunk(sid, tuple(ws[i : i + max_days])))
    return chunks


def advance_watermark(
    current: datetime | None,
    stream: StreamMeta,
    landed: Sequence[Window],
) -> datetime | None:
    """New watermark after ``landed`` windows succeeded (they need not be sorted).

    The watermark only moves over a contiguous run of landed windows that starts at or
    before it (or at the stream's first data day when there is none): a gap, such as a
    failed day, stops it, so the next refresh fetches from the gap.
    """
    bounds = data_bounds(stream)
    if bounds is None or not landed:
        return current
    mark = current if current is not None else floor_day(bounds[0])
    for w in sorted(landed, key=lambda w: w.start):
        if w.start > mark:
            break
        mark = max(mark, w.end)
    if current is not None and mark <= current:
        return current
    if current is None and mark == floor_day(bounds[0]):
        return None
    return mark


def landed_by_stream(windows: Iterable[Window]) -> Mapping[str, list[Window]]:
    out: dict[str, list[Window]] = {}
    for w in windows:
        out.setdefault(w.stream_id, []).append(w)
    return out
