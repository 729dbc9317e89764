"""Synthetic signals, rendered one UTC day at a time with numpy.

A *day chunk* is a dict of equal-length numpy arrays: ``time`` (int64 unix ns, strictly
increasing, millisecond-aligned) plus one array per value dimension (and, for
acceleration, an internal ``_gravity`` array that the V1 API serves). A chunk is a pure
function of (seed, stream, day), so values never change between requests. Chunks are
cached in a byte-budgeted LRU (:class:`ChunkCache`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from .cohort import DAY_S, StreamSpec, h_int, h_unit

NS = 1_000_000_000
DAY_NS = DAY_S * NS
Chunk = dict[str, np.ndarray]


def worn_intervals(seed: int, patient_id: str, day: int) -> list[tuple[int, int]]:
    """Seconds-of-day intervals during which the patient wears the watch.

    Roughly 07:00-22:00 UTC with per-day variation, sometimes a charging break, and
    now and then a day without the watch at all.
    """
    if h_unit(seed, "watch-off-day", patient_id, day) < 0.08:
        return []
    on = 7 * 3600 + int((h_unit(seed, "on", patient_id, day) - 0.5) * 90) * 60
    off = 22 * 3600 + int((h_unit(seed, "off", patient_id, day) - 0.7) * 90) * 60
    if h_unit(seed, "charge", patient_id, day) < 0.3:
        c0 = 12 * 3600 + int(h_unit(seed, "charge-at", patient_id, day) * 240) * 60
        c1 = c0 + (20 + int(h_unit(seed, "charge-len", patient_id, day) * 40)) * 60
        return [(on, c0), (c1, off)]
    return [(on, off)]


def implant_day_missing(seed: int, patient_id: str, day: int) -> bool:
    """Whole days without implant data (~20% of days)."""
    return h_unit(seed, "implant-missing", patient_id, day) < 0.2


def _grid(intervals: list[tuple[int, int]], step_ms: int) -> np.ndarray:
    """Millisecond offsets within the day on a regular grid, inside the intervals."""
    parts = [np.arange(a * 1000, b * 1000, step_ms, dtype=np.int64) for a, b in intervals]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _rng(seed: int, spec: StreamSpec, day: int) -> np.random.Generator:
    return np.random.default_rng(h_int(seed, "values", spec.id, day))


def _accel(seed: int, spec: StreamSpec, day: int) -> Chunk:
    pid = spec.meta.patient_id
    ms = _grid(worn_intervals(seed, pid, day), 20)
    # slow components (orientation -> gravity, tremor envelope) at 1 s, gathered per sample
    t_s = np.arange(DAY_S, dtype=np.float64) + day * DAY_S
    ph = [h_unit(seed, "orient", pid, k) * 2 * np.pi for k in range(3)]
    theta = 0.9 + 0.6 * np.sin(2 * np.pi * t_s / 5400.0 + ph[0])
    psi = ph[1] + 1.2 * np.sin(2 * np.pi * t_s / 7300.0 + ph[2])
    if spec.axis == "x":
        g_s = np.sin(theta) * np.cos(psi)
    elif spec.axis == "y":
        g_s = np.sin(theta) * np.sin(psi)
    else:
        g_s = np.cos(theta)
    g_s = -np.round(g_s, 6)
    amp_s = 0.08 * np.clip(np.sin(2 * np.pi * t_s / 3600.0 + ph[2]), 0.0, None)
    sec = ms // 1000
    # tremor at 50/n Hz (n samples a period): a lookup table instead of a sin per sample
    n = 9 + h_int(seed, "tremor-period", pid) % 4
    axis_phase = {"x": 0.0, "y": 2.1, "z": 4.2}[spec.axis or "z"]
    table = np.sin(2 * np.pi * np.arange(n) / n + axis_phase)
    k = (ms // 20) % n
    noise = _rng(seed, spec, day).standard_normal(len(ms), dtype=np.float32)
    g = g_s[sec]
    total = g + amp_s[sec] * table[k] + noise * np.float32(0.015)
    total = np.rint(total * 1e6) / 1e6
    return {"time": ms * 1_000_000 + day * DAY_NS, "acceleration": total, "_gravity": g}


def _heart_rate(seed: int, spec: StreamSpec, day: int) -> Chunk:
    pid = spec.meta.patient_id
    rng = _rng(seed, spec, day)
    ms = _grid(worn_intervals(seed, pid, day), 5000)
    keep = rng.random(len(ms)) >= 0.08  # sensor dropouts
    ms = ms[keep] + rng.integers(0, 1000, int(keep.sum()))  # ms jitter, stays increasing
    tod = ms / 1000.0
    base = 68 + 8 * h_unit(seed, "hr-base", pid)
    hr = base + 9 * np.sin(2 * np.pi * (tod - 9 * 3600) / DAY_S) + rng.normal(0, 3, len(ms))
    hr += 25 * (np.sin(2 * np.pi * tod / 2700.0 + day) > 0.92)  # bouts of exercise
    return {"time": ms * 1_000_000 + day * DAY_NS, "heart_rate": np.round(hr, 1)}


def _lfp(seed: int, spec: StreamSpec, day: int) -> Chunk:
    pid = spec.meta.patient_id
    if implant_day_missing(seed, pid, day):
        return _empty(spec)
    rng = _rng(seed, spec, day)
    ms = np.arange(0, DAY_S * 1000, 600_000, dtype=np.int64)
    tod = ms / 1000.0
    lvl = 6.0 + (0.3 if spec.hemisphere == "left" else 0.0)
    val = lvl + 0.6 * np.sin(2 * np.pi * (tod - 3 * 3600) / DAY_S) + rng.normal(0, 0.15, len(ms))
    return {"time": ms * 1_000_000 + day * DAY_NS, "lfp_trend_log_power": np.round(val, 4)}


def _symptom(seed: int, spec: StreamSpec, day: int) -> Chunk:
    pid = spec.meta.patient_id
    rng = _rng(seed, spec, day)
    ms = _grid(worn_intervals(seed, pid, day), 60_000)
    tod = ms / 1000.0
    shift = 0.0 if spec.kind == "tremor" else 1.7
    sev = 0.5 + 0.4 * np.sin(2 * np.pi * tod / 14_400.0 + shift) + rng.normal(0, 0.15, len(ms))
    dur_ms = (np.clip((sev - 0.55) * 150.0, 0.0, 60.0) * 1000).astype(np.int64)
    return {"time": ms * 1_000_000 + day * DAY_NS, "measurement_duration_ns": dur_ms * 1_000_000}


def _activity(seed: int, spec: StreamSpec, day: int) -> Chunk:
    rng = _rng(seed, spec, day)
    ms = np.arange(6 * 3600_000, 23 * 3600_000, 60_000, dtype=np.int64)
    u = rng.random(len(ms))
    code = np.select([u < 0.70, u < 0.90, u < 0.95], [0, 1, 2], 3).astype(np.int64)
    return {"time": ms * 1_000_000 + day * DAY_NS, "activity": code}


def _empty(spec: StreamSpec) -> Chunk:
    out: Chunk = {"time": np.empty(0, dtype=np.int64)}
    for d in spec.meta.stream_type.value_dimensions:
        dtype = np.float64 if d.data_type in ("float", "double") else np.int64
        out[d.identifier] = np.empty(0, dtype=dtype)
    if spec.kind == "accel":
        out["_gravity"] = np.empty(0, dtype=np.float64)
    return out


_GENERATORS: dict[str, Callable[[int, StreamSpec, int], Chunk]] = {
    "accel": _accel,
    "heart_rate": _heart_rate,
    "lfp": _lfp,
    "tremor": _symptom,
    "dyskinesia": _symptom,
    "activity": _activity,
}


def render_day(seed: int, spec: StreamSpec, day: int) -> Chunk:
    """Render one UTC day (``day`` = unix days) of a stream; pure and uncached."""
    return _GENERATORS[spec.kind](seed, spec, day)


class ChunkCache:
    """Thread-safe LRU of rendered day chunks, bounded by total bytes."""

    def __init__(self, seed: int, max_bytes: int) -> None:
        self.seed = seed
        self.max_bytes = max_bytes
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
        chunk = render_day(self.seed, spec, day)
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
