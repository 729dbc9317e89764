"""Opt-in fault: upstream revises a stream's past samples (values change, times stay).

``Emulator.revise(stream_id, start, end)`` starts a new *revision generation* ``g`` of
that stream for ``[start, end)`` (by the key timestamp): from then on every read of it
(V2 pages, V1 points, aggregates and ``expected_table``, the tests' truth) serves the
revised values. Generations count per stream from 1; where windows overlap the newest
generation wins. A revised value is the original one plus ``0.25 * g`` for
``sfloat``/``ufloat`` columns, plus ``g`` for ``uint`` value columns (not
``measurement_duration_ns``), negated for ``bool`` columns when ``g`` is odd; timestamps
and text (``dict``) columns never change, so no sample's time moves and every page
keeps its rows.

This is an inference, not evidence: the public material on the live API
(``real-api-evidence.md``) shows no revisions. Devices do upload late (``late_data_hours``),
and a clinical data platform may reprocess a window (a new algorithm version under the
same stream id); this fault lets the lake's ``backfill --overwrite`` and lookback be
tested against values that change under a window already served.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .cohort import StreamSpec
from .hashing import DAY_NS
from .signals import Chunk

FLOAT_STEP = 0.25


@dataclass(frozen=True)
class Revision:
    """Generation ``generation`` of stream ``stream_id`` for keys in ``[start_ns, end_ns)``."""

    stream_id: str
    start_ns: int
    end_ns: int
    generation: int


class Revisions:
    """The revisions in force, per stream (thread-safe); applied to day chunks as read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_stream: dict[str, list[Revision]] = {}
        self._memo: dict[tuple[str, int], tuple[tuple[Revision, ...], Chunk]] = {}

    def add(self, stream_id: str, start_ns: int, end_ns: int) -> Revision:
        if end_ns <= start_ns:
            raise ValueError(f"revision window of {stream_id} is empty: end <= start")
        with self._lock:
            revs = self._by_stream.setdefault(stream_id, [])
            rev = Revision(stream_id, int(start_ns), int(end_ns), len(revs) + 1)
            revs.append(rev)
            self._memo.clear()
            return rev

    def clear(self, stream_id: str | None = None) -> None:
        """Serve the original values again (of one stream, or of all)."""
        with self._lock:
            if stream_id is None:
                self._by_stream.clear()
            else:
                self._by_stream.pop(stream_id, None)
            self._memo.clear()

    def of(self, stream_id: str) -> tuple[Revision, ...]:
        with self._lock:
            return tuple(self._by_stream.get(stream_id, ()))

    def apply(self, spec: StreamSpec, day: int, chunk: Chunk) -> Chunk:
        """``chunk`` (``day`` of ``spec``) with the revisions in force applied."""
        lo, hi = day * DAY_NS, (day + 1) * DAY_NS
        revs = tuple(r for r in self.of(spec.id) if r.start_ns < hi and r.end_ns > lo)
        if not revs:
            return chunk
        key = (spec.id, day)
        with self._lock:
            memo = self._memo.get(key)
        if memo is not None and memo[0] == revs:
            return memo[1]
        out = _revised(spec, chunk, revs)
        with self._lock:
            self._memo[key] = (revs, out)
        return out


def _revised(spec: StreamSpec, chunk: Chunk, revs: tuple[Revision, ...]) -> Chunk:
    t = chunk["_t"]
    gen = np.zeros(len(t), dtype=np.int64)
    for r in revs:  # in generation order: the newest wins where windows overlap
        gen[(t >= r.start_ns) & (t < r.end_ns)] = r.generation
    types = {d.identifier: d.data_type for d in spec.meta.stream_type.dimensions}
    out = dict(chunk)
    for col in spec.columns:
        kind = types.get(col)
        vals = chunk[col]
        if kind in ("sfloat", "ufloat"):
            new = vals + FLOAT_STEP * gen
        elif kind == "uint" and col != "measurement_duration_ns":
            new = vals + gen
        elif kind == "bool":
            new = np.where(gen % 2 == 1, ~vals, vals)
        else:
            continue
        new = new.astype(vals.dtype)
        new.flags.writeable = False
        out[col] = new
    return out
