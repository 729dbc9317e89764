"""V1 readers against the emulator's V1 API, checked against the emulator's V2 ground truth.

``accel`` and ``heartrate`` (CSV and JSON) and ``event`` (JSON), over every paging mode
of the seed (JSON ``page``/``next_page``, CSV ``page`` until an empty body, the
``X-Rune-Next-Page-Token`` header), with ``expression`` (incl. ``availability(...)``),
``frequency``/``resolution``, ``interpolation``, ``timestamp`` formats, ``partition_size``,
event prefixes, client-key auth with an inferred patient, and the 400s the seed implies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from rune_emulator import ChaosConfig
from rune_io.api.client import RuneClient
from rune_io.errors import AuthError, BadRequest, NotFound

from .conftest import emu_settings

DAY = datetime(2026, 10, 31, tzinfo=UTC)  # a full day of data (EmulatorConfig default clock)
NS = 10**9
US = 1000  # ns

PAGINGS = [("csv", "page"), ("csv", "token"), ("json", "page"), ("json", "token")]


@dataclass(frozen=True)
class Watch:
    """One patient's V1 sources: the watch's motion (accel) and the HealthKit heart rate."""

    pid: str
    dev: str  # the Apple Watch: V1 accel
    acc: dict[str, Any]  # axis -> (user stream, gravity stream)
    hr: Any  # heart-rate stream (its device: the phone)
    lo: datetime  # a whole second inside the watch's first recording session of DAY


def watch(emu, patient: int = 0) -> Watch:
    pid = emu.cohort.patients[patient].id
    mine = [s for s in emu.cohort.streams if s.patient_id == pid]
    motion = {
        (s.params["measurement"], s.params["axis"]): s
        for s in mine
        if s.stream_type.id == "acceleration"
    }
    acc = {a: (motion[("user", a)], motion[("gravity", a)]) for a in "xyz"}
    hr = next(s for s in mine if s.stream_type.id == "rate-per-min")
    devices = {s.device_id for pair in acc.values() for s in pair}
    assert len(devices) == 1 and devices != {hr.device_id}
    first = emu.expected_table(acc["x"][0].id, DAY, DAY + timedelta(days=1)).column(0)[0]
    lo = datetime.fromtimestamp(first.as_py() // NS + 1, UTC)
    t = emu.expected_table(acc["x"][0].id, lo, lo + timedelta(minutes=5)).column(0).to_numpy()
    assert t[-1] - t[0] > 299 * NS  # lo + 5 min stays inside the session
    return Watch(pid, devices.pop(), acc, hr, lo)


def table(batches) -> pa.Table:
    return pa.Table.from_batches(list(batches))


def truth(emu, stream, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """(time in unix ns, first value column) the V2 API serves for ``[lo, hi)``."""
    t = emu.expected_table(stream.id, lo, hi)
    return t.column(0).to_numpy(), t.column(1).to_numpy()


def accel_truth(emu, w: Watch, axis: str, lo, hi, expression: str = "accel"):
    """V1 ``accel`` of one axis from V2 truth: ``user + gravity`` (or one of them)."""
    t, user = truth(emu, w.acc[axis][0], lo, hi)
    t_g, gravity = truth(emu, w.acc[axis][1], lo, hi)
    assert np.array_equal(t, t_g)
    return t, {"accel": user + gravity, "user": user, "gravity": gravity}[expression]


def at_wire_resolution(t_ns: np.ndarray) -> np.ndarray:
    """V1 times are microseconds on the wire (rune_emulator README, V1), the samples 100 ns:
    the V1 reader can only give back each sample time floored to the microsecond."""
    return t_ns // US * US


def requests_seen(emu, prefix: str, want: int) -> int:
    """The emulator logs a request once its response is sent: give the last one a moment."""
    deadline = time.monotonic() + 2
    while emu.stats.count(path_prefix=prefix) < want and time.monotonic() < deadline:
        time.sleep(0.01)
    return emu.stats.count(path_prefix=prefix)


def times_ns(t: pa.Table) -> np.ndarray:
    return t.column("time").cast(pa.int64()).to_numpy() * US


@pytest.mark.parametrize(("fmt", "paging"), PAGINGS)
def test_accel_raw_every_paging_mode_equals_v2(emu, rc, fmt, paging):
    w = watch(emu)
    hi = w.lo + timedelta(minutes=5)  # ~15,000 points at ~50 Hz: 4 pages of 4,000
    emu.stats.reset()
    got = table(rc.v1.accel(w.pid, w.dev, w.lo, hi, fmt=fmt, paging=paging, page_size=4000))
    assert got.column_names == ["time", "x", "y", "z"]
    assert got.schema.field("time").type == pa.timestamp("us", tz="UTC")
    t, _ = accel_truth(emu, w, "x", w.lo, hi)
    assert 3 * 4000 < got.num_rows == len(t) <= 4 * 4000
    assert (t % US != 0).any()  # 100 ns sample times: compared at the wire's microsecond
    assert np.array_equal(times_ns(got), at_wire_resolution(t))
    for axis in "xyz":
        assert np.array_equal(got.column(axis).to_numpy(), accel_truth(emu, w, axis, w.lo, hi)[1])
    # 4 pages; CSV page mode asks once more and gets the empty body that ends it
    want = 5 if (fmt, paging) == ("csv", "page") else 4
    assert requests_seen(emu, f"/v1/accel.{fmt}", want) == want


@pytest.mark.parametrize(("fmt", "paging"), PAGINGS)
def test_heartrate_every_paging_mode_equals_v2(emu, rc, fmt, paging):
    w = watch(emu)
    lo, hi = DAY, DAY + timedelta(days=1)  # ~5-minute samples while worn
    got = table(
        rc.v1.heartrate(w.pid, w.hr.device_id, lo, hi, fmt=fmt, paging=paging, page_size=40)
    )
    t, bpm = truth(emu, w.hr, lo, hi)
    assert len(t) > 3 * 40  # really paged
    assert got.column_names == ["time", "bpm"]
    assert np.array_equal(times_ns(got), at_wire_resolution(t))
    assert np.array_equal(got.column("bpm").to_numpy(), bpm)


def _binned(t_ns, v, lo: datetime, hi: datetime, step_s: float, interp: str):
    """The seed's resampling: per-bin mean at bin starts, gaps per ``interpolation``."""
    step = int(round(step_s * NS))
    lo_ns = int(lo.timestamp()) * NS
    nbins = -(-(int(hi.timestamp()) * NS - lo_ns) // step)
    idx = (t_ns - lo_ns) // step
    counts = np.bincount(idx, minlength=nbins)
    sums = np.bincount(idx, weights=v, minlength=nbins)
    has = counts > 0
    mean = np.where(has, sums / np.maximum(counts, 1), np.nan)
    grid = lo_ns + np.arange(nbins) * step
    if interp == "":
        return grid[has], mean[has]
    if interp == "zero":
        return grid, np.where(has, mean, 0.0)
    if interp == "previous":
        last = np.maximum.accumulate(np.where(has, np.arange(nbins), -1))
        return grid, np.where(last >= 0, mean[np.maximum(last, 0)], np.nan)
    if interp == "linear":
        xs = np.flatnonzero(has)
        inside = (np.arange(nbins) >= xs[0]) & (np.arange(nbins) <= xs[-1])
        return grid, np.where(inside, np.interp(np.arange(nbins), xs, mean[has]), np.nan)
    return grid, mean  # "null"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_accel_at_50hz_is_the_20ms_bin_mean(emu, rc, fmt):
    """``frequency=50``: one point per non-empty 20 ms bin (the irregular ~50 Hz samples
    fall 0, 1 or 2 to a bin), the mean of ``user + gravity`` at the bin start."""
    w = watch(emu)
    hi = w.lo + timedelta(minutes=2)
    got = table(rc.v1.accel(w.pid, w.dev, w.lo, hi, fmt=fmt, frequency=50, page_size=2500))
    t, x = accel_truth(emu, w, "x", w.lo, hi)
    want_t, want_x = _binned(t, x, w.lo, hi, 0.02, "")
    assert got.num_rows == len(want_t) > 2500  # paged
    assert len(want_t) < len(t)  # some bins hold two samples: their mean is served
    assert np.array_equal(times_ns(got), want_t)
    assert np.allclose(got.column("x").to_numpy(), want_x, rtol=0, atol=1e-12)


def test_user_plus_gravity_is_accel(emu, rc):
    w = watch(emu)
    hi = w.lo + timedelta(seconds=30)
    parts = {
        e: table(rc.v1.accel(w.pid, w.dev, w.lo, hi, expression=e, fmt="json"))
        for e in ("accel", "user", "gravity")
    }
    assert len({p.num_rows for p in parts.values()}) == 1
    for axis in "xyz":
        for e, part in parts.items():
            assert np.array_equal(
                part.column(axis).to_numpy(), accel_truth(emu, w, axis, w.lo, hi, e)[1]
            )
        total = parts["user"].column(axis).to_numpy() + parts["gravity"].column(axis).to_numpy()
        assert np.allclose(total, parts["accel"].column(axis).to_numpy(), atol=2e-6)
        assert not np.allclose(parts["user"].column(axis).to_numpy(), 0)


def _availability(t_ns: np.ndarray, lo: datetime, hi: datetime, step_s: int) -> np.ndarray:
    lo_ns, hi_ns = int(lo.timestamp()) * NS, int(hi.timestamp()) * NS
    nbins = -(-(hi_ns - lo_ns) // (step_s * NS))
    counts = np.bincount((t_ns - lo_ns) // (step_s * NS), minlength=nbins)
    return (counts > 0).astype(np.int64)


@pytest.mark.parametrize(("fmt", "paging"), PAGINGS)
def test_accel_availability_default_5_min(emu, rc, fmt, paging):
    w = watch(emu)
    lo, hi = DAY, DAY + timedelta(days=1)
    got = table(
        rc.v1.accel(
            w.pid, w.dev, lo, hi, expression="availability(accel)", fmt=fmt, paging=paging,
            page_size=100,
        )
    )  # fmt: skip
    want = _availability(accel_truth(emu, w, "x", lo, hi)[0], lo, hi, 300)
    assert got.column_names == ["time", "availability"]
    assert got.num_rows == 288 and got.column("availability").type == pa.int64()
    assert np.array_equal(got.column("availability").to_numpy(), want)
    assert 0 < want.sum() < 288  # in recording sessions only
    step = 300 * NS
    assert np.array_equal(times_ns(got), int(lo.timestamp()) * NS + np.arange(288) * step)


def hr_window(emu, w: Watch, hours: float) -> tuple[datetime, datetime]:
    """From 20 minutes before the watch's first heart rate of DAY: off, then on."""
    first = truth(emu, w.hr, DAY, DAY + timedelta(days=1))[0][0]
    lo = datetime.fromtimestamp(first // (60 * NS) * 60, UTC) - timedelta(minutes=20)
    return lo, lo + timedelta(hours=hours)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_heartrate_availability_at_resolution(emu, rc, fmt):
    w = watch(emu)
    lo, hi = hr_window(emu, w, 3)
    got = table(
        rc.v1.heartrate(
            w.pid, w.hr.device_id, lo, hi, expression="availability(bpm)", resolution=60, fmt=fmt
        )
    )
    want = _availability(truth(emu, w.hr, lo, hi)[0], lo, hi, 60)
    assert len(want) == 180
    assert np.array_equal(got.column("availability").to_numpy(), want)
    assert 0 < want.sum() < len(want)


@pytest.mark.parametrize("interp", ["", "null", "zero", "previous", "linear"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_heartrate_resolution_and_interpolation(emu, rc, interp, fmt):
    w = watch(emu)
    lo, hi = hr_window(emu, w, 2)
    got = table(
        rc.v1.heartrate(
            w.pid, w.hr.device_id, lo, hi, resolution=60, interpolation=interp, fmt=fmt,
            page_size=25,
        )
    )  # fmt: skip
    t, bpm = truth(emu, w.hr, lo, hi)
    assert len(t) > 10
    want_t, want_v = _binned(t, bpm, lo, hi, 60, interp)
    assert np.array_equal(times_ns(got), want_t)
    col = got.column("bpm")
    assert col.type == pa.float64()
    values = col.to_numpy(zero_copy_only=False)  # null -> NaN
    assert np.allclose(values, want_v, equal_nan=True, rtol=0, atol=1e-9)
    if interp in ("", "zero"):
        assert col.null_count == 0
    else:
        assert col.null_count == np.isnan(want_v).sum() > 0  # the watch is off at first


def test_frequency_is_resolution_reciprocal(emu, rc):
    w = watch(emu)
    lo, hi = hr_window(emu, w, 2)
    a = table(rc.v1.heartrate(w.pid, w.hr.device_id, lo, hi, frequency=0.1, fmt="json"))
    b = table(rc.v1.heartrate(w.pid, w.hr.device_id, lo, hi, resolution=10, fmt="json"))
    assert a.equals(b) and a.num_rows > 10


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize(
    ("timestamp", "timezone"),
    [("iso", None), ("iso", -28800), ("datetime", None), ("datetime", 19800)],
)
def test_timestamp_formats_give_the_same_instants(emu, rc, fmt, timestamp, timezone):
    w = watch(emu)
    hi = w.lo + timedelta(seconds=20)  # ~1,000 motion points, 100 ns times
    unix = table(rc.v1.accel(w.pid, w.dev, w.lo, hi, fmt=fmt, page_size=400))
    other = table(
        rc.v1.accel(
            w.pid, w.dev, w.lo, hi, fmt=fmt, page_size=400, timestamp=timestamp, timezone=timezone
        )
    )
    assert other.equals(unix) and unix.num_rows > 2 * 400
    assert np.array_equal(times_ns(unix), at_wire_resolution(accel_truth(emu, w, "x", w.lo, hi)[0]))


def test_iso_with_offset_on_the_wire(emu, rc):
    w = watch(emu)
    hi = w.lo + timedelta(seconds=1)
    params = dict(
        patient_id=w.pid, device_id=w.dev, start_time=w.lo.timestamp(),
        end_time=hi.timestamp(), timestamp="iso", timezone=-28800,
    )  # fmt: skip
    body = rc.http.get(rc.v1.url("accel", "csv"), params=params).content.decode()
    first = int(accel_truth(emu, w, "x", w.lo, hi)[0][0])
    local = datetime.fromtimestamp(first // US / 1e6, UTC) - timedelta(hours=8)
    assert body.splitlines()[0] == "time,x,y,z"
    assert body.splitlines()[1].startswith(local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "-08:00,")


@pytest.mark.parametrize("resource", ["accel", "heartrate"])
def test_partition_size_is_flattened(emu, rc, resource):
    w = watch(emu)
    dev, lo, hi = w.dev, w.lo, w.lo + timedelta(minutes=3)
    if resource == "heartrate":
        dev, lo, hi = w.hr.device_id, DAY, DAY + timedelta(days=1)
    read = getattr(rc.v1, resource)
    flat = table(read(w.pid, dev, lo, hi, fmt="json", page_size=100))
    parts = table(read(w.pid, dev, lo, hi, fmt="json", page_size=100, partition_size=7))
    assert parts.equals(flat) and flat.num_rows > 100
    doc = rc.http.get(
        rc.v1.url(resource, "json"),
        params=dict(patient_id=w.pid, device_id=dev, start_time=lo.timestamp(),
                    end_time=hi.timestamp(), page_size=20, partition_size=7),
    ).json()  # fmt: skip
    assert [len(p) for p in doc["result"]["time"]] == [7, 7, 6]


# ------------------------------------------------------------------------------ events


def _truth_events(emu, pid, lo, hi, prefix=""):
    return [
        e.id
        for e in emu.cohort.events(pid)
        if lo <= e.start_time < hi
        and (not prefix or e.type == prefix or e.type.startswith(prefix + "."))
    ]


@pytest.mark.parametrize("paging", ["page", "token"])
@pytest.mark.parametrize(
    "prefix", [None, "device", "device.medication", "patient.symptom", "device.med", "nothing"]
)
def test_events_prefix_filters_and_paging(emu, rc, prefix, paging):
    w = watch(emu)
    lo, hi = DAY - timedelta(days=1), DAY + timedelta(days=1)
    got = list(rc.v1.events(w.pid, w.dev, lo, hi, event=prefix, paging=paging, page_size=2))
    want = _truth_events(emu, w.pid, lo, hi, prefix or "")
    assert [e["id"] for e in got] == want
    if prefix in (None, "device", "device.medication"):
        assert len(want) > 2  # several pages
    if prefix == "device.med":  # a prefix is whole levels, not characters
        assert want == []
    for e in got:
        assert lo.timestamp() <= e["time"] < hi.timestamp()
        assert not prefix or e["type"] == prefix or e["type"].startswith(prefix + ".")
        assert isinstance(e["payload"], dict)


def test_events_time_bounds_are_start_inclusive_end_exclusive(emu, rc):
    w = watch(emu)
    evs = list(rc.v1.events(w.pid, w.dev, DAY, DAY + timedelta(days=1)))
    first = datetime.fromtimestamp(evs[0]["time"], UTC)
    again = list(rc.v1.events(w.pid, w.dev, first, first + timedelta(microseconds=1)))
    assert [e["id"] for e in again] == [evs[0]["id"]]
    assert list(rc.v1.events(w.pid, w.dev, first - timedelta(seconds=1), first)) == []


# ------------------------------------------------------------------- auth and errors


def test_client_key_infers_patient(emu, rc):
    pid = emu.cohort.client_key_patient_id
    patient = [p.id for p in emu.cohort.patients].index(pid)
    w = watch(emu, patient)
    hi = w.lo + timedelta(minutes=1)
    want = accel_truth(emu, w, "x", w.lo, hi)[1]
    with RuneClient(emu_settings(emu, "client_keys")) as c:
        for fmt in ("csv", "json"):
            got = table(c.v1.accel(None, w.dev, w.lo, hi, fmt=fmt, paging="token", page_size=1000))
            assert got.num_rows > 1000 and np.array_equal(got.column("x").to_numpy(), want)
        evs = list(c.v1.events(None, w.dev, DAY, DAY + timedelta(days=1)))
        assert [e["id"] for e in evs] == _truth_events(emu, pid, DAY, DAY + timedelta(days=1))


def test_client_key_cannot_read_another_patient(emu):
    other = next(
        i for i, p in enumerate(emu.cohort.patients) if p.id != emu.cohort.client_key_patient_id
    )
    w = watch(emu, other)
    with RuneClient(emu_settings(emu, "client_keys")) as c:
        with pytest.raises((AuthError, NotFound)) as ei:
            list(c.v1.accel(w.pid, w.dev, w.lo, w.lo + timedelta(minutes=1)))
    assert ei.value.status in (403, 404)


def test_page_with_next_page_token_is_400(emu, rc):
    w = watch(emu)
    params = dict(
        patient_id=w.pid, device_id=w.dev, start_time=w.lo.timestamp(),
        end_time=(w.lo + timedelta(minutes=1)).timestamp(), page_size=1000,
    )  # fmt: skip
    url = rc.v1.url("accel", "json")
    token = rc.http.get(url, params=params).headers["X-Rune-Next-Page-Token"]
    assert rc.http.get(url, params={**params, "next_page_token": token}).json()["success"]
    with pytest.raises(BadRequest) as ei:
        rc.http.get(url, params={**params, "next_page_token": token, "page": 1})
    assert ei.value.status == 400 and "page" in str(ei.value)
    with pytest.raises(ValueError, match="set by the reader"):  # the reader never sends both
        list(rc.v1.accel(w.pid, w.dev, w.lo, w.lo + timedelta(minutes=1), paging="token", page=1))


@pytest.mark.parametrize("resource", ["accel", "heartrate"])
def test_frequency_and_resolution_together_is_400(emu, rc, fake_sleep, resource):
    w = watch(emu)
    dev = w.dev if resource == "accel" else w.hr.device_id
    with pytest.raises(BadRequest) as ei:
        list(getattr(rc.v1, resource)(w.pid, dev, w.lo, w.lo + timedelta(minutes=1), frequency=1,
                                      resolution=1))  # fmt: skip
    assert ei.value.status == 400 and "frequency" in str(ei.value)
    assert fake_sleep.waits == []  # a 400 is not retried


def test_bad_expression_is_400(emu, rc):
    w = watch(emu)
    with pytest.raises(BadRequest):
        list(
            rc.v1.heartrate(w.pid, w.hr.device_id, DAY, DAY + timedelta(days=1), expression="accel")
        )


def test_chaos_v1_equals_clean(emu, fake_sleep):
    w = watch(emu)
    hi = w.lo + timedelta(minutes=4)

    def run():
        with RuneClient(emu_settings(emu, max_attempts=12), sleep=fake_sleep) as c:
            return [
                table(c.v1.accel(w.pid, w.dev, w.lo, hi, fmt=fmt, paging=paging, page_size=1000))
                for fmt, paging in PAGINGS
            ]

    emu.set_chaos(None)
    clean = run()
    emu.stats.reset()
    emu.set_chaos(ChaosConfig.uniform(0.2, seed=3, delay_s=0.01))
    try:
        chaotic = run()
        faults = sum(emu.stats.chaos.values())
    finally:
        emu.set_chaos(None)
    assert faults > 5, emu.stats.chaos
    assert all(a.equals(b) for a, b in zip(clean, chaotic, strict=True))
    assert all(t.equals(clean[0]) for t in clean)
