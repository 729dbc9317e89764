"""The seed V1 Stream API: ``accel``, ``heartrate`` (CSV and JSON) and ``event`` (JSON).

Every paging mode of the seed document:

- CSV, ``paging="page"``: ``page`` = 0, 1, ... until the body is empty;
- JSON, ``paging="page"``: ``page`` follows the body's ``next_page`` until it is absent;
- either format, ``paging="token"``: header ``X-Rune-Next-Page-Token`` ->
  ``next_page_token`` (``page`` is then not sent).

Time series come back as Arrow record batches, one per page: ``time`` as
``timestamp[us, tz=UTC]`` whatever the ``timestamp`` format asked of the API (``unix``
seconds are rounded to the microsecond; ``iso`` carries its offset; ``datetime`` is
local time at the ``timezone`` offset, which is subtracted), ``availability`` as
``int64``, the other columns as ``float64`` (``x,y,z``, ``bpm``; an interpolation gap
is null). JSON ``partition_size`` sub-arrays are flattened back into one column.
Events come back as the API's JSON objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import urljoin

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rune_io.api.arrow_schema import TIME_TYPE
from rune_io.api.http import HttpClient, Response
from rune_io.api.paginators import HeaderCursor, PageNumber, PageUntilEmpty, Paginator, paginate
from rune_io.errors import DataError, UsageError
from rune_io.times import TimeLike, to_unix

log = logging.getLogger("rune_io.api.v1")

Format = Literal["csv", "json"]
Paging = Literal["page", "token"]
Timestamp = Literal["unix", "iso", "datetime"]

#: query params the reader sets itself (paging, time format)
_MANAGED = ("page", "next_page_token", "timestamp", "timezone")

_VALUE_COLUMNS = {"accel": ("x", "y", "z"), "heartrate": ("bpm",)}
_FLOAT_COLUMNS = frozenset(c for cols in _VALUE_COLUMNS.values() for c in cols)


def _time_us(col: pa.Array, timestamp: Timestamp = "unix", timezone: int = 0) -> pa.Array:
    """The API's time column -> timestamp[us, UTC].

    ``unix``: seconds (float), rounded to the microsecond; ``iso``: RFC 3339 strings with
    ``Z`` or an offset; ``datetime``: local ``YYYY-MM-DD HH:MM:SS.ffffff`` at ``timezone``
    seconds east of UTC.
    """
    if col.null_count:
        raise DataError(f"{col.null_count} V1 row(s) have no time")
    if timestamp == "unix":
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or not len(col)):
            raise DataError(f"V1 time is {col.type}, expected unix seconds", transient=True)
        values = np.asarray(col.to_numpy(zero_copy_only=False), dtype="float64")
        return pa.array(np.rint(values * 1e6).astype("int64"), type=pa.int64()).cast(TIME_TYPE)
    text = col.cast(pa.string())
    try:
        if timestamp == "iso":
            return text.cast(TIME_TYPE)
        local = text.cast(pa.timestamp("us")).cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"V1 time is not {timestamp!r}: {exc}", transient=True) from None
    return pc.subtract(local, timezone * 1_000_000).cast(TIME_TYPE)


def _table_to_batch(
    table: pa.Table, timestamp: Timestamp = "unix", timezone: int = 0
) -> pa.RecordBatch:
    return _columns_to_batch(
        list(zip(table.column_names, table.columns, strict=True)), timestamp, timezone
    )


def _columns_to_batch(
    pending: list[tuple[str, Any]], timestamp: Timestamp, timezone: int
) -> pa.RecordBatch:
    """Columns -> one batch, converting one column at a time and letting go of each
    source column once converted (``pending`` is emptied), so a page is held about once."""
    cols, names = [], []
    while pending:
        name, chunked = pending.pop(0)
        col = chunked.combine_chunks() if isinstance(chunked, pa.ChunkedArray) else chunked
        del chunked
        if name == "time":
            col = _time_us(col, timestamp, timezone)
        elif name == "availability" or pa.types.is_integer(col.type) or pa.types.is_null(col.type):
            target = pa.int64() if name == "availability" else pa.float64()
            try:
                col = col.cast(target)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise DataError(f"V1 column {name!r} is not {target}: {exc}") from None
        cols.append(col)
        names.append(name)
    return pa.RecordBatch.from_arrays(cols, names=names)


def parse_csv_page(
    content: bytes, timestamp: Timestamp = "unix", timezone: int = 0
) -> pa.RecordBatch | None:
    """A V1 CSV page as a batch; None for an empty body (the end, in page mode).

    Read in place (no copy of the body). When every column is a known one (``time``,
    ``x,y,z``, ``bpm``, ``availability``: their types declared, not inferred) the page is
    parsed and converted block by block and the blocks joined column by column, so a
    3,600,000-point page is held about once beside its body (BENCHMARKS.md); other
    columns are inferred over the whole page."""
    if not content or content.isspace():  # (no strip(): it would copy the body)
        return None
    header = content[: content.find(b"\n")].decode("utf-8", "replace").strip().split(",")
    types: dict[str, pa.DataType] = {"time": pa.float64() if timestamp == "unix" else pa.string()}
    types |= {c: pa.float64() for c in header if c in _FLOAT_COLUMNS}
    types |= {"availability": pa.int64()} if "availability" in header else {}
    source = pa.BufferReader(pa.py_buffer(content))
    options = pacsv.ConvertOptions(column_types=types)
    try:
        if "time" in header and set(header) <= set(types):
            reader = pacsv.open_csv(
                source, read_options=pacsv.ReadOptions(block_size=4 << 20), convert_options=options
            )
            blocks = [
                [c for _, c in _columns(_columns_to_batch(_columns(b), timestamp, timezone))]
                for b in reader
            ]
            return _join_blocks(header, blocks, reader.schema)
        table = pacsv.read_csv(source, convert_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"V1 CSV does not parse: {exc}", transient=True) from None
    if "time" not in table.column_names:
        raise DataError(f"V1 CSV has no time column: {table.column_names}", transient=True)
    pending = _columns(table)
    del table
    return _columns_to_batch(pending, timestamp, timezone)


def _columns(t: pa.Table | pa.RecordBatch) -> list[tuple[str, Any]]:
    return list(zip(t.column_names, t.columns, strict=True))


def _join_blocks(names: list[str], blocks: list[list[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Converted blocks (lists of columns) -> one batch, a column at a time (each
    column's blocks are let go once joined)."""
    cols = []
    for i in range(len(names)):
        parts = [blk[i] for blk in blocks]
        for blk in blocks:
            blk[i] = None
        cols.append(pa.concat_arrays(parts) if parts else pa.array([], schema.field(i).type))
        del parts
    if not blocks:  # a header without rows
        return _columns_to_batch([(n, c) for n, c in zip(names, cols, strict=True)], "unix", 0)
    return pa.RecordBatch.from_arrays(cols, names=names)


def parse_json_series(doc: Any, timestamp: Timestamp = "unix", timezone: int = 0) -> pa.RecordBatch:
    """A V1 JSON time-series page (``{"result": {"time": [...], "x": [...]}}``) as a batch.

    Accepts the columns directly in ``result`` or under ``result.data``; arrays split
    into sub-arrays by ``partition_size`` are flattened.
    """
    result = doc.get("result") if isinstance(doc, dict) else None
    if not isinstance(result, dict):
        raise DataError("V1 JSON page has no result object", transient=True)
    inner = result.get("data")
    data = inner if isinstance(inner, dict) else result
    columns = {k: _flatten(v) for k, v in data.items() if isinstance(v, list)}
    if "time" not in columns:
        raise DataError(f"V1 JSON result has no time array: {sorted(data)}", transient=True)
    try:
        table = pa.table({k: pa.array(v) for k, v in columns.items()})
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise DataError(f"V1 JSON result does not form a table: {exc}", transient=True) from None
    ordered = ["time"] + [c for c in table.column_names if c != "time"]
    return _table_to_batch(table.select(ordered), timestamp, timezone)


def _flatten(values: list) -> list:
    """``partition_size`` nests each array into sub-arrays: join them back."""
    if values and all(isinstance(v, list) for v in values):
        return [x for part in values for x in part]
    return values


class V1Client:
    """Reads the V1 Stream API through a shared :class:`~rune_io.api.http.HttpClient`."""

    def __init__(self, http: HttpClient, stream_url: str | None = None) -> None:
        self.http = http
        self.stream_url = stream_url or http.settings.stream_url

    def url(self, resource: str, fmt: Format) -> str:
        """``{stream_url}/v1/{resource}.{fmt}``."""
        return urljoin(self.stream_url + "/", f"/v1/{resource}.{fmt}")

    @staticmethod
    def _paginator(fmt: Format, paging: Paging) -> Paginator:
        if paging == "token":
            return HeaderCursor(param="next_page_token")
        if paging != "page":
            raise UsageError(f"paging must be 'page' or 'token', got {paging!r}")
        return PageUntilEmpty() if fmt == "csv" else PageNumber()

    @staticmethod
    def _params(
        patient_id: str | None,
        device_id: str,
        start: TimeLike | None,
        end: TimeLike | None,
        page_size: int | None,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "patient_id": patient_id,  # may be None with a client key: inferred
            "device_id": device_id,
            "start_time": None if start is None else to_unix(start),
            "end_time": None if end is None else to_unix(end),
            "timestamp": "unix",
            "page_size": page_size,
        }
        params.update(extra)
        return params

    def series(
        self,
        resource: str,
        patient_id: str | None,
        device_id: str,
        start: TimeLike,
        end: TimeLike,
        *,
        fmt: Format = "csv",
        paging: Paging = "page",
        page_size: int | None = None,
        timestamp: Timestamp = "unix",
        timezone: int | None = None,
        **params: Any,
    ) -> Iterator[pa.RecordBatch]:
        """Yield one batch per page of a V1 time series (``accel``, ``heartrate``, ``lfp``...).

        ``params`` go to the API as they are (``expression``, ``frequency`` or
        ``resolution``, ``interpolation``, ``partition_size`` (JSON only)...); paging and
        the time format are the reader's (``timestamp``, ``timezone`` arguments).
        """
        if fmt not in ("csv", "json"):
            raise UsageError(f"fmt must be 'csv' or 'json', got {fmt!r}")
        if timestamp not in ("unix", "iso", "datetime"):
            raise UsageError(f"timestamp must be 'unix', 'iso' or 'datetime', got {timestamp!r}")
        managed = sorted(set(params) & set(_MANAGED))
        if managed:
            raise UsageError(f"{managed} are set by the reader (paging, timestamp arguments)")
        if fmt == "csv" and params.get("partition_size") is not None:
            raise UsageError("partition_size applies to JSON only")
        tz = int(timezone or 0)
        extra = {**params, "timestamp": timestamp, "timezone": timezone}
        query = self._params(patient_id, device_id, start, end, page_size, extra)
        pager = self._paginator(fmt, paging)
        where = f"/v1/{resource}.{fmt} device {device_id}"

        def parse(resp: Response) -> Any:
            try:
                if fmt == "csv":
                    return parse_csv_page(resp.content, timestamp, tz)
                doc = resp.json()  # parsed once; PageNumber reads next_page from this dict
                batch = parse_json_series(doc, timestamp, tz)
                return {"next_page": doc.get("next_page"), "batch": batch}
            except DataError as exc:
                raise DataError(
                    f"{where} page {pager.pages}: {exc}", transient=exc.transient
                ) from None

        pages = paginate(self.http, self.url(resource, fmt), query, pager, parse, keep_body=False)
        for _resp, data in pages:
            if data is None:  # empty CSV body
                continue
            yield data["batch"] if isinstance(data, dict) else data

    def accel(
        self,
        patient_id: str | None,
        device_id: str,
        start: TimeLike,
        end: TimeLike,
        *,
        expression: str = "accel",
        fmt: Format = "csv",
        paging: Paging = "page",
        page_size: int | None = None,
        **params: Any,
    ) -> Iterator[pa.RecordBatch]:
        """Accelerometry (``time,x,y,z`` in g) for ``[start, end)``, one batch per page."""
        return self.series(
            "accel", patient_id, device_id, start, end,
            fmt=fmt, paging=paging, page_size=page_size, expression=expression, **params,
        )  # fmt: skip

    def heartrate(
        self,
        patient_id: str | None,
        device_id: str,
        start: TimeLike,
        end: TimeLike,
        *,
        expression: str = "bpm",
        fmt: Format = "csv",
        paging: Paging = "page",
        page_size: int | None = None,
        **params: Any,
    ) -> Iterator[pa.RecordBatch]:
        """Heart rate (``time,bpm``) for ``[start, end)``, one batch per page."""
        return self.series(
            "heartrate", patient_id, device_id, start, end,
            fmt=fmt, paging=paging, page_size=page_size, expression=expression, **params,
        )  # fmt: skip

    def events(
        self,
        patient_id: str | None,
        device_id: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        event: str | None = None,
        paging: Paging = "page",
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield V1 events (JSON objects); ``event`` selects a type prefix
        (``device.medication``)."""
        query = self._params(patient_id, device_id, start, end, page_size, {"event": event})
        pager = self._paginator("json", paging)
        for _resp, doc in paginate(
            self.http, self.url("event", "json"), query, pager, lambda r: r.json()
        ):
            yield from _event_items(doc)


def _event_items(doc: Any) -> list[dict[str, Any]]:
    result = doc.get("result") if isinstance(doc, dict) else None
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        for key in ("events", "data", "items"):
            if isinstance(result.get(key), list):
                return result[key]
        if result.get("cardinality") == 0 or not result:
            return []
    raise DataError(f"V1 event page has no list of events: {str(doc)[:200]}")
