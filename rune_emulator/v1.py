"""V1 Stream API of the seed reference: ``accel``, ``heartrate`` (JSON, CSV), ``event`` (JSON).

Paging: ``page``/``page_size`` (JSON default and max 10,000 points; CSV 3,600,000);
JSON carries ``next_page`` unless on the last page; a CSV page past the end is an
empty body; every page with more data after it carries ``X-Rune-Next-Page-Token``,
accepted back as ``next_page_token`` (then ``page`` must not be set).

Result shapes (the seed leaves them open): JSON ``result`` is
``{"cardinality": n, "time": [...], "<column>": [...]}`` with the CSV's columns
(``x,y,z`` for accel, ``bpm`` for heartrate, ``availability`` for ``availability(...)``);
``partition_size`` splits every array into sub-arrays. Times are floored to the
microsecond (an inference, README): ``timestamp=unix`` is float seconds of that
microsecond, ``iso`` RFC 3339 (``Z`` or ``+HH:MM``), ``datetime`` local
``YYYY-MM-DD HH:MM:SS.ffffff``.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from starlette.datastructures import QueryParams
from starlette.responses import Response

from .auth import Principal
from .errors import ApiError, bad_request
from .params import (
    decode_token,
    encode_token,
    get_choice,
    get_float,
    get_int,
    query_hash,
)
from .render import csv_bytes, format_time, json_bytes, json_columns
from .state import EmulatorState

JSON_MAX_PAGE = 10_000
CSV_MAX_PAGE = 3_600_000
DEFAULT_AVAILABILITY_RES_S = 300.0
NEXT_PAGE_HEADER = "X-Rune-Next-Page-Token"

_EXPRESSIONS = {
    "accel": ("accel", "user", "gravity", "availability(accel)"),
    "heartrate": ("bpm", "availability(bpm)"),
}
_INTERPOLATIONS = ("", "linear", "null", "previous", "zero")


def handle(state: EmulatorState, principal: Principal, resource: str, q: QueryParams) -> Response:
    """Dispatch ``/v1/{resource}``, e.g. ``accel.csv``."""
    name, _, fmt = resource.partition(".")
    if name not in ("accel", "heartrate", "event") or fmt not in ("json", "csv"):
        raise ApiError(404, f"unknown V1 resource {resource!r}")
    if name == "event" and fmt != "json":
        raise ApiError(404, "events are served as JSON only")
    patient_id = state.check_patient(principal, q.get("patient_id") or None)
    page, page_size = _paging(q, fmt)
    ts_mode = get_choice(q, "timestamp", ("unix", "datetime", "iso"), "unix")
    tz = get_int(q, "timezone", -86_399, 86_399) or 0
    qh = query_hash(q, resource, exclude=("next_page_token", "page"))
    if q.get("next_page_token"):
        page = int(decode_token(q["next_page_token"], qh)["p"])
    if name == "event":
        table, more = _events(state, patient_id, q, page, page_size, ts_mode, tz)
    else:
        table, more = _series(state, patient_id, name, q, page, page_size, ts_mode, tz)
    headers = {NEXT_PAGE_HEADER: encode_token({"p": page + 1}, qh)} if more else {}
    if fmt == "csv":
        body = csv_bytes(table.column_names, table) if table.num_rows else b""
        return Response(body, media_type="text/csv", headers=headers)
    partition = get_int(q, "partition_size", 1)
    if name == "event":
        result: dict = {"cardinality": table.num_rows, "events": _event_rows(table)}
    else:
        cols = json_columns(table)
        if partition:
            cols = {
                k: [v[i : i + partition] for i in range(0, len(v), partition)]
                for k, v in cols.items()
            }
        result = {"cardinality": table.num_rows, **cols}
    body_obj: dict = {"success": True, "result": result}
    if more:
        body_obj["next_page"] = page + 1
    return Response(json_bytes(body_obj), media_type="application/json", headers=headers)


def _paging(q: QueryParams, fmt: str) -> tuple[int, int]:
    cap = JSON_MAX_PAGE if fmt == "json" else CSV_MAX_PAGE
    if q.get("next_page_token") and q.get("page") not in (None, ""):
        raise bad_request("page must not be set together with next_page_token")
    page = get_int(q, "page", 0) or 0
    size = get_int(q, "page_size", 0, cap) or cap
    return page, size


def _device(state: EmulatorState, patient_id: str, q: QueryParams, required: bool) -> str | None:
    device_id = q.get("device_id") or None
    if device_id is None:
        if required:
            raise bad_request("device_id is required")
        return None
    patient = state.cohort.existing_patient(patient_id)  # checked by handle()
    if device_id not in {d.id for d in patient.devices}:
        raise ApiError(404, f"device not found: {device_id}")
    return device_id


def _series(
    state: EmulatorState,
    patient_id: str,
    name: str,
    q: QueryParams,
    page: int,
    page_size: int,
    ts_mode: str,
    tz: int,
) -> tuple[pa.Table, bool]:
    device_id = _device(state, patient_id, q, required=True)
    assert device_id is not None  # required=True: _device raised otherwise
    lo, hi = get_float(q, "start_time"), get_float(q, "end_time")
    if lo is None or hi is None:
        raise bad_request("start_time and end_time are required")
    lo_ns, hi_ns = int(round(lo * 1e6)) * 1000, int(round(hi * 1e6)) * 1000
    expr = get_choice(q, "expression", _EXPRESSIONS[name], _EXPRESSIONS[name][0])
    freq, res = get_float(q, "frequency"), get_float(q, "resolution")
    if freq is not None and res is not None:
        raise bad_request("at most one of frequency and resolution may be given")
    if (freq is not None and freq <= 0) or (res is not None and res <= 0):
        raise bad_request("frequency and resolution must be positive")
    if freq is not None:
        res = 1.0 / freq
    interp = q.get("interpolation", "")
    if interp not in _INTERPOLATIONS:
        raise bad_request(f"interpolation must be one of {list(_INTERPOLATIONS)}")
    specs = _v1_series(state, patient_id, device_id, name)
    if not specs:
        raise ApiError(404, f"no {name} data for device {device_id}")
    for s in (x for pair in specs for x in pair if x is not None):
        if state.faults.get(s.id) == "always_500":
            raise ApiError(500, "internal error (injected fault)")
    names = ["x", "y", "z"] if name == "accel" else ["bpm"]
    availability = expr.startswith("availability(")
    offset = page * page_size
    if res is None and not availability:
        # raw points: page straight out of the day chunks
        parts = [_select(state, s, lo_ns, hi_ns, offset, page_size) for s in specs]
        t = parts[0][0]["time"]
        more = parts[0][1]
        vals = [_expr_values(cols, expr) for cols, _ in parts]
        return _table(t, names, vals, ts_mode, tz), more
    step = int(round((res or DEFAULT_AVAILABILITY_RES_S) * 1e9))
    if step <= 0 or (hi_ns - lo_ns) // step > 5_000_000:
        raise bad_request("too many points for this resolution")
    full = [_select(state, s, lo_ns, hi_ns)[0] for s in specs]
    nbins = max(0, -(-(hi_ns - lo_ns) // step))
    grid = lo_ns + np.arange(nbins, dtype=np.int64) * step
    idx = (full[0]["time"] - lo_ns) // step
    counts = np.bincount(idx, minlength=nbins)[:nbins]
    if availability:
        t, vals, names = grid, [(counts > 0).astype(np.int64)], ["availability"]
    else:
        vals = []
        for cols in full:
            v = _expr_values(cols, expr)
            sums = np.bincount(idx, weights=v, minlength=nbins)[:nbins]
            with np.errstate(invalid="ignore", divide="ignore"):
                vals.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
        t, vals = _interpolate(grid, counts > 0, vals, interp)
    end = min(len(t), offset + page_size)
    more = end < len(t)
    page_vals = [v[offset:end] for v in vals]
    return _table(t[offset:end], names, page_vals, ts_mode, tz), more


def _v1_series(state: EmulatorState, patient_id: str, device_id: str, name: str) -> list:
    """(spec, gravity spec | None) per V1 column: accel x/y/z from the watch's motion
    streams (user + gravity), heartrate from the patient's HealthKit heart rate."""
    streams = state.cohort.streams_of(patient_id)
    if name == "heartrate":
        devices = {
            d.id
            for d in state.cohort.existing_patient(patient_id).devices
            if d.alias != "Percept PC"
        }
        hr = [s for s in streams if s.kind == "hk_heart_rate" and device_id in devices]
        return [(s, None) for s in hr]
    motion = {
        (s.param("measurement"), s.param("axis")): s
        for s in streams
        if s.kind == "motion" and s.meta.device_id == device_id
    }
    if not motion:
        return []
    return [(motion[("user", a)], motion[("gravity", a)]) for a in ("x", "y", "z")]


def _select(state: EmulatorState, pair, lo: int, hi: int, offset: int = 0, n=None):
    spec, gravity = pair
    cols, more = state.store.select(spec, lo, hi, offset, n)
    if gravity is None:
        return {"time": cols["_t"], "value": cols["rate"]}, more
    g, _ = state.store.select(gravity, lo, hi, offset, n)
    return {"time": cols["_t"], "user": cols["acceleration"], "gravity": g["acceleration"]}, more


def _expr_values(cols: dict, expr: str) -> np.ndarray:
    if "value" in cols:
        return cols["value"]
    if expr in ("user", "gravity"):
        return cols[expr]
    return cols["user"] + cols["gravity"]


def _interpolate(grid, has, vals, interp):
    if interp == "":
        return grid[has], [v[has] for v in vals]
    out = []
    for v in vals:
        if interp == "zero":
            v = np.where(has, v, 0.0)
        elif interp == "previous":
            last = np.maximum.accumulate(np.where(has, np.arange(len(v)), -1))
            v = np.where(last >= 0, v[np.maximum(last, 0)], np.nan)
        elif interp == "linear" and has.any():
            xs = np.flatnonzero(has)
            filled = np.interp(np.arange(len(v)), xs, v[has])
            inside = (np.arange(len(v)) >= xs[0]) & (np.arange(len(v)) <= xs[-1])
            v = np.where(inside, filled, np.nan)
        out.append(v)  # "null": NaN -> null
    return grid, out


def _table(t, names, vals, ts_mode, tz) -> pa.Table:
    arrays = [format_time(t, ts_mode, tz or None, v1=True)]
    arrays += [pa.array(v, from_pandas=True) for v in vals]
    return pa.Table.from_arrays(arrays, names=["time", *names])


def _events(state, patient_id, q, page, page_size, ts_mode, tz) -> tuple[pa.Table, bool]:
    _device(state, patient_id, q, required=False)
    lo, hi = get_float(q, "start_time"), get_float(q, "end_time")
    prefix = q.get("event") or ""
    events = [
        e
        for e in state.cohort.events(patient_id)
        if (lo is None or e.start_time.timestamp() >= lo)
        and (hi is None or e.start_time.timestamp() < hi)
        and (not prefix or e.type == prefix or e.type.startswith(prefix + "."))
    ]
    offset = page * page_size
    chunk = events[offset : offset + page_size]
    more = offset + page_size < len(events)
    t = np.array([int(e.start_time.timestamp() * 1e6) * 1000 for e in chunk], dtype=np.int64)
    ends = [e.end_time for e in chunk]
    end_ns = np.array([int(x.timestamp() * 1e6) * 1000 if x else 0 for x in ends], np.int64)
    end_fmt = format_time(end_ns, ts_mode, tz or None, v1=True).to_pylist()
    table = pa.table(
        {
            "time": format_time(t, ts_mode, tz or None, v1=True),
            "end_time": pa.array([f if x else None for f, x in zip(end_fmt, ends, strict=True)]),
            "id": [e.id for e in chunk],
            "type": [e.type for e in chunk],
            "display_name": [e.display_name for e in chunk],
            "method": [e.method for e in chunk],
            "payload": [e.payload for e in chunk],
        }
    )
    return table, more


def _event_rows(table: pa.Table) -> list[dict]:
    rows = table.to_pylist()
    for r in rows:
        r["payload"] = json.loads(r["payload"] or "{}")
    return rows
