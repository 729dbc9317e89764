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
from collections.abc import Iterator
from typing import Literal
from urllib.parse import quote, urljoin

import pyarrow as pa
import pyarrow.csv as pacsv

from rune_io.arrow_schema import TIME_TYPE, stream_schema
from rune_io.errors import DataError
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
        self._read = pacsv.ReadOptions(use_threads=True, block_size=1 << 22)
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
        if nl < 0 or not content[nl + 1 :].strip():  # header only: no rows
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


class StreamReader:
    """Reads V2 stream data through a shared :class:`~rune_io.http.HttpClient`."""

    def __init__(self, http: HttpClient, stream_url: str | None = None) -> None:
        self.http = http
        self.stream_url = stream_url or http.settings.stream_url

    def url(self, stream_id: str) -> str:
        """Absolute URL of a stream's data endpoint (a path in ``stream_url`` is dropped)."""
        return urljoin(self.stream_url + "/", stream_path(stream_id))

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
        params = {
            "start_time_ns": to_unix_ns(lo),
            "end_time_ns": to_unix_ns(hi),
            "format": "csv",
            "timestamp": "unixns",
            "translate_enums": "True",
            "limit": limit,
        }
        where = f"stream {stream.id} window [{lo.isoformat()}, {hi.isoformat()})"
        page = 0

        def parse(resp: Response) -> pa.RecordBatch:
            try:
                return parser(resp.content)
            except DataError as exc:
                raise DataError(f"{where} page {page}: {exc}", transient=exc.transient) from None

        rows = 0
        pager = HeaderCursor(param="page_token")
        for _resp, batch in paginate(self.http, self.url(stream.id), params, pager, parse):
            if limit is not None and rows + batch.num_rows > limit:
                batch = batch.slice(0, limit - rows)
            rows += batch.num_rows
            log.debug("%s page %d: %d rows", where, page, batch.num_rows)
            yield batch
            page += 1
            if limit is not None and rows >= limit:
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
