"""V2 stream data as Arrow record batches, page by page.

``GET {stream_url}/v2/streams/{id}?start_time_ns=..&end_time_ns=..&format=csv&timestamp=unixns``
returns one complete CSV per page (header included) and, while more pages remain, the
header ``X-Rune-Next-Page-Token``. Each page is read whole and parsed by ``pyarrow.csv``
with column types from the stream type's dimensions; ``time`` (unix ns) becomes
``timestamp[us, tz=UTC]``. Only one page is held at a time, so memory stays flat however
long the window.

Sub-microsecond times: the lake stores microseconds. By default a time with a
sub-microsecond part is a :class:`~rune_io.errors.DataError` (no silent precision loss);
``sub_us="truncate"`` drops the extra digits instead.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import quote, urljoin

import pyarrow as pa
import pyarrow.csv as pacsv

from rune_io.arrow_schema import TIME_TYPE, stream_schema
from rune_io.errors import DataError
from rune_io.faults import crash_point
from rune_io.http import HttpClient, Response
from rune_io.models import StreamMeta
from rune_io.paginators import HeaderCursor, paginate
from rune_io.windows import TimeLike, to_unix_ns, to_utc

log = logging.getLogger("rune_io.streams")

_NS_TYPE = pa.timestamp("ns", tz="UTC")
SubMicros = Literal["error", "truncate"]


def stream_path(stream_id: str) -> str:
    """URL path of a stream's data (the id is percent-encoded)."""
    return f"/v2/streams/{quote(stream_id, safe='')}"


class CsvPageParser:
    """Parse one V2 CSV page (``timestamp=unixns``) into a batch of ``stream_schema`` columns.

    Args:
        schema: the target schema (``stream_schema(stream.stream_type)``).
        sub_us: what to do with sub-microsecond times: ``"error"`` or ``"truncate"``.
    """

    def __init__(self, schema: pa.Schema, sub_us: SubMicros = "error") -> None:
        if sub_us not in ("error", "truncate"):
            raise ValueError(f"sub_us must be 'error' or 'truncate', got {sub_us!r}")
        self.schema = schema
        self.sub_us = sub_us
        self.names = schema.names
        self._header = ",".join(self.names).encode()
        types = {f.name: f.type for f in schema}
        types["time"] = pa.int64()
        has_strings = any(pa.types.is_string(f.type) for f in schema)
        self._read = pacsv.ReadOptions(use_threads=False, block_size=1 << 18)
        self._parse = pacsv.ParseOptions(newlines_in_values=has_strings)
        self._convert = pacsv.ConvertOptions(
            column_types=types,
            include_columns=self.names,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def __call__(self, content: bytes) -> pa.RecordBatch:
        """The page as one record batch; :class:`DataError` (plain message) if malformed."""
        if not content:
            raise DataError("empty body (a V2 CSV page always has a header row)", transient=True)
        nl = content.find(b"\n")
        header = (content if nl < 0 else content[:nl]).rstrip(b"\r")
        if header != self._header:
            got = [c.strip().strip('"') for c in header.decode("utf-8", "replace").split(",")]
            missing = [n for n in self.names if n not in got]
            if missing:
                raise DataError(
                    f"CSV header {got[:10]} lacks column(s) {missing}; expected {self.names}",
                    transient=True,
                )
            extra = [c for c in got if c not in self.names]
            if extra:
                log.warning("ignoring unexpected column(s) %s in a V2 page", extra)
        if nl < 0 or (len(content) - nl < 64 and not content[nl + 1 :].strip()):  # no rows
            return _empty(self.schema)
        try:
            table = pacsv.read_csv(
                io.BytesIO(content),
                read_options=self._read,
                parse_options=self._parse,
                convert_options=self._convert,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"CSV does not parse: {exc}", transient=True) from None
        return self._to_batch(table)

    def _to_batch(self, table: pa.Table) -> pa.RecordBatch:
        arrays: list[pa.Array] = []
        for field in self.schema:
            col = table.column(field.name).combine_chunks()
            if field.name == "time":
                if col.null_count:
                    raise DataError(f"{col.null_count} row(s) have no time", transient=True)
                try:
                    col = col.cast(_NS_TYPE).cast(TIME_TYPE, safe=self.sub_us == "error")
                except pa.ArrowInvalid:
                    raise DataError(
                        "time has sub-microsecond precision; the lake stores microseconds "
                        "(pass sub_us='truncate' to drop the extra digits)"
                    ) from None
            arrays.append(col)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


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
    """Reads V2 stream data through a shared :class:`~rune_io.http.HttpClient`.

    Args:
        http: the shared client.
        stream_url: default ``http.settings.stream_url``.
        prefetch: download page ``n+1`` in a background thread while page ``n`` is
            parsed (one page ahead; memory stays a few pages).
    """

    def __init__(
        self, http: HttpClient, stream_url: str | None = None, *, prefetch: bool = True
    ) -> None:
        self.http = http
        self.stream_url = stream_url or http.settings.stream_url
        self.prefetch = prefetch

    def url(self, stream_id: str) -> str:
        """Absolute URL of a stream's data endpoint (a path in ``stream_url`` is dropped)."""
        return urljoin(self.stream_url + "/", stream_path(stream_id))

    def _fetch(self, url: str, params: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Response]]:
        """Yield ``(params, response)`` per page: bodies read whole (truncation retried),
        not parsed."""
        pager = HeaderCursor(param="page_token")
        params = dict(params)
        pager.init_request(params)
        while pager.has_next_page:
            used = dict(params)
            resp = self.http.request("GET", url, params=params)
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
        sub_us: SubMicros = "error",
    ) -> Iterator[pa.RecordBatch]:
        """Yield one record batch per page of ``[start, end)``; columns ``stream_schema(...)``.

        A page with no rows gives an empty batch; an empty or inverted window makes no
        request and yields nothing. ``limit`` caps the total rows (sent to the server
        and enforced here).

        Raises:
            DataError: a page kept failing to parse; the message names the stream,
                window and page.
            ApiError, TransientError: see :meth:`rune_io.http.HttpClient.request`.
        """
        lo, hi = to_utc(start), to_utc(end)
        if lo >= hi:
            return
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {limit}")
        schema = stream_schema(stream.stream_type)
        parser = CsvPageParser(schema, sub_us)
        url = self.url(stream.id)
        params: dict[str, Any] = {
            "start_time_ns": to_unix_ns(lo),
            "end_time_ns": to_unix_ns(hi),
            "format": "csv",
            "timestamp": "unixns",
            "translate_enums": "True",
            "limit": limit,
        }
        where = f"stream {stream.id} window [{lo.isoformat()}, {hi.isoformat()})"
        page = 0
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

        resume: str | None = None  # page_token of a page that failed to parse
        if self.prefetch:
            fetcher = _Prefetcher(self._fetch(url, params))
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
        for _resp, batch in paginate(self.http, url, params, pager, parse):
            yield emit(batch)
            if done():
                return

    def read_table(
        self,
        stream: StreamMeta,
        start: TimeLike,
        end: TimeLike,
        *,
        limit: int | None = None,
        sub_us: SubMicros = "error",
    ) -> pa.Table:
        """All of :meth:`read` as one table (always with the stream's schema)."""
        schema = stream_schema(stream.stream_type)
        batches = list(self.read(stream, start, end, limit=limit, sub_us=sub_us))
        return pa.Table.from_batches(batches, schema=schema)
