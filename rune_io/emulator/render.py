"""Vectorised rendering of rows to CSV / JSON (numpy + pyarrow, never row by row).

Timestamps are formatted into fixed-width ASCII with lookup tables and wrapped as an
Arrow string array without copying; the CSV is written by ``pyarrow.csv.write_csv``.
"""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

_HI = np.array([48 + i // 10 for i in range(100)], dtype=np.uint8)
_LO = np.array([48 + i % 10 for i in range(100)], dtype=np.uint8)
_US_DAY = 86_400_000_000
_CSV_OPTS = pcsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65_536)


def tz_offsets(t_ns: np.ndarray, timezone: int | None, timezone_name: str | None) -> np.ndarray:
    """UTC offset (seconds) of each timestamp."""
    if timezone_name:
        idx = pd.DatetimeIndex(t_ns.astype("datetime64[ns]")).tz_localize("UTC")
        wall = idx.tz_convert(timezone_name).tz_localize(None)
        return (wall.values.astype("datetime64[ns]").astype(np.int64) - t_ns) // 1_000_000_000
    return np.full(len(t_ns), int(timezone or 0), dtype=np.int64)


def format_iso(
    t_ns: np.ndarray,
    offsets_s: np.ndarray | None = None,
    sep: str = "T",
    with_offset: bool = True,
) -> pa.Array:
    """RFC 3339 strings, microsecond precision, e.g. ``2026-11-01T07:00:00.020000Z``.

    Without ``offsets_s`` the suffix is ``Z``; with them, local wall time and ``+HH:MM``.
    ``with_offset=False`` drops the suffix (V1 ``datetime`` format).
    """
    n = len(t_ns)
    us = t_ns // 1000
    if offsets_s is not None:
        us = us + offsets_s * 1_000_000
    suffix = b"" if not with_offset else (b"Z" if offsets_s is None else b"+00:00")
    tmpl = np.frombuffer(b"0000-00-00" + sep.encode() + b"00:00:00.000000" + suffix, np.uint8)
    w = len(tmpl)
    out = np.empty((n, w), dtype=np.uint8)
    out[:] = tmpl
    if n:
        days = us // _US_DAY
        rem = us - days * _US_DAY
        cuts = np.flatnonzero(np.diff(days)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [n]))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            d = (date(1970, 1, 1) + timedelta(days=int(days[s]))).isoformat().encode()
            out[s:e, :10] = np.frombuffer(d, np.uint8)
        sod = rem // 1_000_000
        frac = rem - sod * 1_000_000
        fields = (
            (11, sod // 3600),
            (14, (sod // 60) % 60),
            (17, sod % 60),
            (20, frac // 10_000),
            (22, (frac // 100) % 100),
            (24, frac % 100),
        )
        for col, v in fields:
            out[:, col] = _HI[v]
            out[:, col + 1] = _LO[v]
        if offsets_s is not None and with_offset:
            neg = offsets_s < 0
            a = np.abs(offsets_s) // 60
            out[:, 26] = np.where(neg, ord("-"), ord("+"))
            out[:, 27] = _HI[a // 60]
            out[:, 28] = _LO[a // 60]
            out[:, 30] = _HI[a % 60]
            out[:, 31] = _LO[a % 60]
    offs = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offs), pa.py_buffer(out)])


def format_time(
    t_ns: np.ndarray,
    mode: str,
    timezone: int | None = None,
    timezone_name: str | None = None,
) -> pa.Array:
    """Time column for ``timestamp=iso|unix|unixns|datetime``."""
    if mode == "unixns":
        return pa.array(t_ns, type=pa.int64())
    if mode == "unix":
        return pa.array(t_ns / 1e9, type=pa.float64())
    offsets = None
    if timezone or timezone_name:
        offsets = tz_offsets(t_ns, timezone, timezone_name)
    if mode == "datetime":
        return format_iso(t_ns, offsets, sep=" ", with_offset=False)
    return format_iso(t_ns, offsets)


def csv_bytes(header: list[str], table: pa.Table) -> bytes:
    """A complete CSV document: header row, then the rows (no quoting, empty = null)."""
    buf = io.BytesIO()
    buf.write((",".join(header) + "\n").encode())
    if table.num_rows:
        pcsv.write_csv(table, buf, _CSV_OPTS)
    return buf.getvalue()


def json_columns(table: pa.Table) -> dict[str, list]:
    """Column-oriented JSON-ready dict (NaN -> null)."""
    out: dict[str, list] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_floating(col.type):
            col = pc.if_else(pc.is_nan(col), None, col)
        out[name] = col.to_pylist()
    return out


def json_bytes(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
