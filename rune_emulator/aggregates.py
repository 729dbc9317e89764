"""``/v2/streams/{id}/aggregate_window`` and ``/v2/streams/{id}/daily_aggregate`` (JSON).

Shapes from the public evidence: ``data`` carries ``time``, ``aggregate_values`` and
``duration_sum``, plus a ``summary`` object (``value_mean``, ``value_min``, ``value_max``,
``value_med``, ``value_std``). Both need a stream whose first value dimension is numeric.
``duration_sum``: seconds of ``measurement_duration_ns`` in the window (inference).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from starlette.datastructures import QueryParams
from starlette.responses import Response

from .auth import Principal
from .cohort import StreamSpec
from .errors import bad_request
from .params import get_choice, get_int, get_time_ns, get_timezone
from .render import format_time, json_bytes, json_columns
from .state import EmulatorState
from .v2 import NUMERIC, TS_MODES

DAY_S = 86_400


def _value_column(spec: StreamSpec) -> str:
    dims = [d for d in spec.meta.stream_type.dimensions if d.data_type != "timestamp"]
    if (
        len(dims) != 1
        or dims[0].data_type not in NUMERIC
        or spec.meta.stream_type.key_dimension.identifier != "time"
    ):
        raise bad_request("aggregates need a stream type with a time and one numeric value")
    return dims[0].identifier


def _bins(state, spec, lo, hi, step):
    """(bin index, values, durations in s) of the visible rows in [lo, hi)."""
    col = _value_column(spec)
    cols, _ = state.store.select(spec, lo, hi)
    idx = (cols["_t"] - lo) // step
    vals = cols[col].astype(np.float64)
    if "measurement_duration_ns" in cols:
        dur = cols["measurement_duration_ns"] / 1e9
    else:
        dur = np.zeros(len(vals))
    return idx, vals, dur


def _summary(values: np.ndarray) -> dict:
    v = values[np.isfinite(values)]
    if not len(v):
        return dict.fromkeys(("value_mean", "value_min", "value_max", "value_med", "value_std"))
    return {
        "value_mean": float(v.mean()),
        "value_min": float(v.min()),
        "value_max": float(v.max()),
        "value_med": float(np.median(v)),
        "value_std": float(v.std()),
    }


def _aggregate(idx, vals, dur, nbins, fn):
    sums = np.bincount(idx, weights=vals, minlength=nbins)[:nbins]
    counts = np.bincount(idx, minlength=nbins)[:nbins]
    dsum = np.bincount(idx, weights=dur, minlength=nbins)[:nbins]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums if fn == "sum" else sums / counts
    return np.where(counts > 0, out, np.nan), dsum


def aggregate_window(
    state: EmulatorState, principal: Principal, stream_id: str, q: QueryParams
) -> Response:
    """Mean or sum of the value per window of ``resolution`` seconds."""
    spec = state.stream(principal, stream_id)
    lo = get_time_ns(q, "start_time")
    hi = get_time_ns(q, "end_time")
    res = get_int(q, "resolution", 1)
    if lo is None or hi is None or res is None:
        raise bad_request("start_time, end_time and resolution are required")
    fn = get_choice(q, "aggregate_function", ("sum", "mean"), "mean")
    ts_mode = get_choice(q, "timestamp", TS_MODES, "iso")
    tz, tz_name = get_timezone(q)
    step = res * 1_000_000_000
    nbins = max(0, -(-(hi - lo) // step))
    if nbins > 1_000_000:
        raise bad_request("time range too long for this resolution")
    idx, vals, dur = _bins(state, spec, lo, hi, step)
    out, dsum = _aggregate(idx, vals, dur, nbins, fn)
    times = lo + np.arange(nbins, dtype=np.int64) * step
    table = pa.table(
        {
            "time": format_time(times, ts_mode, tz, tz_name),
            "aggregate_values": pa.array(out, from_pandas=True),
            "duration_sum": pa.array(dsum),
        }
    )
    body = {"cardinality": nbins, "data": json_columns(table), "summary": _summary(vals)}
    return Response(json_bytes(body), media_type="application/json")


def daily_aggregate(
    state: EmulatorState, principal: Principal, stream_id: str, q: QueryParams
) -> Response:
    """An average day: the mean value per ``resolution``-second interval over ``n_days``."""
    spec = state.stream(principal, stream_id)
    lo = get_time_ns(q, "start_time")
    res = get_int(q, "resolution", 1, DAY_S)
    n_days = get_int(q, "n_days", 1, 14)
    if lo is None or res is None or n_days is None:
        raise bad_request("start_time, resolution and n_days (1..14) are required")
    if DAY_S % res:
        raise bad_request("resolution must evenly divide 24 hours")
    step = res * 1_000_000_000
    nbins = DAY_S // res
    idx, vals, dur = _bins(state, spec, lo, lo + n_days * DAY_S * 1_000_000_000, step)
    out, dsum = _aggregate(idx % nbins, vals, dur, nbins, "mean")
    data = {
        "offset_s": [k * res for k in range(nbins)],
        "aggregate_values": [None if np.isnan(v) else float(v) for v in out],
        "duration_sum": dsum.tolist(),
    }
    body = {"cardinality": nbins, "data": data, "summary": _summary(vals)}
    return Response(json_bytes(body), media_type="application/json")
