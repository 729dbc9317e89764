"""One columnar read of the catalog per run, for planning, rates and watermarks.

:meth:`Catalog.snapshot` reads the committed file entries once, only the columns
planning needs (strings dictionary-encoded: 15 M entries fit in a few hundred MB), plus
the watermarks. Everything a run asks of the catalog before it writes is answered here
with Arrow group-bys and filters, never by a Python loop over every file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rune_io.lake.resolve import loaded_up_to

#: Columns of file entries a snapshot holds.
SNAPSHOT_COLUMNS = [
    "key",
    "table",
    "stream_id",
    "patient_id",
    "partition",
    "partition_start",
    "rows",
    "max_time",
    "stream_min_time",
    "stream_max_time",
]
#: What rates alone need (a refresh's snapshot): half the memory.
RATE_COLUMNS = ["key", "stream_id", "patient_id", "partition_start", "rows", "max_time"]
#: Of those, the ones read dictionary-encoded (few distinct values, many rows).
SNAPSHOT_DICTIONARY = ("table", "stream_id", "patient_id", "partition")
#: Key of the events pseudo-stream of a patient (``rune_io.pipeline.EVENTS_PREFIX``).
EVENTS_PREFIX = "events/"
_DAY_US = 86_400e6


@dataclass
class Snapshot:
    """Live file entries (:data:`SNAPSHOT_COLUMNS`) and ``{stream_id: watermark}``."""

    files: pa.Table
    watermarks: dict[str, datetime]

    @property
    def num_files(self) -> int:
        return self.files.num_rows

    def rows_per_day(self) -> dict[str, float]:
        """Measured rows per day of each stream (events: ``events/<patient>``): a file's
        rows over the days its partition has data for (``ceil(max_time - partition
        start)``, at least 1: a daily file counts one day)."""
        if self.files.num_rows == 0:
            return {}
        parts = []  # per-batch sums, so temporaries stay one batch
        for batch in self.files.select(
            ["stream_id", "patient_id", "rows", "max_time", "partition_start"]
        ).to_batches(1 << 20):
            ps = batch.column("partition_start")
            last = pc.coalesce(batch.column("max_time"), ps)
            span_us = pc.cast(pc.subtract(last, ps), pa.int64())
            days = pc.max_element_wise(
                pc.ceil(pc.divide(pc.cast(span_us, pa.float64()), _DAY_US)), 1.0
            )
            part = pa.table(
                {
                    "s": batch.column("stream_id"),
                    "p": batch.column("patient_id"),
                    "r": batch.column("rows"),
                    "d": days,
                }
            )
            parts.append(part.group_by(["s", "p"]).aggregate([("r", "sum"), ("d", "sum")]))
        g = (
            pa.concat_tables(parts).unify_dictionaries()
            .group_by(["s", "p"])
            .aggregate([("r_sum", "sum"), ("d_sum", "sum")])
        )  # fmt: skip
        out: dict[str, float] = {}
        cols = (g.column(c).to_pylist() for c in ("s", "p", "r_sum_sum", "d_sum_sum"))
        for s, p, r, d in zip(*cols, strict=True):
            key = s or f"{EVENTS_PREFIX}{p}"
            out[key] = out.get(key, 0.0) + float(r) / max(float(d), 1.0)
        return out

    def covered(
        self, streams: pa.Table, start: datetime, until: datetime
    ) -> dict[str, set[datetime]]:
        """Partition starts in ``[start, until)`` whose file covers the range, by stream.

        ``streams`` has ``key`` (stream id, or ``events/<patient>``), ``table`` (the
        stream's lake table), ``lo`` and ``hi`` (its data bounds now, µs since the epoch,
        ``hi`` exclusive). The rule is :func:`rune_io.pipeline.plan.covers`, as one join and a few
        vectorized comparisons over the snapshot (no loop over files).
        """
        t = self.files
        if t.num_rows == 0 or streams.num_rows == 0:
            return {}
        ps = t.column("partition_start")
        t = t.filter(
            pc.and_(
                pc.greater_equal(ps, pa.scalar(start, type=ps.type)),
                pc.less(ps, pa.scalar(until, type=ps.type)),
            )
        )
        if t.num_rows == 0:
            return {}
        sid = t.column("stream_id").cast(pa.string())
        pid = t.column("patient_id").cast(pa.string())
        events_key = pc.binary_join_element_wise(EVENTS_PREFIX, pid, "")
        e = pa.table(
            {
                "key": pc.if_else(pc.equal(sid, ""), events_key, sid),
                "file_table": t.column("table").cast(pa.string()),
                "daily": pc.starts_with(t.column("partition").cast(pa.string()), "date="),
                "ps": _us(t.column("partition_start")),
                "f_lo": _us(t.column("stream_min_time")),
                "f_hi": _us(t.column("stream_max_time")),
            }
        ).join(streams, "key", join_type="inner")
        if e.num_rows == 0:
            return {}
        ps_np = e.column("ps").to_numpy().astype("datetime64[us]")
        month_end = (ps_np.astype("datetime64[M]") + 1).astype("datetime64[us]").astype("int64")
        day_end = ps_np.astype("int64") + int(_DAY_US)
        p_end = pa.array(
            np.where(e.column("daily").to_numpy(zero_copy_only=False), day_end, month_end)
        )
        want = pc.min_element_wise(
            pc.min_element_wise(p_end, pa.scalar(_to_us(until))), e.column("hi")
        )
        f_lo, f_hi, lo = e.column("f_lo"), e.column("f_hi"), e.column("lo")
        reached = pc.greater_equal(pc.add(f_hi, 1), want)
        history = pc.and_(pc.less(lo, f_lo), pc.greater(f_lo, e.column("ps")))
        ok = pc.and_(
            pc.and_(pc.equal(e.column("file_table"), e.column("table")), reached),
            pc.invert(history),
        )
        ok = pc.fill_null(ok, False)  # no upstream record: never covers
        hit = e.filter(ok).select(["key", "ps"])
        out: dict[str, set[datetime]] = {}
        for key, us in zip(
            hit.column("key").to_pylist(), hit.column("ps").to_pylist(), strict=True
        ):
            out.setdefault(key, set()).add(_EPOCH + timedelta(microseconds=us))
        return out


def partition_between(start: datetime, end: datetime):
    """``where(batch)``: a mask of the entries whose partition starts in ``[start, end)``."""

    def where(t):
        ps = t.column("partition_start")
        return pc.and_(
            pc.greater_equal(ps, pa.scalar(start, type=ps.type)),
            pc.less(ps, pa.scalar(end, type=ps.type)),
        )

    return where


def stream_bounds(rows: list[tuple[str, str, datetime, datetime]]) -> pa.Table:
    """The ``streams`` argument of :meth:`Snapshot.covered` from ``(key, table, lo, hi)``."""
    keys, tables, los, his = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "table": pa.array(tables, pa.string()),
            "lo": pa.array([_to_us(x) for x in los], pa.int64()),
            "hi": pa.array([_to_us(x) for x in his], pa.int64()),
        }
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _us(col) -> pa.ChunkedArray:
    return pc.cast(col, pa.int64())


def month_before(t: datetime) -> datetime:
    """A bound safely before the partition holding ``t`` (partitions are at most a month)."""
    return t - timedelta(days=32)


def read_snapshot(catalog, pend, coverage: tuple[datetime, datetime] | None) -> Snapshot:
    """:meth:`rune_io.lake.catalog.Catalog.snapshot` (``pend``: the pending objects)."""
    columns = SNAPSHOT_COLUMNS if coverage else RATE_COLUMNS
    dictionary = tuple(c for c in SNAPSHOT_DICTIONARY if c in columns)
    where = None if coverage is None else partition_between(*coverage)
    files = catalog._resolved_files(pend, columns, dictionary, where)
    if where is not None and files.num_rows:
        files = files.filter(where(files))  # the deltas' and pending rows too
    if "key" in files.column_names:  # (dropped already when a base was streamed)
        files = files.drop_columns(["key"])
    files = files.unify_dictionaries()  # one dictionary a column
    marks = catalog._small_state(pend)["watermarks"].values()
    return Snapshot(files, {r["stream_id"]: loaded_up_to(r) for r in marks})
