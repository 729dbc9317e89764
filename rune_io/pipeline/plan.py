"""Planning: which (stream, partition) windows a run fetches, and how they are grouped.

Plain functions over sources (:mod:`rune_io.pipeline.sources`: a stream, or a patient's
events; a :class:`~rune_io.api.models.StreamMeta` is taken as its stream's source) and
watermarks; no I/O, so the incremental rules are tested directly:

- A window is one lake partition of one stream (a UTC day, or a UTC month for low-rate
  tables: the ``partitioning`` argument says which), clipped to the stream's data
  (``maxTime``) and to the run's bounds. One window is one lake file, always rewritten
  whole.
- A stream's *watermark* is the exclusive end of what is loaded, contiguously from its
  first data. A refresh starts at the start of the partition holding the watermark, so
  a partition that was loaded only partly (the last one) is fetched again in full and
  its file is replaced, while complete partitions are not fetched again.
- ``lookback_days`` moves that start back by as many days (to the start of the
  partition holding that instant), for data that arrives late.
- A stream whose ``maxTime`` has not moved past its watermark is skipped entirely
  (unless a lookback asks for a re-read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from rune_io.api.models import StreamMeta
from rune_io.errors import UsageError
from rune_io.pipeline.sources import Source, as_source, lake_partitioning
from rune_io.times import TimeLike, to_utc

_DAY = timedelta(days=1)
_US = timedelta(microseconds=1)

#: What planning takes: a source, or a stream's metadata (its stream's source).
Planned = Source | StreamMeta
#: ``partitioning(source, t) -> (start, end)``: the lake partition of ``source`` holding ``t``.
Partitioning = Callable[[Source, datetime], tuple[datetime, datetime]]


def floor_day(t: datetime) -> datetime:
    """UTC midnight at or before ``t``."""
    t = to_utc(t)
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


def daily(source: Source, t: datetime) -> tuple[datetime, datetime]:
    """Default partitioning: the UTC day holding ``t``."""
    start = floor_day(t)
    return start, start + _DAY


def split(
    source: Planned, start: datetime, end: datetime, partitioning: Partitioning = daily
) -> list[Window]:
    """``[start, end)`` cut at partition boundaries (``start`` need not be aligned)."""
    src = as_source(source)
    out: list[Window] = []
    cur = start
    while cur < end:
        p_end = partitioning(src, cur)[1]
        nxt = min(p_end, end)
        out.append(Window(src.key, cur, nxt, complete=(nxt == p_end)))
        cur = nxt
    return out


@dataclass(frozen=True)
class Window:
    """``[start, end)`` of one source inside one lake partition."""

    key: str  # the source's (catalog key), for messages
    start: datetime
    end: datetime
    complete: bool = True  # spans its whole partition (False: cut short by maxTime)
    only_changed: bool = False  # write only if the rows differ from the file's (overwrite)

    @property
    def day(self) -> date:
        """The UTC date the window starts on: names its partition."""
        return self.start.date()

    def __str__(self) -> str:
        return f"{self.key}@{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True)
class Chunk:
    """Consecutive windows of one source, and the source (all a worker needs of it)."""

    source: Source
    windows: tuple[Window, ...]

    @property
    def key(self) -> str:
        return self.source.key

    @property
    def start(self) -> datetime:
        return self.windows[0].start

    @property
    def end(self) -> datetime:
        return self.windows[-1].end

    @property
    def label(self) -> str:
        return f"{self.key[:12]} {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"


def data_bounds(stream: Planned) -> tuple[datetime, datetime] | None:
    """``[first sample, last sample + 1 µs)`` of a source, or None if it has no data."""
    if stream.min_time is None or stream.max_time is None:
        return None
    return to_utc(stream.min_time), to_utc(stream.max_time) + _US


def plan_refresh(
    stream: Planned,
    watermark: datetime | None,
    *,
    lookback_days: int = 0,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    partitioning: Partitioning = daily,
) -> list[Window]:
    """Windows an incremental refresh fetches for one stream.

    ``since`` bounds the first load of a never-seen stream (e.g. "only the last 30
    days"); ``until`` caps the end (defaults to the stream's ``maxTime``).
    """
    if lookback_days < 0:
        raise UsageError(f"lookback_days must be >= 0, got {lookback_days}")
    src = as_source(stream)
    bounds = data_bounds(src)
    if bounds is None:
        return []
    lo, hi = bounds
    if until is not None:
        hi = min(hi, to_utc(until))
    if watermark is None:
        start = max(lo, to_utc(since)) if since is not None else lo
    else:
        watermark = to_utc(watermark)
        if hi <= watermark and lookback_days == 0:
            return []
        start = min(watermark, hi - _US) - lookback_days * _DAY
        if since is not None:
            start = max(start, to_utc(since))
    start = max(start, lo)
    return split(src, partitioning(src, start)[0], hi, partitioning)


def plan_backfill(
    stream: Planned,
    start: TimeLike,
    end: TimeLike,
    *,
    existing: Iterable[datetime] = (),
    overwrite: bool = False,
    partitioning: Partitioning = daily,
) -> list[Window]:
    """Windows a backfill of ``[start, end)`` fetches for one stream.

    Partition-aligned: every partition touched by ``[start, end)`` is fetched whole (a
    file always holds its whole partition, up to ``maxTime``). Without ``overwrite``,
    partitions already in the lake (``existing``: their start instants) are skipped.
    """
    src = as_source(stream)
    bounds = data_bounds(src)
    if bounds is None:
        return []
    lo, hi = bounds
    s, e = max(to_utc(start), lo), min(to_utc(end), hi)
    if s >= e:
        return []
    s = partitioning(src, s)[0]
    e = min(partitioning(src, e - _US)[1], hi)
    skip = set() if overwrite else {to_utc(t) for t in existing}
    windows = [w for w in split(src, s, e, partitioning) if w.start not in skip]
    # --overwrite replaces exactly the partitions whose content changed upstream
    return [replace(w, only_changed=True) for w in windows] if overwrite else windows


def covers(
    stream: Planned,
    partition: tuple[datetime, datetime],
    fetched: tuple[TimeLike | None, TimeLike | None],
    until: TimeLike,
) -> bool:
    """Whether a partition's file holds all the data the stream now has in
    ``[partition start, min(partition end, until))``.

    ``fetched`` is the stream's upstream span (``minTime``, ``maxTime``) when the file was
    fetched (a file is always fetched from its partition's start). It does not when the
    fetch stopped short (upstream's data then ended inside what is asked: an open day or
    month), or when history appeared upstream since, before what the fetch saw inside the
    partition (a watch uploading old days; a lake first loaded from a later start). A
    file without that record (or of another stream kind) never covers. Late samples inside
    a span upstream already reported are invisible to metadata: ``--overwrite`` (or a
    refresh lookback) re-reads those.
    """
    bounds = data_bounds(stream)
    if bounds is None:
        return True
    if fetched[0] is None or fetched[1] is None:
        return False
    lo, hi = bounds
    p_start, p_end = partition
    f_lo, f_hi = to_utc(fetched[0]), to_utc(fetched[1]) + _US
    if f_hi < min(p_end, to_utc(until), hi):
        return False
    return not (lo < f_lo and f_lo > p_start)


def chunk_windows(source: Planned, windows: Sequence[Window], max_days: int) -> list[Chunk]:
    """Cut ``source``'s windows, in time order, into chunks of at most ``max_days``."""
    if max_days < 1:
        raise UsageError(f"chunk size must be at least 1 day, got {max_days}")
    src = as_source(source)
    ws = sorted(windows, key=lambda w: w.start)
    return [Chunk(src, tuple(ws[i : i + max_days])) for i in range(0, len(ws), max_days)]


def advance_watermark(
    current: datetime | None,
    stream: Planned,
    landed: Sequence[Window],
) -> datetime | None:
    """New watermark after ``landed`` windows succeeded (they need not be sorted).

    The watermark only moves over a contiguous run of landed windows that starts at or
    before it (with no watermark yet: at the first landed window, which for a refresh is
    where the stream's data, or the run's ``since``, begins). A gap, such as a failed
    day, stops it, so the next refresh fetches from the gap. Callers decide whether a
    run may start a watermark: a backfill of a detached range must not.
    """
    bounds = data_bounds(stream)
    if bounds is None or not landed:
        return current
    mark = current if current is not None else min(w.start for w in landed)
    for w in sorted(landed, key=lambda w: w.start):
        if w.start > mark:
            break
        mark = max(mark, w.end)
    if current is not None and mark <= current:
        return current
    return mark


# -- refresh chunks ---------------------------------------------------------------------


def plan_chunks(
    sources: Sequence[Planned],
    watermarks: Mapping[str, datetime],
    *,
    lookback_days: int = 0,
    since: datetime | None = None,
    chunk_days: int = 7,
) -> list[Chunk]:
    """Chunks of an incremental refresh of ``sources`` (``watermarks`` by source key)."""
    chunks: list[Chunk] = []
    for x in sources:
        src = as_source(x)
        windows = plan_refresh(
            src,
            watermarks.get(src.key),
            lookback_days=lookback_days,
            since=since,
            partitioning=lake_partitioning,
        )
        chunks += chunk_windows(src, windows, chunk_days)
    return chunks
