"""The work of a refresh or backfill, as plain functions (the Prefect tasks wrap these).

- :func:`discover` walks org → projects/cohorts → patients → devices → streams.
- :func:`plan_chunks` turns streams and watermarks into :class:`~rune_io.plan.Chunk` s.
- :func:`plan_units` packs chunks into tasks of similar cost (rates learnt from the catalog).
- :func:`run_chunk` fetches each window of a chunk and writes its lake partition;
  :func:`run_unit` runs a unit's chunks.
- :func:`summarize` folds chunk results into a :class:`RunReport`.

Events are planned and run like a stream: each patient's events are a pseudo-stream
with id ``events/<patient_id>`` whose partitions are the ``events`` table's months and
whose time span is that of the patient's streams.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from rune_io import discovery
from rune_io.arrow_schema import stream_schema
from rune_io.errors import (
    DataError,
    RuneIOError,
    TransientError,
    is_transient,
)
from rune_io.lake.layout import EVENTS_TABLE, granularity, partition_of, table_name
from rune_io.lake.storage import Lake
from rune_io.lake.writer import write_events, write_stream_partition
from rune_io.models import Patient, StreamMeta, StreamType
from rune_io.plan import (
    Chunk,
    Window,
    WorkUnit,
    advance_watermark,
    chunk_windows,
    pack_chunks,
    plan_refresh,
)

log = logging.getLogger("rune_io.sync")

EVENTS_PREFIX = "events/"


# -- discovery -------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which part of the cohort a run covers; empty fields mean "all"."""

    org_id: str | None = None
    projects: tuple[str, ...] = ()
    cohorts: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    measurements: tuple[str, ...] = ()
    device_types: tuple[str, ...] = ()
    stream_ids: tuple[str, ...] = ()
    include_events: bool = True

    def describe(self) -> str:
        parts = [
            f"{k}={','.join(v) if isinstance(v, tuple) else v}"
            for k, v in asdict(self).items()
            if v and k != "include_events"
        ]
        return " ".join(parts) or "whole active org"


def select_patients(graph, sel: Selection) -> list[Patient]:
    """Patients of the selection, in a stable order (see :mod:`rune_io.discovery`)."""
    return discovery.select_patients(graph, sel)


def discover(
    graph,
    sel: Selection,
    *,
    concurrency: int | None = None,
    progress: discovery.Progress | None = None,
) -> tuple[list[Patient], list[StreamMeta]]:
    """Patients and streams of a selection, requests overlapped (:mod:`rune_io.discovery`)."""
    patients, streams = discovery.discover(graph, sel, concurrency=concurrency, progress=progress)
    log.info("discovered %d patients, %d streams (%s)", len(patients), len(streams), sel.describe())
    return patients, streams


# -- planning --------------------------------------------------------------------------


def is_events(stream: StreamMeta) -> bool:
    return stream.id.startswith(EVENTS_PREFIX)


def events_stream(patient_id: str, streams: Iterable[StreamMeta]) -> StreamMeta | None:
    """The events pseudo-stream of a patient, spanning the patient's streams' data."""
    mine = [s for s in streams if s.patient_id == patient_id and s.min_time is not None]
    if not mine:
        return None
    return StreamMeta(
        id=f"{EVENTS_PREFIX}{patient_id}",
        patient_id=patient_id,
        device_id="",
        algorithm="",
        stream_type=StreamType(id="event", name="event"),
        parameters=(("category", "events"), ("measurement", "events")),
        min_time=min(s.min_time for s in mine if s.min_time is not None),
        max_time=max(s.max_time for s in mine if s.max_time is not None),
    )


def lake_table(stream: StreamMeta) -> str:
    return EVENTS_TABLE if is_events(stream) else table_name(stream)


def lake_partitioning(stream: StreamMeta, t: datetime) -> tuple[datetime, datetime]:
    """The lake partition (day or month) of ``stream``'s table holding ``t``."""
    p = partition_of(lake_table(stream), t)
    return p.start, p.end


def work_streams(
    patients: Sequence[Patient], streams: Sequence[StreamMeta], include_events: bool
) -> list[StreamMeta]:
    """Data streams plus, when asked, each patient's events pseudo-stream."""
    out = list(streams)
    if include_events:
        for p in patients:
            ev = events_stream(p.id, streams)
            if ev is not None:
                out.append(ev)
    return out


def plan_chunks(
    streams: Sequence[StreamMeta],
    watermarks: Mapping[str, datetime],
    *,
    lookback_days: int = 0,
    since: datetime | None = None,
    chunk_days: int = 7,
) -> list[Chunk]:
    """Chunks of an incremental refresh of ``streams``."""
    windows: list[Window] = []
    for s in streams:
        windows += plan_refresh(
            s,
            watermarks.get(s.id),
            lookback_days=lookback_days,
            since=since,
            partitioning=lake_partitioning,
        )
    return chunk_windows(windows, chunk_days)


#: Rows per day assumed for a stream the catalog has not seen yet, by table (fnmatch),
#: first match wins. After its first load, a stream's measured rate replaces the prior.
ROWS_PER_DAY_PRIOR: tuple[tuple[str, float], ...] = (
    ("*__acceleration", 4_320_000),  # 50 Hz watch motion
    ("vitals__*", 20_000),
    (EVENTS_TABLE, 50),
)
#: Priors of other tables: daily tables are assumed fast, monthly ones slow.
DAILY_PRIOR, MONTHLY_PRIOR = 1_000_000.0, 2_000.0
#: Rows a task aims at: light chunks of one patient are packed up to this.
TASK_ROWS = 2_000_000


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
        key = f["stream_id"] or f"{EVENTS_PREFIX}{f['patient_id']}"
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
    streams: Mapping[str, StreamMeta],
    rates: Mapping[str, float],
    *,
    task_rows: float = TASK_ROWS,
) -> list[WorkUnit]:
    """Pack chunks into tasks: a heavy chunk (e.g. a week of 50 Hz) runs alone; a
    patient's light chunks (symptoms, LFP trends, heart rate, events) share one task, so
    per-task orchestration stays small next to the work."""

    def cost(c: Chunk) -> float:
        s = streams[c.stream_id]
        rate = rates.get(s.id, _prior(lake_table(s)))
        return rate * sum((w.end - w.start) / timedelta(days=1) for w in c.windows)

    return pack_chunks(chunks, cost, task_rows, group=lambda c: streams[c.stream_id].patient_id)


# -- execution -------------------------------------------------------------------------


@dataclass
class ChunkResult:
    """What one chunk did: small and picklable (it crosses process boundaries)."""

    stream_id: str
    table: str
    patient_id: str
    landed: list[Window] = field(default_factory=list)
    rows: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failed_window: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _fetch_window(client, lake: Lake, stream: StreamMeta, w: Window, run_id: str):
    if is_events(stream):
        events = client.graph.events(stream.patient_id, w.start, w.end)
        return write_events(
            lake,
            stream.patient_id,
            w.start,
            events,
            run_id=run_id,
            replace_empty=True,
            bounds=(stream.min_time, stream.max_time),
        )
    try:
        stream_schema(stream.stream_type)
    except ValueError as exc:  # a stream type this version cannot store: not transient
        raise DataError(f"stream {stream.id} window {w}: {exc}") from None
    batches = client.streams.read(stream, w.start, w.end)
    return write_stream_partition(lake, stream, w.start, batches, run_id=run_id, replace_empty=True)


def run_chunk(client, lake: Lake, stream: StreamMeta, chunk: Chunk, run_id: str) -> ChunkResult:
    """Fetch and write every window of ``chunk``, in order.

    A transient failure (throttling, 5xx, network, truncated page) that outlived the HTTP
    retries propagates, so the caller (a Prefect task) may retry the chunk; rewriting
    its windows is idempotent. Any other failure stops the chunk and is reported in the
    result, with the windows that landed before it.
    """
    res = ChunkResult(stream.id, lake_table(stream), stream.patient_id)
    t0 = time.perf_counter()
    for w in chunk.windows:
        try:
            entry = _fetch_window(client, lake, stream, w, run_id)
        except RuneIOError as exc:
            if is_transient(exc):
                raise
            res.failed_window, res.error = str(w), f"{type(exc).__name__}: {exc}"
            log.error("window %s failed: %s", w, res.error)
            break
        res.landed.append(w)
        if entry is not None:
            res.rows += entry.rows
            res.files += 1
            res.bytes += entry.bytes
    res.seconds = time.perf_counter() - t0
    log.info(
        "%s %s: %d windows, %d rows, %d files",
        res.table,
        chunk.label,
        len(res.landed),
        res.rows,
        res.files,
    )
    return res


class UnitIncomplete(TransientError):
    """Some chunks of a unit failed transiently; the others landed.

    ``results`` has one :class:`ChunkResult` per chunk of the unit, the failed ones with
    their error. Transient, so the task is retried; a retry skips the chunks that landed.
    """

    def __init__(self, message: str, results: list[ChunkResult]) -> None:
        super().__init__(message)
        self.results = results

    def __reduce__(self):  # crosses process boundaries (Dask)
        return (UnitIncomplete, (str(self), self.results))


def run_unit(
    client,
    lake: Lake,
    streams: Mapping[str, StreamMeta],
    unit: WorkUnit,
    run_id: str,
    landed: dict[int, ChunkResult] | None = None,
) -> list[ChunkResult]:
    """Run a unit's chunks in order (see :func:`run_chunk`), one result per chunk.

    A chunk failing transiently does not stop the others: they run, then
    :class:`UnitIncomplete` is raised so the caller may retry the unit. ``landed`` (kept
    by the caller across retries) records finished chunks by index; they are skipped.
    """
    landed = {} if landed is None else landed
    results: list[ChunkResult] = []
    failed: list[str] = []
    for i, c in enumerate(unit.chunks):
        if i in landed:
            results.append(landed[i])
            continue
        stream = streams[c.stream_id]
        try:
            res = run_chunk(client, lake, stream, c, run_id)
        except RuneIOError as exc:  # transient: run_chunk reports the others itself
            err = f"{type(exc).__name__}: {exc}"
            res = ChunkResult(stream.id, lake_table(stream), stream.patient_id)
            res.failed_window, res.error = c.label, err
            failed.append(f"{c.stream_id}: {err}")
            results.append(res)
            continue
        landed[i] = res
        results.append(res)
    if failed:
        raise UnitIncomplete(
            f"{len(failed)} of {len(unit.chunks)} chunks failed transiently: " + "; ".join(failed),
            results,
        )
    return results


# -- reporting -------------------------------------------------------------------------


@dataclass
class RunReport:
    """The outcome of one run: per-table totals and every failure, by stream name."""

    run_id: str
    kind: str
    streams: int = 0
    checked: int = 0
    chunks: int = 0
    tasks: int = 0
    windows_planned: int = 0
    windows_landed: int = 0
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    storage_retries: int = 0  # object-store attempts retried (S3 throttling, 5xx)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def rows(self) -> int:
        return sum(t["rows"] for t in self.tables.values())

    def table_rows(self) -> list[dict[str, object]]:
        """Rows of the run's table artifact: one per lake table, then one per failure."""
        out: list[dict[str, object]] = [
            {"table": name, **totals, "status": "ok"}
            for name, totals in sorted(self.tables.items())
        ]
        out += [
            {
                "table": f["table"],
                "rows": 0,
                "files": 0,
                "bytes": 0,
                "status": f"FAILED {f['stream']}: {f['error']}",
            }
            for f in self.failures
        ]
        return out

    def text(self) -> str:
        if not self.windows_planned and not self.failures:
            return (
                f"run {self.run_id} ({self.kind}): up to date: {self.checked} streams checked, "
                f"nothing to fetch, {self.seconds:.1f}s"
            )
        lines = [
            f"run {self.run_id} ({self.kind}): {self.windows_landed}/{self.windows_planned} windows "
            f"landed in {self.chunks} chunks ({self.tasks} tasks) over {self.streams} streams, {self.rows:,} rows, "
            f"{self.seconds:.1f}s"
            + (f", storage retries: {self.storage_retries}" if self.storage_retries else "")
        ]
        for name, t in sorted(self.tables.items()):
            lines.append(
                f"  {name:<32} {t['rows']:>12,} rows {t['files']:>6} files {t['bytes']:>14,} B"
            )
        for f in self.failures:
            lines.append(f"  FAILED {f['table']} stream {f['stream']} {f['window']}: {f['error']}")
        return "\n".join(lines)


def summarize(
    run_id: str,
    kind: str,
    chunks: Sequence[Chunk],
    results: Sequence[ChunkResult | BaseException],
    streams: Mapping[str, StreamMeta],
) -> RunReport:
    """Fold chunk outcomes (a result, or the exception a chunk died with) into a report."""
    rep = RunReport(run_id, kind, streams=len({c.stream_id for c in chunks}), chunks=len(chunks))
    rep.windows_planned = sum(len(c.windows) for c in chunks)
    for chunk, res in zip(chunks, results, strict=True):
        stream = streams[chunk.stream_id]
        table = lake_table(stream)
        totals = rep.tables.setdefault(table, {"rows": 0, "files": 0, "bytes": 0})
        if isinstance(res, BaseException):
            rep.failures.append(
                {
                    "table": table,
                    "stream": chunk.stream_id,
                    "window": chunk.label,
                    "error": f"{type(res).__name__}: {res}",
                }
            )
            continue
        rep.windows_landed += len(res.landed)
        totals["rows"] += res.rows
        totals["files"] += res.files
        totals["bytes"] += res.bytes
        if not res.ok:
            rep.failures.append(
                {
                    "table": table,
                    "stream": res.stream_id,
                    "window": res.failed_window or "",
                    "error": res.error or "",
                }
            )
    return rep


def new_watermarks(
    current: Mapping[str, datetime],
    streams: Mapping[str, StreamMeta],
    results: Iterable[ChunkResult | BaseException],
    *,
    may_start: Callable[[StreamMeta, list[Window]], bool] = lambda s, ws: True,
) -> dict[str, datetime]:
    """Watermarks moved over the windows that landed (see :func:`advance_watermark`)."""
    landed: dict[str, list[Window]] = {}
    for res in results:
        if isinstance(res, ChunkResult):
            landed.setdefault(res.stream_id, []).extend(res.landed)
    out: dict[str, datetime] = {}
    for sid, ws in landed.items():
        cur = current.get(sid)
        if cur is None and not may_start(streams[sid], ws):
            continue
        mark = advance_watermark(cur, streams[sid], ws)
        if mark is not None and mark != cur:
            out[sid] = mark
    return out
