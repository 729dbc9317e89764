"""V2 stream data as Arrow record batches, page by page.

``GET {stream_url}/v2/streams/{id}?start_time_ns=..&end_time_ns=..&format=csv&timestamp=unixns``
returns one complete CSV per page (header included) and, while more pages remain, the
header ``X-Rune-Next-Page-Token``. Each page is read whole and parsed by ``pyarrow.csv``
with column types from the stream type's dimensions; ``time`` (unix ns) becomes
``timestamp[us, tz=UTC]``. Only one page is held at a time, so memory stays flat however
long the window.

Parallel reads (``read(..., parallel=N)``, default ``settings.read_parallelism``): the
window is cut into contiguous time sub-windows, each paged with its own token chain by
one of ``N`` worker threads (each with its own HTTP session), and the batches come out
strictly in time order. See :meth:`StreamReader.read`.

Malformed pages: a complete body that does not parse (a non-numeric value, a missing
column, a null time) is the server's content, not a network accident: it is a
:class:`~rune_io.errors.DataError` with ``transient=False``, so the HTTP layer does not
re-fetch it again and again (the reader re-reads a bad page once). A column the stream
type does not declare is kept, typed from its values (numbers as ``float64``, else
``bool`` or ``string``) and nullable; the lake adds it to the table's schema.

Times: the API serves 100-ns resolution; every timestamp dimension ``d`` is kept exactly
as ``d_ns`` (int64 ns) beside ``d`` (microseconds, floored, for engines).

Rows sharing a timestamp: a page boundary is the server's (its token resumes exactly
where the page ended); a parallel read's sub-windows are ``[a, b)`` on ``time``, and the
rest after the first page starts *at* the page's last time, whose rows the first page
then leaves to it (:func:`plan_sub_windows`), so no row is lost or read twice.
"""

from __future__ import annotations

import io
import logging
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urljoin

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import requests

from rune_io.api.arrow_schema import (
    SERVED_EXTRA_TYPES,
    floor_us,
    is_timestamp,
    stream_schema,
    time_key,
    warn_unknown,
    wire_types,
)
from rune_io.api.http import HttpClient, Response
from rune_io.api.models import StreamMeta, StreamType
from rune_io.api.paginators import NEXT_PAGE_HEADER, HeaderCursor, paginate
from rune_io.errors import DataError
from rune_io.faults import crash_point
from rune_io.times import TimeLike, to_unix_ns, to_utc

log = logging.getLogger("rune_io.api.streams")

_COLUMN_NO = re.compile(r"In CSV column #(\d+)")
_SECOND_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stream_path(stream_id: str) -> str:
    """URL path of a stream's data (the id is percent-encoded)."""
    return f"/v2/streams/{quote(stream_id, safe='')}"


class CsvPageParser:
    """Parse one V2 CSV page (``timestamp=unixns``) into a batch of ``stream_schema`` columns.

    Columns are typed from the stream type's dimensions (see :mod:`rune_io.api.arrow_schema`):
    a timestamp dimension ``d`` (unix ns on the wire) becomes ``d`` (microseconds, floor)
    and ``d_ns`` (exact); floats are parsed from their text to the same double; only an
    empty cell is null (``nan`` is a float, ``NA`` a string).

    Args:
        stream_type: the stream's type.
    """

    def __init__(self, stream_type: StreamType) -> None:
        self.stream_type = stream_type
        self.schema = stream_schema(stream_type)
        wire = wire_types(stream_type)
        self.names = list(wire)
        self._stamps = {d.identifier for d in stream_type.dimensions if is_timestamp(d)}
        self._header = ",".join(self.names).encode()
        self._types = {**SERVED_EXTRA_TYPES, **wire}
        has_strings = any(pa.types.is_string(t) for t in wire.values())
        self._read = pacsv.ReadOptions(use_threads=False, block_size=1 << 18)
        self._parse = pacsv.ParseOptions(newlines_in_values=has_strings)
        self._convert = self._convert_options([])

    def _convert_options(self, extra: list[str]) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(
            column_types=self._types,
            include_columns=self.names + extra,
            null_values=[""],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def __call__(self, content: bytes) -> pa.RecordBatch:
        """The page as one record batch; :class:`DataError` (plain message) if malformed."""
        if not content:
            raise DataError("empty body (a V2 CSV page always has a header row)", transient=True)
        nl = content.find(b"\n")
        header = (content if nl < 0 else content[:nl]).rstrip(b"\r")
        extra: list[str] = []
        if header != self._header:
            got = [c.strip().strip('"') for c in header.decode("utf-8", "replace").split(",")]
            missing = [n for n in self.names if n not in got]
            if missing:
                raise DataError(
                    f"CSV header {got[:10]} lacks column(s) {missing}; expected {self.names}"
                )
            extra = [c for c in got if c not in self.names]
            if len(set(extra)) != len(extra) or not all(extra):
                raise DataError(f"CSV header {got[:10]} has empty or repeated column names")
        if nl < 0 or (len(content) - nl < 64 and not content[nl + 1 :].strip()):  # no rows
            return _empty(self.schema)
        try:
            table = pacsv.read_csv(
                io.BytesIO(content),
                read_options=self._read,
                parse_options=self._parse,
                convert_options=self._convert_options(extra) if extra else self._convert,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"CSV does not parse: {self._name_column(exc, header)}") from None
        return self._to_batch(table, extra)

    def _name_column(self, exc: Exception, header: bytes) -> str:
        """Arrow's message, with the column's name and declared type after its number."""
        names = [c.strip().strip('"') for c in header.decode("utf-8", "replace").split(",")]

        def named(m: re.Match[str]) -> str:
            i = int(m.group(1))
            name = names[i] if i < len(names) else "?"
            kind = self._types.get(name)
            declared = f", declared {kind}" if kind is not None else ""
            return f"{m.group(0)} ({name!r}{declared})"

        return _COLUMN_NO.sub(named, str(exc), count=1)

    def _to_batch(self, table: pa.Table, extra: Sequence[str] = ()) -> pa.RecordBatch:
        arrays: list[pa.Array] = []
        for name in self.names:
            col = table.column(name).combine_chunks()
            if name in self._stamps:
                if name == "time" and col.null_count:
                    raise DataError(f"{col.null_count} row(s) have no time")
                arrays += [floor_us(col), col]
            else:
                arrays.append(col)
        fields = list(self.schema)
        for name in extra:
            col = table.column(name).combine_chunks()
            if name in SERVED_EXTRA_TYPES:
                col = col.cast(SERVED_EXTRA_TYPES[name])
            else:
                col = _undeclared(col)
            if col is not None:  # all empty on this page: as if absent
                fields.append(pa.field(name, col.type, nullable=True))
                arrays.append(col)
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _undeclared(col: pa.Array) -> pa.Array | None:
    """A column the stream type does not declare, in a type stable across pages."""
    t = col.type
    if pa.types.is_null(t):
        return None
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return col.cast(pa.float64())
    if pa.types.is_boolean(t) or pa.types.is_string(t):
        return col
    return col.cast(pa.string())


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def split_window(lo_ns: int, hi_ns: int, parts: int) -> list[tuple[int, int]]:
    """``[lo_ns, hi_ns)`` as at most ``parts`` contiguous ``[a, b)`` pieces, in order.

    Pieces are of (nearly) equal duration; inner boundaries are floored to a whole unix
    second when that keeps them strictly increasing. Every instant of the window is in
    exactly one piece (start inclusive, end exclusive).
    """
    if hi_ns <= lo_ns:
        return []
    parts = max(1, min(parts, hi_ns - lo_ns))
    bounds = [lo_ns]
    for i in range(1, parts):
        b = lo_ns + (hi_ns - lo_ns) * i // parts
        for unit in (_SECOND_NS, 1000):  # a whole second, else a whole microsecond
            if b - b % unit > bounds[-1]:
                b -= b % unit
                break
        if bounds[-1] < b < hi_ns:
            bounds.append(b)
    bounds.append(hi_ns)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def plan_sub_windows(
    page_times_ns: Sequence[int], hi_ns: int, max_parts: int
) -> list[tuple[int, int]]:
    """Sub-windows for the rest of a read after a full first page with these ``time``
    values (unix ns, ascending).

    The rest is ``[last, hi_ns)``, the page's last time *included*: rows sharing that
    time may continue on the next page, so the caller keeps only the page's rows before
    ``last`` and the first sub-window re-reads every row at ``last`` (none lost, none
    twice). It is cut into about as many pieces as it holds pages at the density of the
    page's second half (its first half may straddle a gap in the data), at most
    ``max_parts``: a short rest stays one chain. No pieces (follow the page token
    instead) when the page has fewer than two distinct times.
    """
    n = len(page_times_ns)
    if n < 2:
        return []
    first, last = int(page_times_ns[0]), int(page_times_ns[-1])
    if first >= last or last >= hi_ns:
        return []
    mid = n // 2
    half_ns = max(1, last - int(page_times_ns[mid]))
    page_ns = max(1, half_ns * (n - 1) // max(1, n - 1 - mid))
    est_pages = -(-(hi_ns - last) // page_ns)
    return split_window(last, hi_ns, max(1, min(max_parts, est_pages)))


def _ns_to_dt(ns: int) -> datetime:
    """Unix ns -> aware UTC datetime (floored to the microsecond; for messages)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def worker_http(parent: HttpClient) -> HttpClient:
    """A new :class:`HttpClient` for one worker thread: its own ``requests.Session``
    (its own connection pool), with the parent's headers, proxies, TLS settings, retry
    policy and sleep.

    ``requests.Session`` is not documented as thread-safe (cookie jar, adapter mounting
    and redirect state are shared mutable objects), so parallel reads never share one:
    each worker thread owns a session for its lifetime and reuses its keep-alive
    connection across the sub-windows it reads.
    """
    session = requests.Session()
    src = parent.session
    session.headers.clear()
    session.headers.update(src.headers)
    session.proxies = dict(src.proxies)
    session.auth = src.auth
    session.cert = src.cert
    session.trust_env = src.trust_env
    http = HttpClient(parent.settings, policy=parent.policy, sleep=parent.sleep, session=session)
    session.verify = src.verify
    return http


class _Failed:
    """A worker's exception, on its way to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Prefetcher:
    """Fetch pages in a background thread, at most ``depth`` ahead of the consumer.

    The next page's request goes out as soon as the previous response is in, so its
    download overlaps with the parsing of the previous one. Errors re-raise in the
    consumer; :meth:`close` stops the thread (consumer finished early or failed).
    """

    _END = object()

    def __init__(self, pages: Iterator[tuple[dict[str, Any], Response]], depth: int = 1) -> None:
        self._pages = pages
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rune_io-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._pages:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], Response]]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


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
            raise ValueError("parallel, splits_per_worker and queue_depth must be >= 1")
        self.splits_per_worker = splits_per_worker
        self.queue_depth = queue_depth

    def url(self, stream_id: str) -> str:
        """Absolute URL of a stream's data endpoint (a path in ``stream_url`` is dropped)."""
        return urljoin(self.stream_url + "/", stream_path(stream_id))

    def _fetch(
        self, http: HttpClient, url: str, params: dict[str, Any], start: str | None = None
    ) -> Iterator[tuple[dict[str, Any], Response]]:
        """Yield ``(params, response)`` per page (from page token ``start`` if given):
        bodies read whole (truncation retried), not parsed."""
        pager = HeaderCursor(param="page_token", start=start)
        params = dict(params)
        pager.init_request(params)
        while pager.has_next_page:
            used = dict(params)
            resp = http.request("GET", url, params=params)
            pager.update_state(resp)
            pager.pages += 1
            yield used, resp
            if pager.has_next_page:
                pager.update_request(params)

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
            raise ValueError(f"limit must be >= 1 or None, got {limit}")
        workers = self.parallel if parallel is None else parallel
        if workers < 1:
            raise ValueError(f"parallel must be >= 1, got {workers}")
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
        where = (
            f"stream {stream.id} {label} "
            f"[{_ns_to_dt(lo_ns).isoformat()}, {_ns_to_dt(hi_ns).isoformat()})"
        )
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
            fetcher = _Prefetcher(self._fetch(http, url, params, start_token))
            try:
                for page_params, resp in fetcher:
                    try:
                        batch = parser(resp.content)
                    except DataError as exc:
                        log.warning("%s page %d: %s; fetching it again", where, page, exc)
                        resume = page_params.get("page_token") or ""
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
        for _resp, batch in paginate(http, url, params, pager, parse):
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
        where = (
            f"stream {stream.id} window "
            f"[{_ns_to_dt(lo_ns).isoformat()}, {_ns_to_dt(hi_ns).isoformat()})"
        )
        seen: list[Response] = []

        def parse(resp: Response) -> pa.RecordBatch:
            seen.append(resp)
            try:
                return parser(resp.content)
            except DataError as exc:
                raise DataError(f"{where} page 0: {exc}", transient=exc.transient) from None

        batch = self.http.request("GET", url, params=params, parse=parse)
        token = seen[-1].headers.get(NEXT_PAGE_HEADER)
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
        yield from self._read_parallel(stream, pieces, workers, ensure_batch=False)

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

    def _read_parallel(
        self,
        stream: StreamMeta,
        pieces: list[tuple[int, int]],
        workers: int,
        *,
        ensure_batch: bool = True,
    ) -> Iterator[pa.RecordBatch]:
        """Sub-windows read by ``workers`` threads, yielded in order (see :meth:`read`)."""
        stop = threading.Event()
        local = threading.local()
        clients: list[HttpClient] = []
        lock = threading.Lock()
        n = len(pieces)

        def thread_http() -> HttpClient:
            http = getattr(local, "http", None)
            if http is None:
                http = worker_http(self.http)
                local.http = http
                with lock:
                    clients.append(http)
            return http

        def put(q: queue.Queue[Any], item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def run(k: int, q: queue.Queue[Any]) -> None:
            a, b = pieces[k]
            label = f"sub-window {k + 1}/{n}"
            page = 0
            try:
                if stop.is_set():
                    return
                for batch in self._read_window(
                    thread_http(), stream, a, b,
                    limit=None, prefetch=False, label=label,
                ):  # fmt: skip
                    if not put(q, batch):
                        return
                    page += 1
                put(q, _Prefetcher._END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                if not isinstance(exc, DataError):  # DataError's message has it already
                    exc.add_note(
                        f"while reading stream {stream.id} {label} "
                        f"[{_ns_to_dt(a).isoformat()}, {_ns_to_dt(b).isoformat()}) page {page}"
                    )
                put(q, _Failed(exc))

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rune_io-read")
        queues: list[queue.Queue[Any] | None] = []

        def submit_next() -> None:
            k = len(queues)
            if k < n:
                q: queue.Queue[Any] = queue.Queue(maxsize=self.queue_depth)
                queues.append(q)
                pool.submit(run, k, q)

        schema = stream_schema(stream.stream_type)
        yielded = not ensure_batch
        try:
            for _ in range(workers):
                submit_next()
            for k in range(n):
                q = queues[k]
                assert q is not None
                while True:
                    item = q.get()
                    if item is _Prefetcher._END:
                        break
                    if isinstance(item, _Failed):
                        raise item.exc
                    if item.num_rows:
                        yielded = True
                        yield item
                queues[k] = None
                submit_next()
            if not yielded:
                yield _empty(schema)
        finally:
            stop.set()
            for q in queues:  # unblock workers waiting on a full queue
                while q is not None:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        break
            pool.shutdown(wait=True, cancel_futures=True)
            for http in clients:
                http.close()

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
