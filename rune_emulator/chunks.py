"""Render a stream's day (dispatch by kind) and cache rendered days in a byte-bounded LRU."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from . import signals, signals_phone
from .cohort import StreamSpec
from .signals import _NP_TYPES, Chunk

_WATCH = {
    "motion": signals._motion,
    "symptom": signals._symptom,
    "report": signals._report,
    "medication": signals._medication,
}


def column_dtype(spec: StreamSpec, column: str):
    if column == "measurement_duration_ns":
        return np.int64
    dim = next(d for d in spec.meta.stream_type.dimensions if d.identifier == column)
    return _NP_TYPES.get(dim.data_type, object)


def empty_chunk(spec: StreamSpec) -> Chunk:
    out = {c: np.empty(0, dtype=column_dtype(spec, c)) for c in spec.columns}
    out["_t"] = np.empty(0, dtype=np.int64)
    return out


def render_day(seed: int, spec: StreamSpec, day: int, motion_hours: float) -> Chunk:
    """One UTC day (``day`` = unix days) of a stream, columns in CSV order; pure, uncached."""
    if spec.kind in _WATCH:
        cols = _WATCH[spec.kind](seed, spec, day, motion_hours)
    else:
        cols = signals_phone.GENERATORS[spec.kind](seed, spec, day)
    out = {c: np.asarray(cols[c], dtype=column_dtype(spec, c)) for c in spec.columns}
    out["_t"] = out[spec.meta.stream_type.key_dimension.identifier]
    return out


class ChunkCache:
    """Thread-safe LRU of rendered day chunks, bounded by total bytes."""

    def __init__(self, seed: int, max_bytes: int, motion_hours: float = 1.0) -> None:
        self.seed = seed
        self.max_bytes = max_bytes
        self.motion_hours = motion_hours
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, int], Chunk] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, spec: StreamSpec, day: int) -> Chunk:
        key = (spec.id, day)
        with self._lock:
            chunk = self._items.get(key)
            if chunk is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return chunk
            self.misses += 1
        chunk = render_day(self.seed, spec, day, self.motion_hours)
        for arr in chunk.values():
            arr.flags.writeable = False
        size = sum(a.nbytes for a in chunk.values())
        with self._lock:
            if key not in self._items:
                self._items[key] = chunk
                self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= sum(a.nbytes for a in old.values())
        return chunk


class TextCache:
    """Thread-safe LRU of formatted day tables (served text of a whole day chunk, UTC),
    keyed by (stream, day, timestamp mode): warm pages are slices of it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, pa.Table] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple, make: Callable[[], pa.Table]) -> pa.Table:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        table = make()
        with self._lock:
            if key not in self._items:
                self._items[key] = table
                self._bytes += table.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return table

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
