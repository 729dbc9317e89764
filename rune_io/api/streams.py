"""V2 stream data as Arrow record batches, page by page: the reader.

``GET {stream_url}/v2/streams/{id}?start_time_ns=..&end_time_ns=..&format=csv&timestamp=unixns``
returns one complete CSV per page (header included) and, while more pages remain, the
header ``X-Rune-Next-Page-Token``. The pages are followed by the one page loop
(:func:`rune_io.api.paginators.paginate` with a
:class:`~rune_io.api.paginators.HeaderCursor`), each read whole and parsed by
:class:`~rune_io.api.csv_page.CsvPageParser` into a record batch as it arrives. Only a
page or two is held at a time, so memory stays flat however long the window.

Parallel reads (``read(..., parallel=N)``, default ``settings.read_parallelism``): the
window is cut into contiguous time sub-windows, each paged with its own token chain by
one of ``N`` worker threads (each with its own HTTP session), and the batches come out
strictly in time order (:mod:`rune_io.api.parallel_read`). See :meth:`StreamReader.read`.

Times: the API serves 100-ns resolution; every timestamp dimension ``d`` is kept exactly
as ``d_ns`` (int64 ns) beside ``d`` (microseconds, floored, for engines).

Rows sharing a timestamp: a page boundary is the server's (its token resumes exactly
where the page ended); a parallel read's sub-windows are ``[a, b)`` on ``time``, and the
rest after the first page starts *at* the page's last time, whose rows the first page
then leaves to it (:func:`~rune_io.api.parallel_read.plan_sub_windows`), so no row is
lost or read twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urljoin

import numpy as np
import pyarrow as pa

from rune_io.api.arrow_schema import stream_schema, time_key, warn_unknown
from rune_io.api.csv_page import CsvPageParser, empty_batch
from rune_io.api.http import HttpClient, Response
from rune_io.api.models import StreamMeta
from rune_io.api.paginators import HeaderCursor, paginate
from rune_io.api.parallel_read import (
    ns_to_dt,
    plan_sub_windows,
    read_parallel,
    split_window,
    worker_http,
)
from rune_io.api.prefetch import Prefetcher
from rune_io.errors import DataError, UsageError
from rune_io.faults import crash_point
from rune_io.times import TimeLike, to_unix_ns, to_utc

__all__ = [
    "CsvPageParser",
    "StreamReader",
    "empty_batch",
    "plan_sub_windows",
    "split_window",
    "stream_path",
    "worker_http",
]

log = logging.getLogger("rune_io.api.streams")


def stream_path(stream_id: str) -> str:
    """URL path of a stream's data (the id is percent-encoded)."""
    return f"/v2/streams/{quote(stream_id, safe='')}"


class StreamReader:
    """Reads V2 stream data through a shared :class:`~rune_io.api.http.HttpClient`.

    Args:
        http: the shared client.
        stream_url: default ``http.settings.stream_url``.
        prefetch: download page ``n+1`` in a background thread while page ``n`` is
            parsed (one page ahead; memory stays a few pages).
        parallel: default of :meth:`read`'s ``parallel`` (default
            ``http.settings.read_parallelism``, else 1).
        splits_per_worker: a parallel read cuts its window into ``parallel *
            splits_per_worker`` sub-windows (small enough that a worker rarely waits
            on a full queue, see :meth:`read`).
        queue_depth: parsed pages a sub-window may hold before its worker waits.
    """

    def __init__(
        self,
        http: HttpClient,
        stream_url: str | None = None,
        *,
        prefetch: bool = True,
        parallel: int | None = None,
        splits_per_worker: int = 4,
        queue_depth: int = 4,
    ) -> None:
        self.http = http
        self.stream_url = stream_url or http.settings.stream_url
        self.prefetch = prefetch
        self.parallel = parallel or getattr(http.settings, "read_parallelism", 1) or 1
        if self.parallel < 1 or splits_per_worker < 1 or queue_depth < 1:
            raise UsageError(
                "StreamReader: parallel, splits_per_worker and queue_depth must be >= 1, got "
                f"{self.parallel}, {splits_per_worker}, {queue_depth}"
            )
        self.splits_per_worker = splits_per_worker
        self.queue_depth = queue_depth

    def url(self, stream_id: str) -> str:
        """Absolute URL of a stream's data endpoint (a path in ``stream_url`` is dropped)."""
        return urljoin(self.stream_url + "/", stream_path(stream_id))

    @staticmethod
    def _fetch(
        http: HttpClient, url: str, params: dict[str, Any], start: str | None, call: str
    ) -> Iterator[tuple[str | None, Response, bool]]:
        """Yield ``(page token sent, response, another page follows)`` per page (from
        page token ``start`` if given) through the one page loop: bodies read whole
        (truncation retried), not parsed (the prefetching consumer parses them)."""
        pager = HeaderCursor(param="page_token", start=start)
        sent = start
        for resp, _ in paginate(http, url, params, pager, call=call):
            nxt = pager.cursor
            yield sent, resp, nxt is not None
            sent = nxt

    def read(
        self,
        stream: StreamMeta,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = None,
        parallel: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches of ``[start, end)`` in time order; columns ``stream_schema(...)``.

        Sequential (``parallel=1``): one batch per page, one token chain. A page with
        no rows gives an empty batch; an empty or inverted window makes no request and
        yields nothing. ``limit`` caps the total rows (sent to the server and enforced
        here); a read with a ``limit`` is always sequential.

        Parallel (``parallel=N > 1``, default ``settings.read_parallelism``): the window
        is cut into ``N * splits_per_worker`` contiguous sub-windows of equal duration
        (``[a, b)``, so no row is in two of them), each paged with its own token chain
        by one of ``N`` worker threads. Each worker owns a ``requests.Session`` (see
        :func:`worker_http`) and parses its pages; the batches are yielded strictly in
        time order (sub-window by sub-window). Memory is bounded: at most ``N``
        sub-windows are in flight, each holding at most ``queue_depth`` parsed pages
        (bounded queue; the worker waits when it is full). Many short sub-windows rather
        than ``N`` long ones: with strict ordering and bounded queues, a worker whose
        sub-window is far ahead of the consumer would stall on its full queue, so ``N``
        long chains would overlap only ``queue_depth`` pages. Empty pages are dropped
        (one empty batch is yielded if the whole window is empty). Stopping early (or a
        failure) stops the workers and closes their sessions.

        Raises:
            DataError: a page kept failing to parse; the message names the stream,
                (sub-)window and page.
            ApiError, TransientError: see :meth:`rune_io.api.http.HttpClient.request`; from
                a parallel read they carry a note (``__notes__``) naming the stream,
                sub-window and page.
        """
        lo, hi = to_utc(start), to_utc(end)
        if lo >= hi:
            return
        if limit is not None and limit < 1:
            raise UsageError(f"limit must be >= 1 or None, got {limit}")
        workers = self.parallel if parallel is None else parallel
        if workers < 1:
            raise UsageError(f"parallel must be >= 1, got {workers}")
        lo_ns, hi_ns = to_unix_ns(lo), to_unix_ns(hi)
        warn_unknown(stream.stream_type, stream.id)
        if workers > 1 and limit is None:
            yield from self._read_adaptive(stream, lo_ns, hi_ns, workers)
            return
        yield from self._read_window(
            self.http, stream, lo_ns, hi_ns, limit=limit, prefetch=self.prefetch
        )

    def _read_window(
        self,
        http: HttpClient,
        stream: StreamMeta,
        lo_ns: int,
        hi_ns: int,
        *,
        limit: int | None,
        prefetch: bool,
        label: str = "window",
        start_token: str | None = None,
        first_page: int = 0,
    ) -> Iterator[pa.RecordBatch]:
        """One token chain over ``[lo_ns, hi_ns)`` (from ``start_token``): a batch per page."""
        parser = CsvPageParser(stream.stream_type)
        url = self.url(stream.id)
        params = self._params(lo_ns, hi_ns, limit)
        where = _where(stream, label, lo_ns, hi_ns)
        page = first_page
        rows = 0

        def parse(resp: Response) -> pa.RecordBatch:
            try:
                return parser(resp.content)
            except DataError as exc:
                raise DataError(f"{where} page {page}: {exc}", transient=exc.transient) from None

        def emit(batch: pa.RecordBatch) -> pa.RecordBatch:
            nonlocal rows, page
            if limit is not None and rows + batch.num_rows > limit:
                batch = batch.slice(0, limit - rows)
            rows += batch.num_rows
            log.debug("%s page %d: %d rows", where, page, batch.num_rows)
            page += 1
            crash_point("page")
            return batch

        def done() -> bool:
            return limit is not None and rows >= limit

        resume = start_token  # also: page_token of a page that failed to parse
        if prefetch:
            fetcher = Prefetcher(self._fetch(http, url, params, start_token, where))
            try:
                for sent, resp in fetcher:
                    try:
                        batch = parser(resp.content)
                    except DataError as exc:
                        log.warning("%s page %d: %s; fetching it again", where, page, exc)
                        resume = sent
                        break
                    yield emit(batch)
                    if done():
                        return
                else:
                    return
            finally:
                fetcher.close()
        # sequential: parse inside the retry loop (also the fallback after a bad page)
        pager = HeaderCursor(param="page_token", start=resume or None)
        for _resp, batch in paginate(http, url, params, pager, parse, call=where):
            yield emit(batch)
            if done():
                return

    def _read_adaptive(
        self, stream: StreamMeta, lo_ns: int, hi_ns: int, workers: int
    ) -> Iterator[pa.RecordBatch]:
        """First page sequentially; if more follow, the rest in parallel sub-windows.

        The first page costs nothing extra and says whether a parallel read pays: a
        window that fits in one page is one request, as sequentially. Otherwise the
        rest of the window, ``[last time of page 0, end)``, is cut into sub-windows of
        about a page each at page 0's density, at most ``workers * splits_per_worker``
        (see :func:`plan_sub_windows`); page 0 then yields only its rows before that
        time. Streams without a ``time`` dimension (``span``, ``bytes``) follow the token.
        """
        parser = CsvPageParser(stream.stream_type)
        url = self.url(stream.id)
        params = self._params(lo_ns, hi_ns, None)
        where = _where(stream, "window", lo_ns, hi_ns)

        def parse(resp: Response) -> pa.RecordBatch:
            try:
                return parser(resp.content)
            except DataError as exc:
                raise DataError(f"{where} page 0: {exc}", transient=exc.transient) from None

        pager = HeaderCursor(param="page_token")
        pages = paginate(self.http, url, params, pager, parse, call=where)
        try:  # the first page of the one page loop; the rest is paged below
            _resp, batch = next(pages)
        finally:
            pages.close()
        token = pager.cursor
        crash_point("page")
        pieces: list[tuple[int, int]] = []
        if token and batch.num_rows and time_key(stream.stream_type) == "time":
            times = batch.column("time_ns").to_numpy()
            if bool(np.all(times[1:] >= times[:-1])):
                pieces = plan_sub_windows(times, hi_ns, workers * self.splits_per_worker)
        if len(pieces) <= 1:  # the rest is about a page: follow the token
            yield batch
            if token:
                yield from self._read_window(
                    self.http, stream, lo_ns, hi_ns, limit=None,
                    prefetch=self.prefetch, start_token=token, first_page=1,
                )  # fmt: skip
            return
        keep = int(np.searchsorted(times, pieces[0][0], side="left"))
        yield batch.slice(0, keep)  # rows at the last time: read again by piece 1

        def read_piece(http: HttpClient, a: int, b: int, label: str) -> Iterator[pa.RecordBatch]:
            return self._read_window(http, stream, a, b, limit=None, prefetch=False, label=label)

        yield from read_parallel(
            self.http, read_piece, stream.id, stream_schema(stream.stream_type), pieces,
            workers, queue_depth=self.queue_depth, ensure_batch=False,
        )  # fmt: skip

    @staticmethod
    def _params(lo_ns: int, hi_ns: int, limit: int | None) -> dict[str, Any]:
        return {
            "start_time_ns": lo_ns,
            "end_time_ns": hi_ns,
            "format": "csv",
            "timestamp": "unixns",
            "translate_enums": "True",
            "limit": limit,
        }

    def read_table(
        self,
        stream: StreamMeta,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = None,
        parallel: int | None = None,
    ) -> pa.Table:
        """All of :meth:`read` as one table: the stream's schema, plus any undeclared
        column a page carried (null where a page lacked it)."""
        schema = stream_schema(stream.stream_type)
        batches = list(self.read(stream, start, end, limit=limit, parallel=parallel))
        if all(b.schema.equals(schema) for b in batches):
            return pa.Table.from_batches(batches, schema=schema)
        tables = [pa.Table.from_batches([b]) for b in batches]
        return pa.concat_tables(tables, promote_options="default")


def _where(stream: StreamMeta, label: str, lo_ns: int, hi_ns: int) -> str:
    """``stream <id> <label> [start, end)``: what a read's messages name."""
    return (
        f"stream {stream.id} {label} [{ns_to_dt(lo_ns).isoformat()}, {ns_to_dt(hi_ns).isoformat()})"
    )
