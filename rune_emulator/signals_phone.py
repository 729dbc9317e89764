"""HealthKit (Strive PD phone app) and DBS implant signals, one UTC day at a time.

Same conventions as :mod:`rune_emulator.signals`: a chunk maps served columns to numpy
arrays plus ``_t`` (added by the dispatcher); everything is a pure function of the seed.
"""

from __future__ import annotations

import numpy as np

from .hashing import DAY_NS, DAY_S, NS, h_int, h_unit
from .signals import TICK, Chunk, _const, _payloads, _rng, implant_day_missing, worn_intervals

SLEEP_STAGES = ("awake", "core", "deep", "rem")


def _irregular(rng, intervals: list[tuple[int, int]], mean_s: float, day: int) -> np.ndarray:
    """Sample times (ns) ~every ``mean_s`` inside second-of-day intervals, 100 ns ticks."""
    parts = []
    for a, b in intervals:
        n = int((b - a) / mean_s) + 2
        steps = rng.uniform(0.5 * mean_s, 1.5 * mean_s, n)
        s = a + np.cumsum(steps)
        s = s[s < b]
        parts.append(day * DAY_NS + np.rint(s * 1e7).astype(np.int64) * TICK)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _hourly(day: int, first_h: int, last_h: int) -> np.ndarray:
    return day * DAY_NS + np.arange(first_h, last_h, dtype=np.int64) * 3600 * NS


def _heart_rate(seed, spec, day) -> Chunk:
    rng = _rng(seed, spec, day)
    t = _irregular(rng, worn_intervals(seed, spec.meta.patient_id, day), 300.0, day)
    tod = (t - day * DAY_NS) / 1e9
    base = 66 + 10 * h_unit(seed, "hr-base", spec.meta.patient_id)
    hr = base + 8 * np.sin(2 * np.pi * (tod - 9 * 3600) / DAY_S) + rng.normal(0, 4, len(t))
    return {"time": t, "rate": np.round(hr), "measurement_duration_ns": _const(t, 0)}


def _steps(seed, spec, day) -> Chunk:
    rng = _rng(seed, spec, day)
    t = _hourly(day, 7, 22)
    count = rng.poisson(420, len(t)).astype(np.int64)
    return {"time": t, "count": count, "measurement_duration_ns": _const(t, 3600 * NS)}


def _walking_speed(seed, spec, day) -> Chunk:
    rng = _rng(seed, spec, day)
    t = _irregular(rng, worn_intervals(seed, spec.meta.patient_id, day), 1200.0, day)
    dur = rng.integers(10, 90, len(t)) * NS
    return {
        "time": t,
        "speed": np.round(rng.normal(1.05, 0.12, len(t)), 2),
        "measurement_duration_ns": dur,
    }


def _distance(seed, spec, day) -> Chunk:
    rng = _rng(seed, spec, day)
    t = _hourly(day, 7, 22)
    meters = np.abs(rng.normal(310.0, 120.0, len(t)))
    return {"time": t, "distance": meters, "measurement_duration_ns": _const(t, 3600 * NS)}


def _spo2(seed, spec, day) -> Chunk:
    rng = _rng(seed, spec, day)
    t = _irregular(rng, [(3600, 6 * 3600)], 3600.0, day)
    pct = np.round(rng.uniform(0.93, 0.99, len(t)), 2)
    return {"time": t, "percentage": pct, "measurement_duration_ns": _const(t, 0)}


def _pressure(seed, spec, day) -> Chunk:
    rng = _rng(seed, spec, day)
    t = day * DAY_NS + np.arange(0, DAY_S, 1800, dtype=np.int64) * NS
    kpa = 101.3 + 0.4 * np.sin(2 * np.pi * (day + t / DAY_NS) / 5) + rng.normal(0, 0.05, len(t))
    return {"time": t, "pressure": np.round(kpa, 3), "measurement_duration_ns": _const(t, 0)}


def _sleep(seed, spec, day) -> Chunk:
    """Nightly sleep-stage spans between ~00:00 and ~07:00 UTC (some with fuzzy bounds)."""
    rng = _rng(seed, spec, day)
    edges = [int(rng.integers(0, 1800))]
    while edges[-1] < 7 * 3600:
        edges.append(edges[-1] + int(rng.integers(10, 60)) * 60)
    start = day * DAY_NS + np.array(edges[:-1], dtype=np.int64) * NS
    end = day * DAY_NS + np.array(edges[1:], dtype=np.int64) * NS
    fuzzy = rng.random(len(start)) < 0.15
    smin = start - np.where(fuzzy, rng.integers(1, 600, len(start)) * NS, 0)
    emax = end + np.where(fuzzy, rng.integers(1, 600, len(start)) * NS, 0)
    stages = [SLEEP_STAGES[int(k)] for k in rng.integers(0, 4, len(start))]
    payload = _payloads([{"stage": s, "source": "Apple Watch"} for s in stages])
    return {
        "start_time_min": smin,
        "start_time": start,
        "end_time": end,
        "end_time_max": emax,
        "event": payload,
    }


def _utc_offset(seed, spec, day) -> Chunk:
    off = (-8, -7, -5, 0, 1)[h_int(seed, "tz", spec.meta.patient_id) % 5] * 3600.0
    return {"time": np.array([day * DAY_NS], dtype=np.int64), "offset": np.array([off])}


def _lfp(seed, spec, day) -> Chunk:
    t = day * DAY_NS + np.arange(0, DAY_S, 600, dtype=np.int64) * NS
    if implant_day_missing(seed, spec.meta.patient_id, day):
        t = t[:0]
    rng = _rng(seed, spec, day)
    tod = (t - day * DAY_NS) / 1e9
    lvl = 6.0 + (0.3 if spec.param("hemisphere") == "left" else 0.0)
    val = lvl + 0.6 * np.sin(2 * np.pi * (tod - 3 * 3600) / DAY_S) + rng.normal(0, 0.15, len(t))
    return {"time": t, "power": val}


def _spectrum(seed, spec, day) -> Chunk:
    """One BrainSense survey a day: 100 rows (frequency bins) sharing one time."""
    if implant_day_missing(seed, spec.meta.patient_id, day):
        t0 = np.empty(0, dtype=np.int64)
    else:
        minute = 10 * 60 + h_int(seed, "survey", spec.id, day) % 240
        t0 = np.array([day * DAY_NS + minute * 60 * NS + 123_456_700], dtype=np.int64)
    rng = _rng(seed, spec, day)
    freq = np.arange(1, 101) * 0.9765625
    rows = len(t0) * len(freq)
    beta = 2.0e-6 * np.exp(-((freq - 21.0) ** 2) / 18.0)
    pot = (1.5e-5 / freq + beta) * (1 + rng.normal(0, 0.05, len(freq)))
    return {
        "time": np.repeat(t0, len(freq)),
        "frequency": np.tile(freq, len(t0))[:rows],
        "potential": np.tile(pot, len(t0))[:rows],
    }


def _therapy(seed, spec, day) -> Chunk:
    rng = _rng(seed, spec, day)
    t = _hourly(day, 0, 24)
    return {"time": t, "bool": rng.random(len(t)) >= 0.05}


def _tour(seed, spec, day) -> Chunk:
    """Any stream type, hourly (``all_stream_types``): values by data type; a type with
    two value dimensions gets 4 rows (bins) per time, as a spectrum does."""
    rng = _rng(seed, spec, day)
    values = [d for d in spec.meta.stream_type.dimensions if d.data_type != "timestamp"]
    bins = 4 if len(values) > 1 else 1
    t = np.repeat(_hourly(day, 0, 24) + 500 * TICK, bins)
    k = np.arange(len(t))
    out: Chunk = {"time": t}
    for d in values:
        if d.data_type == "sfloat":
            out[d.identifier] = np.sin(k / 5.0) + rng.normal(0, 0.01, len(t))
        elif d.data_type == "ufloat":
            out[d.identifier] = (
                (np.tile(np.arange(1, bins + 1), 24) * 2.5)
                if bins > 1 and d is values[0]
                else rng.uniform(0, 1, len(t))
            )
        elif d.data_type == "uint":
            out[d.identifier] = np.tile(np.arange(bins), 24) if bins > 1 else k + day % 7
        elif d.data_type == "bool":
            out[d.identifier] = k % 3 == 0
        else:
            out[d.identifier] = _payloads([{"n": int(i), "note": "tour, hourly"} for i in k])
    return out


GENERATORS = {
    "tour": _tour,
    "hk_heart_rate": _heart_rate,
    "hk_steps": _steps,
    "hk_walking_speed": _walking_speed,
    "hk_distance": _distance,
    "hk_spo2": _spo2,
    "hk_pressure": _pressure,
    "hk_sleep": _sleep,
    "hk_utc_offset": _utc_offset,
    "lfp": _lfp,
    "spectrum": _spectrum,
    "therapy": _therapy,
}
