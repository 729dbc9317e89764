"""Vectorised rendering of rows to CSV / JSON (numpy + pyarrow, never row by row).

Timestamps are formatted into ASCII with lookup tables and wrapped as an Arrow string
array; V2 ISO times are trimmed (``2022-07-28T14:26:45.3618588Z``, ``...45.36221Z``,
``2022-11-12T03:53:00Z``). Floats are ``repr(float)`` text. The CSV is written by
``pyarrow.csv.write_csv``, or by :mod:`csv` when a ``dict`` cell needs quoting.
"""

from __future__ import annotations

import csv
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


def format_iso_us(
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
    v1: bool = False,
) -> pa.Array:
    """Time column for ``timestamp=iso|unix|unixns|datetime``.

    ``v1``: every format carries the instant floored to the microsecond (V1's
    resolution, an inference: see the README), so ``unix`` is ``us / 1e6`` and the three
    formats name the same instant.
    """
    if v1:
        us = np.asarray(t_ns, dtype=np.int64) // 1000
        if mode == "unix":
            return pa.array(us / 1e6, type=pa.float64())
        t_ns = us * 1000
    if mode == "unixns":
        return pa.array(t_ns, type=pa.int64())
    if mode == "unix":
        return pa.array(t_ns / 1e9, type=pa.float64())
    offsets = None
    if timezone or timezone_name:
        offsets = tz_offsets(t_ns, timezone, timezone_name)
    if mode == "datetime":
        return format_iso_us(t_ns, offsets, sep=" ", with_offset=False)
    if v1:
        return format_iso_us(t_ns, offsets)
    return format_iso_trimmed(t_ns, offsets)


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


def format_iso_trimmed(t_ns: np.ndarray, offsets_s: np.ndarray | None = None) -> pa.Array:
    """ISO 8601 with up to 7 fractional digits, trailing zeros (and a bare ``.``) trimmed.

    ``Z`` without ``offsets_s``; with them, local wall time and ``+HH:MM``.
    """
    t_ns = np.asarray(t_ns, dtype=np.int64)
    n = len(t_ns)
    if offsets_s is not None:
        t_ns = t_ns + offsets_s * 1_000_000_000
    out = np.empty((n, 27), dtype=np.uint8)
    out[:] = np.frombuffer(b"0000-00-00T00:00:00.0000000", np.uint8)
    ticks = t_ns // 100  # 100 ns units
    days = ticks // 864_000_000_000
    rem = ticks - days * 864_000_000_000
    if n:
        cuts = np.flatnonzero(np.diff(days)) + 1
        for s, e in zip(np.r_[0, cuts].tolist(), np.r_[cuts, n].tolist(), strict=True):
            d = (date(1970, 1, 1) + timedelta(days=int(days[s]))).isoformat().encode()
            out[s:e, :10] = np.frombuffer(d, np.uint8)
    sod = rem // 10_000_000
    frac = rem - sod * 10_000_000  # 7 digits
    fields: tuple[tuple[int, np.ndarray], ...] = (
        (11, sod // 3600),
        (14, (sod // 60) % 60),
        (17, sod % 60),
    )
    fields += ((20, frac // 100_000), (22, (frac // 1000) % 100), (24, (frac // 10) % 100))
    for col, v in fields:
        out[:, col] = _HI[v]
        out[:, col + 1] = _LO[v]
    out[:, 26] = 48 + frac % 10
    offs = np.arange(0, (n + 1) * 27, 27, dtype=np.int32)
    text = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offs), pa.py_buffer(out)])
    # trailing zeros go, then a bare "." ("...:00.0000000" -> "...:00"; seconds are kept)
    text = pc.utf8_rtrim(pc.utf8_rtrim(text, characters="0"), characters=".")
    if offsets_s is None:
        return pc.binary_join_element_wise(text, "Z", "")
    a = np.abs(offsets_s) // 60
    suffix = np.empty((n, 6), dtype=np.uint8)
    suffix[:, 0] = np.where(offsets_s < 0, ord("-"), ord("+"))
    suffix[:, 1], suffix[:, 2], suffix[:, 3] = _HI[a // 60], _LO[a // 60], ord(":")
    suffix[:, 4], suffix[:, 5] = _HI[a % 60], _LO[a % 60]
    soffs = np.arange(0, (n + 1) * 6, 6, dtype=np.int32)
    sfx = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(soffs), pa.py_buffer(suffix)])
    return pc.binary_join_element_wise(text, sfx, "")


def float_text(values: np.ndarray) -> pa.Array:
    """``repr(float)`` of every value, vectorised (Arrow's shortest digits, fixed up)."""
    values = np.asarray(values, dtype=np.float64)
    text = pc.cast(pa.array(values), pa.string())
    if not len(values):
        return text
    mag = np.abs(values)
    whole = (values == np.floor(values)) & (mag < 1e16)
    if whole.any():
        ints = values[whole].astype(np.int64).astype(str).astype(object)
        neg0 = np.signbit(values[whole]) & (values[whole] == 0)
        ints[neg0] = "-0"
        text = pc.replace_with_mask(text, pa.array(whole), pa.array(ints + ".0", pa.string()))
    odd = ((mag < 1e-4) & (mag > 0)) | (mag >= 1e16) | ~np.isfinite(values)
    if odd.any():
        reprs = [repr(float(v)) for v in values[odd]]
        text = pc.replace_with_mask(text, pa.array(odd), pa.array(reprs, pa.string()))
    return text


def csv_quoted(header: list[str], table: pa.Table) -> bytes:
    """A CSV document whose cells may need quoting (``dict`` JSON): the :mod:`csv` module."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    cols = [c.to_pylist() for c in table.columns]
    w.writerows(zip(*cols, strict=True))
    return buf.getvalue().encode()
