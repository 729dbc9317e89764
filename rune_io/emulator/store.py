"""Row selection over day chunks: time windows, the clock, late data, offsets.

All times are int64 unix nanoseconds. Rows of a stream are visible when
``data_start <= t < cutoff(day)`` where ``cutoff = now - late_delay(device, day)``.
"""

from __future__ import annotations

import threading
from datetime import datetime

import numpy as np
import pyarrow as pa

from rune_io.arrow_schema import stream_schema

from .cohort import StreamSpec, SyntheticCohort, h_unit
from .signals import DAY_NS, NS, Chunk, ChunkCache


def to_ns(t: datetime | float | int) -> int:
    """Unix ns of a tz-aware datetime or unix seconds."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError("naive datetime: pass a tz-aware datetime")
        return int(round(t.timestamp() * 1e6)) * 1000
    return int(round(float(t) * 1e6)) * 1000


class DataStore:
    """Selects visible rows of streams for the current clock."""

    def __init__(self, cohort: SyntheticCohort, cache: ChunkCache, late_data_hours: float):
        self.cohort = cohort
        self.cache = cache
        self.late_data_hours = late_data_hours
        self._lock = threading.Lock()
        self._now_ns = to_ns(cohort._now)

    # -- clock ---------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        return self._now_ns

    def set_now(self, now: datetime) -> None:
        self._now_ns = to_ns(now)
        self.cohort._now = now

    @property
    def start_ns(self) -> int:
        return to_ns(self.cohort.data_start)

    def cutoff_ns(self, spec: StreamSpec, day: int) -> int:
        """Rows of ``day`` with ``t < cutoff`` are visible."""
        delay = 0
        if self.late_data_hours > 0:
            u = h_unit(self.cohort.seed, "late", spec.meta.patient_id, spec.meta.device_id, day)
            delay = int(u * self.late_data_hours * 60) * 60 * NS  # whole minutes
        return self._now_ns - delay

    # -- selection -----------------------------------------------------------
    def _spans(self, spec: StreamSpec, lo: int, hi: int):
        """Yield (chunk, a, b): visible rows chunk[a:b] within [lo, hi), in time order."""
        lo = max(lo, self.start_ns)
        hi = min(hi, self._now_ns)
        if lo >= hi:
            return
        for day in range(lo // DAY_NS, (hi - 1) // DAY_NS + 1):
            day_hi = min(hi, self.cutoff_ns(spec, day), (day + 1) * DAY_NS)
            day_lo = max(lo, day * DAY_NS)
            if day_lo >= day_hi:
                continue
            chunk = self.cache.get(spec, day)
            t = chunk["time"]
            a = int(np.searchsorted(t, day_lo, "left"))
            b = int(np.searchsorted(t, day_hi, "left"))
            if b > a:
                yield chunk, a, b

    def select(
        self,
        spec: StreamSpec,
        lo: int,
        hi: int,
        offset: int = 0,
        max_rows: int | None = None,
    ) -> tuple[Chunk, bool]:
        """Visible rows in ``[lo, hi)`` after skipping ``offset`` rows, at most ``max_rows``.

        Returns the columns and whether more rows exist after them.
        """
        parts: list[tuple[Chunk, int, int]] = []
        n = 0
        has_more = False
        for chunk, a, b in self._spans(spec, lo, hi):
            if offset >= b - a:
                offset -= b - a
                continue
            a += offset
            offset = 0
            if max_rows is not None and n >= max_rows:
                has_more = True
                break
            if max_rows is not None and n + (b - a) > max_rows:
                parts.append((chunk, a, a + max_rows - n))
                n = max_rows
                has_more = True
                break
            parts.append((chunk, a, b))
            n += b - a
        return _concat(spec, parts), has_more

    def count(self, spec: StreamSpec, lo: int, hi: int) -> int:
        return sum(b - a for _, a, b in self._spans(spec, lo, hi))

    def bin_counts(self, spec: StreamSpec, lo: int, hi: int, step: int) -> np.ndarray:
        """Visible rows per bin ``[lo + k*step, lo + (k+1)*step)`` for bins starting < hi."""
        nbins = max(0, -(-(hi - lo) // step))
        counts = np.zeros(nbins, dtype=np.int64)
        edges = lo + np.arange(nbins + 1, dtype=np.int64) * step
        for chunk, a, b in self._spans(spec, lo, hi):
            t = chunk["time"][a:b]
            idx = (t - lo) // step
            counts += np.bincount(idx, minlength=nbins)[:nbins]
        del edges
        return counts

    def expected_table(self, spec: StreamSpec, start, end) -> pa.Table:
        """Exactly the rows V2 serves for ``[start, end)`` (no faults applied)."""
        cols, _ = self.select(spec, to_ns(start), to_ns(end))
        return chunk_to_table(spec, cols)


def _concat(spec: StreamSpec, parts: list[tuple[Chunk, int, int]]) -> Chunk:
    if not parts:
        from .signals import _empty

        return _empty(spec)
    if len(parts) == 1:
        chunk, a, b = parts[0]
        return {k: v[a:b] for k, v in chunk.items()}
    keys = parts[0][0].keys()
    return {k: np.concatenate([c[k][a:b] for c, a, b in parts]) for k in keys}


def enum_labels(spec: StreamSpec, dim: str) -> tuple[str, ...]:
    from .cohort import ACTIVITY_LABELS

    return ACTIVITY_LABELS


def chunk_to_table(spec: StreamSpec, cols: Chunk) -> pa.Table:
    """Arrow table with ``arrow_schema.stream_schema`` of the stream (time in us, UTC)."""
    schema = stream_schema(spec.meta.stream_type)
    arrays = [pa.array(cols["time"] // 1000, type=schema.field("time").type)]
    for d in spec.meta.stream_type.value_dimensions:
        vals = cols[d.identifier]
        if d.data_type == "enum":
            labels = np.array(enum_labels(spec, d.identifier), dtype=object)
            arrays.append(pa.array(labels[vals], type=pa.string()))
        else:
            arrays.append(pa.array(vals, type=schema.field(d.identifier).type))
    return pa.Table.from_arrays(arrays, schema=schema)
