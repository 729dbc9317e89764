"""V2 Stream API: ``/v2/streams/{id}``, availability, batch availability, aggregates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from starlette.datastructures import QueryParams
from starlette.responses import Response

from .auth import Principal
from .cohort import StreamSpec
from .errors import ApiError, bad_request
from .params import (
    decode_token,
    encode_token,
    get_bool,
    get_choice,
    get_int,
    get_time_ns,
    get_timezone,
    query_hash,
)
from .render import csv_bytes, format_time, json_bytes, json_columns
from .signals import NS, Chunk
from .state import EmulatorState
from .store import enum_labels

NEXT_PAGE_HEADER = "X-Rune-Next-Page-Token"


def output_table(
    spec: StreamSpec,
    cols: Chunk,
    ts_mode: str,
    timezone: int | None,
    timezone_name: str | None,
    translate_enums: bool,
    fault: str | None = None,
) -> pa.Table:
    """The served columns: ``time`` then the value dimensions (faults applied)."""
    names = ["time"]
    arrays = [format_time(cols["time"], ts_mode, timezone, timezone_name)]
    for d in spec.meta.stream_type.value_dimensions:
        vals = cols[d.identifier]
        if d.data_type == "enum" and translate_enums:
            arr = pc.take(pa.array(enum_labels(spec, d.identifier)), pa.array(vals))
        else:
            arr = pa.array(vals)
        names.append(d.identifier)
        arrays.append(arr)
    n = len(cols["time"])
    if fault == "missing_column" and len(names) > 1:
        names.pop()
        arrays.pop()
    elif fault == "extra_column":
        extra = np.where(np.arange(n) % 2 == 0, np.arange(n) * 0.5, np.nan)
        names.append("extra_value")
        arrays.append(pa.array(extra, from_pandas=True))
    elif fault in ("non_numeric", "type_change") and len(names) > 1 and n:
        text = pc.cast(arrays[1], pa.string())
        if fault == "type_change":
            text = pc.binary_join_element_wise("v", text, "")
        else:
            text = pa.concat_arrays([pa.array(["abc"]), text.slice(1)])
        arrays[1] = text
    return pa.Table.from_arrays(arrays, names=names)


def _respond(table: pa.Table, fmt: str, next_token: str | None) -> Response:
    headers = {NEXT_PAGE_HEADER: next_token} if next_token else {}
    if fmt == "json":
        body = json_bytes({"cardinality": table.num_rows, "data": json_columns(table)})
        return Response(body, media_type="application/json", headers=headers)
    return Response(csv_bytes(table.column_names, table), media_type="text/csv", headers=headers)


def stream_data(
    state: EmulatorState, principal: Principal, stream_id: str, q: QueryParams, path: str
) -> Response:
    """``GET /v2/streams/{stream_id}``."""
    spec = state.stream(principal, stream_id)
    lo = get_time_ns(q, "start_time")
    hi = get_time_ns(q, "end_time")
    lo = state.store.start_ns if lo is None else lo
    hi = state.store.now_ns if hi is None else hi
    fmt = get_choice(q, "format", ("csv", "json"), "csv")
    limit = get_int(q, "limit", 0) or 0
    ts_mode = get_choice(q, "timestamp", ("iso", "unix", "unixns"), "iso")
    tz, tz_name = get_timezone(q)
    translate = get_bool(q, "translate_enums", True)
    qh = query_hash(q, path)
    after, served = None, 0
    if q.get("page_token"):
        tok = decode_token(q["page_token"], qh)
        after, served = int(tok["a"]), int(tok["n"])
    page_rows = state.config.page_size
    if limit:
        page_rows = min(page_rows, limit - served)
    if page_rows <= 0:
        cols, more = state.store.select(spec, 0, 0)
    else:
        start = lo if after is None else max(lo, after + 1)
        cols, more = state.store.select(spec, start, hi, max_rows=page_rows)
    n = len(cols["time"])
    if limit and served + n >= limit:
        more = False
    token = None
    if more and n:
        token = encode_token({"a": int(cols["time"][-1]), "n": served + n}, qh)
    table = output_table(spec, cols, ts_mode, tz, tz_name, translate, state.faults.get(spec.id))
    return _respond(table, fmt, token)


def availability(
    state: EmulatorState,
    principal: Principal,
    stream_ids: list[str],
    q: QueryParams,
    path: str,
    batch: bool,
) -> Response:
    """``/v2/streams/{id}/availability`` and ``/v2/batch/availability``."""
    if batch:
        if not stream_ids:
            raise bad_request("at least one stream_id is required")
        if len(stream_ids) > state.config.max_batch_streams:
            raise bad_request(
                f"too many streams: {len(stream_ids)} > {state.config.max_batch_streams} "
                "per batch availability call"
            )
        if not q.get("batch_operation"):
            raise bad_request("batch_operation (any|all) is required")
    op = get_choice(q, "batch_operation", ("any", "all"), "any")
    specs = [state.stream(principal, sid) for sid in stream_ids]
    lo = get_time_ns(q, "start_time")
    hi = get_time_ns(q, "end_time")
    if lo is None or hi is None:
        raise bad_request("start_time and end_time are required")
    if hi <= lo:
        raise bad_request("end_time must be after start_time")
    res = get_int(q, "resolution", 300, 86_400)
    if res is None:
        raise bad_request("resolution is required (300..86400 seconds)")
    fmt = get_choice(q, "format", ("csv", "json"), "csv")
    limit = get_int(q, "limit", 0) or 0
    ts_mode = get_choice(q, "timestamp", ("iso", "unix", "unixns"), "iso")
    tz, tz_name = get_timezone(q)
    step = res * NS
    if (hi - lo) // step > 1_000_000:
        raise bad_request("time range too long for this resolution")
    flags = [state.store.bin_counts(s, lo, hi, step) > 0 for s in specs]
    avail = np.logical_or.reduce(flags) if op == "any" else np.logical_and.reduce(flags)
    times = lo + np.arange(len(avail), dtype=np.int64) * step
    qh = query_hash(q, path)
    offset, served = 0, 0
    if q.get("page_token"):
        tok = decode_token(q["page_token"], qh)
        offset, served = int(tok["o"]), int(tok["n"])
    page_rows = state.config.page_size
    if limit:
        page_rows = max(0, min(page_rows, limit - served))
    end = min(len(avail), offset + page_rows)
    more = end < len(avail) and not (limit and served + (end - offset) >= limit)
    token = encode_token({"o": end, "n": served + end - offset}, qh) if more else None
    table = pa.table(
        {
            "time": format_time(times[offset:end], ts_mode, tz, tz_name),
            "availability": pa.array(avail[offset:end].astype(np.int64)),
        }
    )
    return _respond(table, fmt, token)


def aggregate_window(
    state: EmulatorState, principal: Principal, stream_id: str, q: QueryParams
) -> Response:
    """``/v2/streams/{id}/aggregate_window``: mean or sum of the first value per window."""
    spec = state.stream(principal, stream_id)
    lo = get_time_ns(q, "start_time")
    hi = get_time_ns(q, "end_time")
    res = get_int(q, "resolution", 1)
    if lo is None or hi is None or res is None:
        raise bad_request("start_time, end_time and resolution are required")
    fn = get_choice(q, "aggregate_function", ("sum", "mean"), "mean")
    ts_mode = get_choice(q, "timestamp", ("iso", "unix", "unixns"), "iso")
    tz, tz_name = get_timezone(q)
    dims = spec.meta.stream_type.value_dimensions
    if not dims or dims[0].data_type not in ("float", "double", "int", "long", "duration_ns"):
        raise bad_request("aggregate_window needs a numeric stream")
    step = res * NS
    nbins = max(0, -(-(hi - lo) // step))
    if nbins > 1_000_000:
        raise bad_request("time range too long for this resolution")
    cols, _ = state.store.select(spec, lo, hi)
    idx = (cols["time"] - lo) // step
    vals = cols[dims[0].identifier].astype(np.float64)
    sums = np.bincount(idx, weights=vals, minlength=nbins)[:nbins]
    counts = np.bincount(idx, minlength=nbins)[:nbins]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums if fn == "sum" else sums / counts
    out = np.where(counts > 0, out, np.nan)
    times = lo + np.arange(nbins, dtype=np.int64) * step
    table = pa.table(
        {
            "time": format_time(times, ts_mode, tz, tz_name),
            dims[0].identifier: pa.array(out, from_pandas=True),
        }
    )
    body = {"cardinality": nbins, "data": json_columns(table)}
    return Response(json_bytes(body), media_type="application/json")


def require_stream_ids(q: QueryParams) -> list[str]:
    ids = q.getlist("stream_id")
    if not ids:
        raise ApiError(400, "stream_id is required")
    return ids
