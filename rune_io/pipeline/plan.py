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

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from rune_io.api.models import StreamMeta
from rune_io.errors import UsageError
from rune_io.lake.layout import EVENTS_TABLE, granularity
from rune_io.pipeline.sources import Source, as_source, events_key, lake_partitioning
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


@dataclass(frozen=True)
class WorkUnit:
    """What one task runs: chunks, one after another (one heavy chunk, or several light
    chunks of one patient packed together so tiny tasks don't drown in orchestration)."""

    chunks: tuple[Chunk, ...]

    @property
    def label(self) -> str:
        if len(self.chunks) == 1:
            return self.chunks[0].label
        start = min(c.start for c in self.chunks)
        end = max(c.end for c in self.chunks)
        return f"{len(self.chunks)} chunks {start:%Y-%m-%d}..{end:%Y-%m-%d}"


def pack_chunks(
    chunks: Sequence[Chunk],
    cost: Callable[[Chunk], float],
    target: float,
    group: Callable[[Chunk], str] = lambda c: "",
) -> list[WorkUnit]:
    """Pack chunks into units of about ``target`` cost, never mixing groups.

    Greedy and order-preserving within a group: a chunk costing ``target`` or more is a
    unit of its own; lighter ones fill a unit until the next would overflow it.
    """
    if target <= 0:
        raise UsageError(f"pack target must be positive, got {target}")
    groups: dict[str, list[Chunk]] = {}
    for c in chunks:
        groups.setdefault(group(c), []).append(c)
    units: list[WorkUnit] = []
    for members in groups.values():
        current: list[Chunk] = []
        load = 0.0
        for c in members:
            k = cost(c)
            if k >= target:
                units.append(WorkUnit((c,)))
                continue
            if current and load + k > target:
                units.append(WorkUnit(tuple(current)))
                current, load = [], 0.0
            current.append(c)
            load += k
        if current:
            units.append(WorkUnit(tuple(current)))
    return units


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


# -- refresh chunks and task packing ----------------------------------------------------


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


#: Rows per day assumed for a stream the catalog has not seen yet, by table (fnmatch),
#: first match wins. After its first load, a stream's measured rate replaces the prior.
ROWS_PER_DAY_PRIOR: tuple[tuple[str, float], ...] = (
    ("*__acceleration", 4_320_000),  # 50 Hz watch motion
    ("vitals__*", 20_000),
    (EVENTS_TABLE, 50),
)
#: Priors of other tables: daily tables are assumed fast, monthly ones slow.
DAILY_PRIOR, MONTHLY_PRIOR = 1_000_000.0, 2_000.0
#: Rows a task aims at, at least: light chunks of one patient are packed up to this.
TASK_ROWS = 2_000_000
#: Rows a task aims at, at most, when a run packs to its parallelism.
TASK_ROWS_MAX = 50_000_000
#: Units per worker a run packs to. Each task run costs ~0.1 s of CPU (client and
#: Prefect server) on a 2-CPU machine; measured on the default demo cohort (5.5 M rows,
#: 4 workers, idle machine, 2026-12-02), 1 per worker (6 task runs) ends the refresh
#: ~0.3 s sooner than 2 (11) or 3 (18): the units' balance costs less than task runs.
UNITS_PER_WORKER = 1


def _prior(table: str) -> float:
    for pattern, rate in ROWS_PER_DAY_PRIOR:
        if fnmatch.fnmatchcase(table, pattern):
            return rate
    return DAILY_PRIOR if granularity(table) == "date" else MONTHLY_PRIOR


def rows_per_day(files: Iterable[Mapping]) -> dict[str, float]:
    """Measured rows per day of each stream (events: ``events/<patient>``) from catalog
    file entries: a file's rows over the days its partition has data for."""
    rows: dict[str, float] = {}
    days: dict[str, float] = {}
    for f in files:
        if f.get("deleted"):
            continue
        key = f["stream_id"] or events_key(f["patient_id"])
        if str(f["partition"]).startswith("date="):
            span = 1.0
        else:
            start, last = f["partition_start"], f["max_time"] or f["partition_start"]
            span = max(1.0, math.ceil((last - start) / timedelta(days=1)))
        rows[key] = rows.get(key, 0.0) + float(f["rows"])
        days[key] = days.get(key, 0.0) + span
    return {k: rows[k] / days[k] for k in rows}


def plan_units(
    chunks: Sequence[Chunk],
    rates: Mapping[str, float],
    *,
    task_rows: float = TASK_ROWS,
    parallelism: int | None = None,
) -> list[WorkUnit]:
    """Pack chunks into tasks: a heavy chunk (e.g. a week of 50 Hz) runs alone; a
    patient's light chunks (symptoms, LFP trends, heart rate, events) share one task, so
    per-task orchestration stays small next to the work. ``rates``: rows per day by
    source key (:func:`rows_per_day`); a source without one gets its table's prior.

    With ``parallelism`` (the run's workers), a unit aims at the run's rows over
    ``UNITS_PER_WORKER`` units per worker, between ``task_rows`` and ``TASK_ROWS_MAX``:
    a small run gets about one unit per worker, not one task per stream (each task run
    costs ~0.1 s of CPU), and a patient's chunks still never share a unit with another's.

    The heaviest units come first (longest processing time first, stable): workers take
    them in this order, so a run does not end on one worker finishing a big unit that
    started last while the others idle."""

    costs = {
        id(c): rates.get(c.key, _prior(c.source.table))
        * sum((w.end - w.start) / timedelta(days=1) for w in c.windows)
        for c in chunks
    }  # once per chunk: the target, the packing and the order all use them

    def cost(c: Chunk) -> float:
        return costs[id(c)]

    target = task_rows
    if parallelism:
        share = sum(costs.values()) / (UNITS_PER_WORKER * max(1, parallelism))
        target = min(max(task_rows, share), max(task_rows, TASK_ROWS_MAX))
    units = pack_chunks(chunks, cost, target, group=lambda c: c.source.patient_id)
    return sorted(units, key=lambda u: -sum(cost(c) for c in u.chunks))
