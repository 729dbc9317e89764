"""Synthetic signals, rendered one UTC day at a time with numpy.

A *day chunk* maps each served column (``StreamSpec.columns``) to a numpy array, plus
``_t``: the key timestamps (int64 unix ns, non-decreasing, multiples of 100 ns) that
windows and pages select on. Timestamps are int64 ns, ``sfloat``/``ufloat`` float64,
``uint`` int64, ``bool`` bool and ``dict`` object arrays of JSON text. A chunk is a pure
function of (seed, stream, day, motion_hours): values never change between requests.
"""

from __future__ import annotations

import json

import numpy as np

from .cohort import SEVERITIES, StreamSpec
from .hashing import DAY_NS, DAY_S, NS, h_int, h_unit

Chunk = dict[str, np.ndarray]
TICK = 100  # ns: the resolution of every sample time
_NP_TYPES: dict[str, type] = {
    "timestamp": np.int64,
    "sfloat": np.float64,
    "ufloat": np.float64,
    "uint": np.int64,
}
_NP_TYPES |= {"bool": np.bool_, "dict": object}


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


def recording_sessions(seed: int, pid: str, day: int, hours: float) -> list[tuple[int, int]]:
    """Watch motion recordings of a day: (start_ns, end_ns), inside worn intervals.

    2-4 sessions sharing ``hours`` of recording; each starts at a 100 ns tick.
    """
    worn = worn_intervals(seed, pid, day)
    if not worn or hours <= 0:
        return []
    rng = np.random.default_rng(h_int(seed, "sessions", pid, day))
    n = int(rng.integers(2, 5))
    total = sum(b - a for a, b in worn)
    length = min(hours * 3600 / n, total / (2 * n))
    out = []
    for k in range(n):
        a, b = worn[k % len(worn)]
        slot = (b - a) / n
        lo = a + int(slot * (k // len(worn) if len(worn) > 1 else k))
        start_s = lo + rng.uniform(0, max(1.0, slot - length))
        start = day * DAY_NS + int(start_s * 1e7) * TICK
        out.append((start, start + int(length * 1e7) * TICK))
    return sorted(out)


def implant_day_missing(seed: int, patient_id: str, day: int) -> bool:
    """Whole days without implant data (~20% of days)."""
    return h_unit(seed, "implant-missing", patient_id, day) < 0.2


def _rng(seed: int, spec: StreamSpec, day: int, *more: object) -> np.random.Generator:
    return np.random.default_rng(h_int(seed, "values", spec.id, day, *more))


def _grid_s(intervals: list[tuple[int, int]], step_s: int) -> np.ndarray:
    parts = [np.arange(a - a % step_s + step_s, b, step_s, dtype=np.int64) for a, b in intervals]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def motion_times(seed: int, pid: str, day: int, hours: float) -> np.ndarray:
    """~50 Hz, irregular at 100 ns: shared by the six motion streams of a watch."""
    parts = []
    for k, (a, b) in enumerate(recording_sessions(seed, pid, day, hours)):
        rng = np.random.default_rng(h_int(seed, "motion-times", pid, day, k))
        n = int((b - a) // 20_000_000) + 1
        steps = 200_000 + np.rint(rng.normal(0, 4000, n)).astype(np.int64)  # 100 ns ticks
        close = rng.random(n) < 0.01  # now and then two samples < 1 ms apart
        steps[close] = rng.integers(1, 10_000, int(close.sum()))
        t = a + np.cumsum(np.maximum(steps, 1)) * TICK
        parts.append(t[t < b])
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _motion(seed: int, spec: StreamSpec, day: int, hours: float) -> Chunk:
    pid = spec.meta.patient_id
    t = motion_times(seed, pid, day, hours)
    axis = spec.param("axis")
    ts = (t - day * DAY_NS) / 1e9
    sec = (t - day * DAY_NS) // NS  # slow components at 1 s, gathered per sample
    grid = np.arange(DAY_S, dtype=np.float64)
    ph = [h_unit(seed, "orient", pid, k) * 2 * np.pi for k in range(3)]
    if spec.param("measurement") == "gravity":
        theta = 0.9 + 0.6 * np.sin(2 * np.pi * grid / 5400.0 + ph[0])
        psi = ph[1] + 1.2 * np.sin(2 * np.pi * grid / 7300.0 + ph[2])
        if axis == "x":
            g = np.sin(theta) * np.cos(psi)
        elif axis == "y":
            g = np.sin(theta) * np.sin(psi)
        else:
            g = np.cos(theta)
        vals = -g[sec] + (ts - sec) * 1e-4  # drifts a little within each second
    else:
        freq = 4.0 + h_int(seed, "tremor-hz", pid) % 3  # parkinsonian tremor, 4-6 Hz
        amp = 0.06 * np.clip(np.sin(2 * np.pi * grid / 3600.0 + ph[2]), 0.0, None)
        phase = {"x": 0.0, "y": 2.1, "z": 4.2}.get(axis, 0.0)
        noise = _rng(seed, spec, day).standard_normal(len(t)) * 0.012
        vals = amp[sec] * np.sin(2 * np.pi * freq * ts + phase) + noise
    return {"time": t, "acceleration": vals, "measurement_duration_ns": _const(t, 20_000_000)}


def _const(t: np.ndarray, value: int) -> np.ndarray:
    return np.full(len(t), value, dtype=np.int64)


def symptom_minutes(seed: int, pid: str, measurement: str, day: int):
    """Per-minute symptom seconds while worn: (minute times, {severity: seconds})."""
    secs = _grid_s(worn_intervals(seed, pid, day), 60)
    rng = np.random.default_rng(h_int(seed, "symptom", pid, measurement, day))
    shift = 0.0 if measurement == "tremor" else 1.7
    level = (
        0.35 + 0.35 * np.sin(2 * np.pi * secs / 14_400.0 + shift) + rng.normal(0, 0.2, len(secs))
    )
    total = np.clip(level, 0.0, 1.0) * 60.0
    total[rng.random(len(secs)) < 0.5] = 0.0  # most minutes: no symptom detected
    split = rng.dirichlet(np.ones(5), len(secs)) if len(secs) else np.empty((0, 5))
    detected = {s: total * split[:, k] for k, s in enumerate(SEVERITIES[2:])}
    out = {"all": total, "none": 60.0 - total, **detected}
    # whole 60/23 s steps, served with 6 decimals (10.434783, as the evidence shows)
    out = {k: np.round(np.round(v * 23.0) / 23.0, 6) for k, v in out.items()}
    return day * DAY_NS + secs * NS, out


def _symptom(seed: int, spec: StreamSpec, day: int, hours: float) -> Chunk:
    meas = spec.param("measurement")
    t, by_sev = symptom_minutes(seed, spec.meta.patient_id, meas, day)
    secs = by_sev[spec.param("severity") or "all"]
    if spec.meta.stream_type.id == "percentage":
        cols = {"time": t, "percentage": secs / 60.0}
    else:
        cols = {"time": t, "duration": secs}
    return cols | {"measurement_duration_ns": _const(t, 60 * NS)}


def _payloads(rows: list[dict]) -> np.ndarray:
    arr = np.empty(len(rows), dtype=object)
    arr[:] = [json.dumps(r, separators=(",", ":"), sort_keys=True) for r in rows]
    return arr


def _report(seed: int, spec: StreamSpec, day: int, hours: float) -> Chunk:
    sessions = recording_sessions(seed, spec.meta.patient_id, day, hours)
    start = spec.param("log_type") == "start"
    t = np.array([a if start else b for a, b in sessions], dtype=np.int64)
    rows = [
        {
            "recording_id": f"{day}-{k}",
            "log_type": spec.param("log_type"),
            "note": "manual, from the watch",
        }
        for k in range(len(sessions))
    ]
    return {"time": t, "event": _payloads(rows)}


def _medication(seed: int, spec: StreamSpec, day: int, hours: float) -> Chunk:
    rng = _rng(seed, spec, day)
    drug = ("levodopa", "carbidopa-levodopa", "amantadine")[h_int(seed, spec.id) % 3]
    mins = np.array([8 * 60, 13 * 60, 18 * 60]) + rng.integers(-40, 40, 3)
    t = day * DAY_NS + mins * 60 * NS + rng.integers(0, 60_000, 3) * 1_000_000
    rows = [{"drug": drug, "dose_mg": int(rng.choice([100, 150, 250])), "taken": True} for _ in t]
    return {"time": np.sort(t), "event": _payloads(rows)}
