"""One columnar read of the catalog per run, for planning, rates and watermarks.

:meth:`Catalog.snapshot` reads the committed file entries once, only the columns
planning needs (strings dictionary-encoded: 15 M entries fit in a few hundred MB), plus
the watermarks. Everything a run asks of the catalog before it writes is answered here
with Arrow group-bys and filters, never by a Python loop over every file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: Columns of file entries a snapshot holds.
SNAPSHOT_COLUMNS = [
    "key",
    "table",
    "stream_id",
    "patient_id",
    "partition",
    "partition_start",
    "rows",
    "min_time",
    "max_time",
    "stream_min_time",
    "stream_max_time",
]
#: Of those, the ones read dictionary-encoded (few distinct values, many rows).
SNAPSHOT_DICTIONARY = ("table", "stream_id", "patient_id", "partition")
#: Key of the events pseudo-stream of a patient (``rune_io.sync.EVENTS_PREFIX``).
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
        t = self.files
        if t.num_rows == 0:
            return {}
        last = pc.coalesce(t.column("max_time"), t.column("partition_start"))
        span_us = pc.cast(pc.subtract(last, t.column("partition_start")), pa.int64())
        days = pc.max_element_wise(pc.ceil(pc.divide(pc.cast(span_us, pa.float64()), _DAY_US)), 1.0)
        g = (
            pa.table(
                {
                    "s": t.column("stream_id"),
                    "p": t.column("patient_id"),
                    "r": t.column("rows"),
                    "d": days,
                }
            )
            .group_by(["s", "p"])
            .aggregate([("r", "sum"), ("d", "sum")])
        )
        out: dict[str, float] = {}
        for s, p, r, d in zip(
            *(g.column(c).to_pylist() for c in ("s", "p", "r_sum", "d_sum")), strict=True
        ):
            key = s or f"{EVENTS_PREFIX}{p}"
            out[key] = out.get(key, 0.0) + float(r) / max(float(d), 1.0)
        return out

    def entries_between(self, start: datetime, end: datetime) -> dict[str, list[dict[str, Any]]]:
        """Entries whose partition starts in ``[start, end)``, by stream key (events:
        ``events/<patient>``): the rows a backfill of that range compares against."""
        t = self.files
        if t.num_rows == 0:
            return {}
        ps = t.column("partition_start")
        lo = pa.scalar(start, type=ps.type)
        hi = pa.scalar(end, type=ps.type)
        sel = t.filter(pc.and_(pc.greater_equal(ps, lo), pc.less(ps, hi)))
        out: dict[str, list[dict[str, Any]]] = {}
        for row in sel.drop_columns(["key"]).to_pylist():
            key = row["stream_id"] or f"{EVENTS_PREFIX}{row['patient_id']}"
            out.setdefault(key, []).append(row)
        return out


def month_before(t: datetime) -> datetime:
    """A bound safely before the partition holding ``t`` (partitions are at most a month)."""
    return t - timedelta(days=32)
