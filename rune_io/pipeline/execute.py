"""Running planned work: fetch each window of a chunk and write its lake partition.

:func:`run_chunk` runs one chunk's windows in order; :func:`run_unit` runs a unit's
chunks, so that one chunk's transient failure does not fail the others, and retries
the chunks that failed transiently (:class:`UnitRetry`) before it returns. What a unit
retries is decided inside the unit, from its own results: nothing is remembered
between task runs or processes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rune_io.errors import RuneIOError, UsageError, is_transient
from rune_io.lake.records import FileRecords
from rune_io.lake.storage import Lake
from rune_io.pipeline.plan import Chunk, Window
from rune_io.pipeline.sources import Source
from rune_io.pipeline.units import WorkUnit

if TYPE_CHECKING:
    from rune_io.api.client import RuneClient

log = logging.getLogger("rune_io.pipeline")


@dataclass
class ChunkResult:
    """What one chunk did: small and picklable (it crosses process boundaries)."""

    source: Source
    landed: list[Window] = field(default_factory=list)
    rows: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failed_window: str | None = None
    error: str | None = None
    attempts: int = 1

    @property
    def key(self) -> str:
        return self.source.key

    @property
    def table(self) -> str:
        return self.source.table

    @property
    def ok(self) -> bool:
        return self.error is None


def run_chunk(
    client: RuneClient,
    lake: Lake,
    chunk: Chunk,
    run_id: str,
    into: ChunkResult | None = None,
    records: FileRecords | None = None,
) -> ChunkResult:
    """Fetch and write every window of ``chunk``, in order, into ``into`` (a new result
    if None). Windows ``into`` already has landed (they land in order) are skipped, so
    running a chunk again continues where it stopped. The files' catalog entries are
    held in ``records`` if given (the caller flushes it), else written one by one.

    A transient failure (throttling, 5xx, network, truncated page) that outlived the HTTP
    retries propagates, so the caller may run the chunk again; ``into`` keeps what landed
    before it. Any other failure stops the chunk and is reported in the result, with the
    windows that landed before it.
    """
    res = into if into is not None else ChunkResult(chunk.source)
    res.failed_window = res.error = None
    t0 = time.perf_counter()
    for w in chunk.windows[len(res.landed) :]:
        try:
            entry = chunk.source.fetch(client, lake, w, run_id, records)
        except RuneIOError as exc:
            if is_transient(exc):
                raise
            res.failed_window, res.error = str(w), f"{type(exc).__name__}: {exc}"
            log.error("window %s failed: %s", w, res.error)
            break
        finally:
            res.seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
        res.landed.append(w)
        if entry is not None:
            res.rows += entry.rows
            res.files += 1
            res.bytes += entry.bytes
    return res  # run_unit logs its chunks, one record for them all


@dataclass(frozen=True)
class UnitRetry:
    """How a unit runs again the chunks that failed transiently: after each round over
    its chunks, the failed ones wait ``delays[n]`` seconds (times a random factor in
    ``[1 - jitter, 1 + jitter]``) and run again; ``len(delays)`` retries in all. A
    chunk that still fails is reported with its error (the next run retries it)."""

    delays: tuple[float, ...] = (10.0, 60.0)
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if any(d < 0 for d in self.delays) or not 0 <= self.jitter <= 1:
            raise UsageError(
                f"UnitRetry delays must be >= 0 and jitter in [0, 1], got "
                f"delays={self.delays}, jitter={self.jitter}"
            )
        object.__setattr__(self, "delays", tuple(float(d) for d in self.delays))

    def wait(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        d = self.delays[retry - 1]
        return d * random.uniform(1 - self.jitter, 1 + self.jitter)


def run_unit(
    client: RuneClient,
    lake: Lake,
    unit: WorkUnit,
    run_id: str,
    *,
    retry: UnitRetry = UnitRetry(),
    hold: Callable[[], AbstractContextManager[object]] = nullcontext,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ChunkResult]:
    """Run a unit's chunks in order (see :func:`run_chunk`), one result per chunk.

    A chunk failing transiently does not stop the others. Once every chunk ran, those
    that failed transiently run again, after ``retry``'s waits, up to its bound; chunks
    that landed are never fetched again. ``hold()`` is held while chunks run, not while
    waiting (the caller's share of an API concurrency limit). Returns every chunk's
    result; a failed one carries its error.
    """
    results = [ChunkResult(c.source) for c in unit.chunks]
    records = FileRecords(lake, run_id)  # the unit's entries, one catalog object
    try:
        _run_rounds(client, lake, unit, run_id, results, records, retry, hold, sleep)
    except BaseException:
        try:  # what was published is recorded; failing that, its intents rebuild it
            records.flush()
        except Exception:  # noqa: BLE001 - the error in flight is the one to report
            log.warning("could not record the unit's files (the commit rebuilds them)")
        raise
    records.flush()
    _log_unit(unit, results)
    return results


def _run_rounds(
    client: RuneClient,
    lake: Lake,
    unit: WorkUnit,
    run_id: str,
    results: list[ChunkResult],
    records: FileRecords,
    retry: UnitRetry,
    hold: Callable[[], AbstractContextManager[object]],
    sleep: Callable[[float], None],
) -> None:
    pending = list(range(len(unit.chunks)))
    for attempt in range(len(retry.delays) + 1):
        if attempt:
            wait = retry.wait(attempt)
            log.warning(
                "%d of %d chunks failed transiently; retry %d of %d in %.1fs",
                len(pending),
                len(unit.chunks),
                attempt,
                len(retry.delays),
                wait,
            )
            records.flush()  # not held through the wait
            sleep(wait)
        failed: list[int] = []
        with hold():
            for i in pending:
                c, res = unit.chunks[i], results[i]
                res.attempts = attempt + 1
                try:
                    run_chunk(client, lake, c, run_id, into=res, records=records)
                except RuneIOError as exc:  # transient: run_chunk reports the others itself
                    res.failed_window = str(c.windows[len(res.landed)])
                    res.error = f"{type(exc).__name__}: {exc}"
                    log.warning("chunk %s failed transiently: %s", c.label, res.error)
                    failed.append(i)
        pending = failed
        if not pending:
            break


def _log_unit(unit: WorkUnit, results: list[ChunkResult]) -> None:
    """One record for the unit, a line per chunk: a record costs the run's process and
    the Prefect server more than its length (measured: one record per chunk, 114 in a
    demo refresh, cost ~0.1 s of its 3.2 s)."""
    failed = sum(not r.ok for r in results)
    log.info(
        "%d chunks, %d rows, %d files%s:\n%s",
        len(results),
        sum(r.rows for r in results),
        sum(r.files for r in results),
        f", {failed} failed" if failed else "",
        "\n".join(
            f"  {r.table} {c.label}: {len(r.landed)} windows, {r.rows} rows, {r.files} files"
            + ("" if r.ok else f" (failed: {r.error})")
            for c, r in zip(unit.chunks, results, strict=True)
        ),
    )
