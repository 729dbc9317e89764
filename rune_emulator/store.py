"""Row selection over day chunks: time windows, the clock, late data, offsets.

All times are int64 unix nanoseconds. A row is visible when
``data_start <= key < cutoff(day)`` where ``key`` is the stream type's first timestamp
dimension and ``cutoff = now - late_delay(device, day)``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

from .chunks import ChunkCache, empty_chunk
from .clock import dt_to_ns
from .cohort import StreamSpec, SyntheticCohort
from .hashing import DAY_NS, NS, h_unit
from .revisions import Revisions
from .signals import Chunk
from .truth import chunk_to_table


def to_ns(t: datetime | float | int) -> int:
    """Unix ns of a tz-aware datetime or unix seconds (floored to 100 ns)."""
    if isinstance(t, datetime):
        return dt_to_ns(t)
    return int(round(float(t) * 1e7)) * 100


class DataStore:
    """Selects visible rows of streams for the current clock."""

    def __init__(
        self,
        cohort: SyntheticCohort,
        cache: ChunkCache,
        late_data_hours: float,
        revisions: Revisions | None = None,
    ):
        self.cohort = cohort
        self.cache = cache
        self.revisions = revisions or Revisions()  # the opt-in revision fault
        self.late_data_hours = late_data_hours
        self.clock = cohort.clock

    @property
    def now_ns(self) -> int:
        return self.clock.now_ns()

    def set_now(self, now: datetime) -> None:
        self.clock.set(now)

    @property
    def start_ns(self) -> int:
        return dt_to_ns(self.cohort.data_start)

    def cutoff_ns(self, spec: StreamSpec, day: int, now_ns: int) -> int:
        """Rows of ``day`` with ``key < cutoff`` are visible."""
        delay = 0
        if self.late_data_hours > 0:
            u = h_unit(self.cohort.seed, "late", spec.meta.patient_id, spec.meta.device_id, day)
            delay = int(u * self.late_data_hours * 60) * 60 * NS  # whole minutes
        return now_ns - delay

    def _spans(self, spec: StreamSpec, lo: int, hi: int, now_ns: int | None = None):
        """Yield (chunk, a, b): visible rows chunk[a:b] with key in [lo, hi), in order."""
        for _, chunk, a, b in self._day_spans(spec, lo, hi, now_ns):
            yield chunk, a, b

    def _day_spans(self, spec: StreamSpec, lo: int, hi: int, now_ns: int | None = None):
        """Yield (day, chunk, a, b), as :meth:`_spans` with the day of each chunk."""
        now_ns = self.now_ns if now_ns is None else now_ns
        lo = max(lo, self.start_ns)
        hi = min(hi, now_ns)
        if lo >= hi:
            return
        for day in range(lo // DAY_NS, (hi - 1) // DAY_NS + 1):
            day_hi = min(hi, self.cutoff_ns(spec, day, now_ns), (day + 1) * DAY_NS)
            day_lo = max(lo, day * DAY_NS)
            if day_lo >= day_hi:
                continue
            chunk = self.revisions.apply(spec, day, self.cache.get(spec, day))
            t = chunk["_t"]
            a = int(np.searchsorted(t, day_lo, "left"))
            b = int(np.searchsorted(t, day_hi, "left"))
            if b > a:
                yield day, chunk, a, b

    def select_parts(
        self,
        spec: StreamSpec,
        lo: int,
        hi: int,
        offset: int = 0,
        max_rows: int | None = None,
        now_ns: int | None = None,
    ) -> tuple[list[tuple[int, Chunk, int, int, int]], bool]:
        """Visible rows with key in ``[lo, hi)`` after skipping ``offset``, at most
        ``max_rows``, as (day, chunk, a, b, w) slices, ``w`` the rows of that day the window
        holds from ``a`` on (the page may stop earlier); and whether more rows follow."""
        parts: list[tuple[int, Chunk, int, int, int]] = []
        n = 0
        for day, chunk, a, b in self._day_spans(spec, lo, hi, now_ns):
            if offset >= b - a:
                offset -= b - a
                continue
            a += offset
            offset = 0
            if max_rows is not None and n >= max_rows:
                return parts, True
            if max_rows is not None and n + (b - a) > max_rows:
                parts.append((day, chunk, a, a + max_rows - n, b - a))
                return parts, True
            parts.append((day, chunk, a, b, b - a))
            n += b - a
        return parts, False

    def select(
        self,
        spec: StreamSpec,
        lo: int,
        hi: int,
        offset: int = 0,
        max_rows: int | None = None,
        now_ns: int | None = None,
    ) -> tuple[Chunk, bool]:
        """Visible rows with key in ``[lo, hi)`` after skipping ``offset``, at most ``max_rows``.

        Returns the columns and whether more rows exist after them.
        """
        parts, more = self.select_parts(spec, lo, hi, offset, max_rows, now_ns)
        return _concat(spec, [(c, a, b) for _, c, a, b, _ in parts]), more

    def count(self, spec: StreamSpec, lo: int, hi: int) -> int:
        return sum(b - a for _, a, b in self._spans(spec, lo, hi))

    def bin_counts(self, spec: StreamSpec, lo: int, hi: int, step: int) -> np.ndarray:
        """Visible rows per bin ``[lo + k*step, lo + (k+1)*step)`` for bins starting < hi."""
        nbins = max(0, -(-(hi - lo) // step))
        counts = np.zeros(nbins, dtype=np.int64)
        for chunk, a, b in self._spans(spec, lo, hi):
            idx = (chunk["_t"][a:b] - lo) // step
            counts += np.bincount(idx, minlength=nbins)[:nbins]
        return counts

    def expected_table(self, spec: StreamSpec, start, end) -> pa.Table:
        """Exactly the rows V2 serves for ``[start, end)`` (no faults), typed as truth."""
        cols, _ = self.select(spec, to_ns(start), to_ns(end))
        return chunk_to_table(spec, cols)


def _concat(spec: StreamSpec, parts: list[tuple[Chunk, int, int]]) -> Chunk:
    if not parts:
        return empty_chunk(spec)
    if len(parts) == 1:
        chunk, a, b = parts[0]
        return {k: v[a:b] for k, v in chunk.items()}
    keys = parts[0][0].keys()
    return {k: np.concatenate([c[k][a:b] for c, a, b in parts]) for k in keys}
