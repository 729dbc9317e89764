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
    get_choice,
    get_int,
    get_time_ns,
    get_timezone,
    query_hash,
)
from .render import csv_bytes, csv_quoted, float_text, format_time, json_bytes, json_columns
from .signals import Chunk
from .state import EmulatorState

NEXT_PAGE_HEADER = "X-Rune-Next-Page-Token"
TS_MODES = ("iso", "unix", "unixns")
NUMERIC = ("sfloat", "ufloat", "uint")


def _dtype(spec: StreamSpec, column: str) -> str:
    if column == "measurement_duration_ns":
        return "uint"
    return next(d.data_type for d in spec.meta.stream_type.dimensions if d.identifier == column)


def _cell_array(vals: np.ndarray, dtype: str, ts, as_json: bool) -> pa.Array:
    """One served column: timestamps per ``ts``, floats as repr text (CSV), bool as true/false."""
    if dtype == "timestamp":
        return ts(vals)
    if dtype in ("sfloat", "ufloat"):
        return pa.array(vals, type=pa.float64()) if as_json else float_text(vals)
    if dtype == "bool":
        arr = pa.array(vals, type=pa.bool_())
        return arr if as_json else pc.if_else(arr, "true", "false")
    if dtype == "uint":
        return pa.array(vals, type=pa.int64())
    return pa.array(list(vals), type=pa.string())


def output_table(
    spec: StreamSpec,
    cols: Chunk,
    ts_mode: str,
    timezone: int | None = None,
    timezone_name: str | None = None,
    fault: str | None = None,
    as_json: bool = False,
) -> pa.Table:
    """The served columns in CSV order (faults applied); every timestamp column per ``ts_mode``."""

    def ts(v):
        arr = format_time(v, ts_mode, timezone, timezone_name)
        if ts_mode == "unix" and not as_json:
            return float_text(np.asarray(v, dtype=np.int64) / 1e9)
        return arr

    names = list(spec.columns)
    arrays = [_cell_array(cols[c], _dtype(spec, c), ts, as_json) for c in names]
    n = len(cols["_t"])
    first_value = next(
        (i for i, c in enumerate(names) if _dtype(spec, c) != "timestamp"), len(names) - 1
    )
    if fault == "missing_column" and len(names) > 1:
        names.pop()
        arrays.pop()
    elif fault == "extra_column":
        extra = np.where(np.arange(n) % 2 == 0, np.arange(n) * 0.5, np.nan)
        names.append("extra_value")
        text = pc.if_else(pc.is_nan(pa.array(extra)), None, float_text(extra))
        arrays.append(pa.array(extra, from_pandas=True) if as_json else text)
    elif fault in ("non_numeric", "type_change") and n:
        text = pc.cast(arrays[first_value], pa.string())
        if fault == "type_change":
            text = pc.binary_join_element_wise("v", text, "")
        else:
            text = pa.concat_arrays([pa.array(["abc"]), text.slice(1)])
        arrays[first_value] = text
    return pa.Table.from_arrays(arrays, names=names)


def _respond(spec: StreamSpec | None, table: pa.Table, fmt: str, next_token: str | None):
    headers = {NEXT_PAGE_HEADER: next_token} if next_token else {}
    if fmt == "json":
        body = json_bytes({"cardinality": table.num_rows, "data": json_columns(table)})
        return Response(body, media_type="application/json", headers=headers)
    quoted = spec is not None and any(
        d.data_type == "dict" for d in spec.meta.stream_type.dimensions
    )
    if quoted:
        return Response(
            csv_quoted(table.column_names, table), media_type="text/csv", headers=headers
        )
    return Response(csv_bytes(table.column_names, table), media_type="text/csv", headers=headers)


def _page_token(cols: Chunk, after: int | None, skip: int, served: int, qh: str) -> str:
    """Resume after the last served key, skipping the rows with that key already served."""
    t = cols["_t"]
    last = int(t[-1])
    tail = len(t) - int(np.searchsorted(t, last, "left"))
    if tail == len(t) and after == last:
        tail += skip
    return encode_token({"a": last, "k": tail, "n": served + len(t)}, qh)


def stream_data(
    state: EmulatorState, principal: Principal, stream_id: str, q: QueryParams, path: str
) -> Response:
    """``GET /v2/streams/{stream_id}``."""
    spec = state.stream(principal, stream_id)
    now = state.store.now_ns
    lo = get_time_ns(q, "start_time")
    hi = get_time_ns(q, "end_time")
    lo = state.store.start_ns if lo is None else lo
    hi = now if hi is None else hi
    fmt = get_choice(q, "format", ("csv", "json"), "csv")
    limit = get_int(q, "limit", 0) or 0
    ts_mode = get_choice(q, "timestamp", TS_MODES, "iso")
    tz, tz_name = get_timezone(q)
    qh = query_hash(q, path)
    after, skip, served = None, 0, 0
    if q.get("page_token"):
        tok = decode_token(q["page_token"], qh)
        after, skip, served = int(tok["a"]), int(tok.get("k", 0)), int(tok["n"])
    page_rows = state.config.page_size
    if limit:
        page_rows = min(page_rows, limit - served)
    parts: list[tuple[int, Chunk, int, int, int]]
    if page_rows <= 0:
        parts, more = [], False
    else:
        start = lo if after is None else max(lo, after)
        offset = skip if after is not None and after >= lo else 0
        parts, more = state.store.select_parts(spec, start, hi, offset, page_rows, now_ns=now)
    keys = {
        "_t": np.concatenate([c["_t"][a:b] for _, c, a, b, _ in parts] or [np.empty(0, np.int64)])
    }
    n = len(keys["_t"])
    if limit and served + n >= limit:
        more = False
    token = _page_token(keys, after, skip, served, qh) if more and n else None
    fault = state.faults.get(spec.id)
    as_json = fmt == "json"
    if fault is None and not as_json and tz is None and tz_name is None:
        table = _page_text(state, spec, parts, ts_mode)
    else:
        if parts:
            cols = {k: np.concatenate([p[1][k][p[2] : p[3]] for p in parts]) for k in parts[0][1]}
        else:
            cols = state.store.select(spec, 0, 0)[0]
        table = output_table(spec, cols, ts_mode, tz, tz_name, fault, as_json=as_json)
    return _respond(spec, table, fmt, token)


def _as_text(table: pa.Table) -> pa.Table:
    """Every column as its CSV text (integers formatted once, not on every page)."""
    cols = [c if pa.types.is_string(c.type) else pc.cast(c, pa.string()) for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names)


def _page_text(state: EmulatorState, spec: StreamSpec, parts, ts_mode: str) -> pa.Table:
    """A CSV page in UTC from whole-day formatted tables (cached) when a page covers a good
    part of a day, else formatted directly: the same text either way."""
    pieces = []
    for day, chunk, a, b, window in parts:
        if window * 4 >= len(chunk["_t"]):  # the request reads much of this day

            def make(c: Chunk = chunk) -> pa.Table:
                return _as_text(output_table(spec, c, ts_mode))

            whole = state.text_cache.get((spec.id, day, ts_mode), make)
            pieces.append(whole.slice(a, b - a))
        else:
            sub = {k: v[a:b] for k, v in chunk.items()}
            pieces.append(_as_text(output_table(spec, sub, ts_mode)))
    if not pieces:
        return output_table(spec, state.store.select(spec, 0, 0)[0], ts_mode, None, None)
    return pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]


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
    ts_mode = get_choice(q, "timestamp", TS_MODES, "iso")
    tz, tz_name = get_timezone(q)
    step = res * 1_000_000_000
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
    if fmt == "json":
        body = {
            "approx_available_duration_s": int(avail[offset:end].sum()) * res,
            "cardinality": table.num_rows,
            "data": json_columns(table),
        }
        headers = {NEXT_PAGE_HEADER: token} if token else {}
        return Response(json_bytes(body), media_type="application/json", headers=headers)
    return _respond(None, table, fmt, token)


def require_stream_ids(q: QueryParams) -> list[str]:
    ids = q.getlist("stream_id")
    if not ids:
        raise ApiError(400, "stream_id is required")
    return ids
