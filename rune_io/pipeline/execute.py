"""Running planned work: fetch each window of a chunk and write its lake partition.

:func:`run_chunk` runs one chunk's windows in order; :func:`run_unit` runs a unit's
chunks, so that one chunk's transient failure does not fail the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from rune_io.api.arrow_schema import stream_schema
from rune_io.api.models import StreamMeta
from rune_io.errors import DataError, RuneIOError, TransientError, is_transient
from rune_io.lake.storage import Lake
from rune_io.lake.writer import write_events, write_stream_partition
from rune_io.pipeline.plan import Chunk, Window, WorkUnit
from rune_io.pipeline.sources import is_events, lake_table

log = logging.getLogger("rune_io.pipeline")


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
            only_changed=w.only_changed,
        )
    try:
        stream_schema(stream.stream_type)
    except ValueError as exc:  # a stream type this version cannot store: not transient
        raise DataError(f"stream {stream.id} window {w}: {exc}") from None
    batches = client.streams.read(stream, w.start, w.end)
    return write_stream_partition(
        lake, stream, w.start, batches, run_id=run_id, replace_empty=True,
        only_changed=w.only_changed,
    )  # fmt: skip


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
