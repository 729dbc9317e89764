"""V1 readers against the emulator's V1 API, checked against the emulator's V2 ground truth.

``accel`` and ``heartrate`` (CSV and JSON) and ``event`` (JSON), over every paging mode
of the seed (JSON ``page``/``next_page``, CSV ``page`` until an empty body, the
``X-Rune-Next-Page-Token`` header), with ``expression`` (incl. ``availability(...)``),
``frequency``/``resolution``, ``interpolation``, ``timestamp`` formats, ``partition_size``,
event prefixes, client-key auth with an inferred patient, and the 400s the seed implies.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from rune_emulator import ChaosConfig
from rune_io.client import RuneClient
from rune_io.errors import AuthError, BadRequest, NotFound

from .conftest import emu_settings

DAY = datetime(2026, 10, 31, tzinfo=UTC)  # a full day of data (EmulatorConfig default clock)
LO = DAY + timedelta(hours=10)  # the watch is worn (07-22h)
NS = 10**9

PAGINGS = [("csv", "page"), ("csv", "token"), ("json", "page"), ("json", "token")]


def watch(emu, patient: int = 0):
    """(patient id, watch device id, {axis: accel stream}, heart-rate stream)."""
    pid = emu.cohort.patients[patient].id
    mine = [s for s in emu.cohort.streams if s.patient_id == pid]
    acc = {
        s.params["axis"]: s
        for s in mine
        if s.stream_type.id == "acceleration" and s.params.get("measurement") == "user"
    }
    hr = next(s for s in mine if s.stream_type.id == "rate-per-min")
    assert set(acc) == {"x", "y", "z"}
    return pid, hr.device_id, acc, hr


def table(batches) -> pa.Table:
    return pa.Table.from_batches(list(batches))


def truth(emu, stream, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """(time in unix ns, first value column) the V2 API serves for ``[lo, hi)``."""
    t = emu.expected_table(stream.id, lo, hi)
    return t.column(0).to_numpy(), t.column(1).to_numpy()


def requests_seen(emu, prefix: str, want: int) -> int:
    """The emulator logs a request once its response is sent: give the last one a moment."""
    deadline = time.monotonic() + 2
    while emu.stats.count(path_prefix=prefix) < want and time.monotonic() < deadline:
        time.sleep(0.01)
    return emu.stats.count(path_prefix=prefix)


def times_ns(t: pa.Table) -> np.ndarray:
    return t.column("time").cast(pa.int64()).to_numpy() * 1000


@pytest.mark.parametrize(("fmt", "paging"), PAGINGS)
def test_accel_raw_every_paging_mode_equals_v2(emu, rc, fmt, paging):
    pid, dev, acc, _ = watch(emu)
    hi = LO + timedelta(minutes=5)  # 15,000 points at 50 Hz: 4 pages of 4,000
    emu.stats.reset()
    got = table(rc.v1.accel(pid, dev, LO, hi, fmt=fmt, paging=paging, page_size=4000))
    assert got.column_names == ["time", "x", "y", "z"]
    assert got.schema.field("time").type == pa.timestamp("us", tz="UTC")
    t_x, x = truth(emu, acc["x"], LO, hi)
    assert got.num_rows == len(t_x) == 15_000
    assert np.array_equal(times_ns(got), t_x)
    for axis in "xyz":
        assert np.array_equal(got.column(axis).to_numpy(), truth(emu, acc[axis], LO, hi)[1])
    # 4 pages; CSV page mode asks once more and gets the empty body that ends it
    want = 5 if (fmt, paging) == ("csv", "page") else 4
    assert requests_seen(emu, f"/v1/accel.{fmt}", want) == want


@pytest.mark.parametrize(("fmt", "paging"), PAGINGS)
def test_heartrate_every_paging_mode_equals_v2(emu, rc, fmt, paging):
    pid, dev, _, hr = watch(emu)
    hi = LO + timedelta(hours=2)
    got = table(rc.v1.heartrate(pid, hr.device_id, LO, hi, fmt=fmt, paging=paging, page_size=300))
    t, bpm = truth(emu, hr, LO, hi)
    assert len(t) > 3 * 300  # really paged
    assert got.column_names == ["time", "bpm"]
    assert np.array_equal(times_ns(got), t)
    assert np.array_equal(got.column("bpm").to_numpy(), bpm)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_accel_at_50hz_equals_v2_x_axis(emu, rc, fmt):
    """``frequency=50`` resamples onto the 20 ms grid the 50 Hz samples already sit on."""
    pid, dev, acc, _ = watch(emu)
    hi = LO + timedelta(minutes=2)
    got = table(rc.v1.accel(pid, dev, LO, hi, fmt=fmt, frequency=50, page_size=2500))
    t, x = truth(emu, acc["x"], LO, hi)
    assert got.num_rows == len(t) == 6000
    assert np.array_equal(times_ns(got), t)
    assert np.array_equal(got.column("x").to_numpy(), x)


def test_user_plus_gravity_is_accel(emu, rc):
    pid, dev, _, _ = watch(emu)
    hi = LO + timedelta(seconds=30)
    parts = {
        e: table(rc.v1.accel(pid, dev, LO, hi, expression=e, fmt="json"))
        for e in ("accel", "user", "gravity")
    }
    assert len({p.num_rows for p in parts.values()}) == 1
    for axis in "xyz":
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
    pid, dev, acc, _ = watch(emu)
    lo, hi = DAY, DAY + timedelta(days=1)
    got = table(
        rc.v1.accel(
            pid, dev, lo, hi, expression="availability(accel)", fmt=fmt, paging=paging,
            page_size=100,
        )
    )  # fmt: skip
    want = _availability(truth(emu, acc["x"], lo, hi)[0], lo, hi, 300)
    assert got.column_names == ["time", "availability"]
    assert got.num_rows == 288 and got.column("availability").type == pa.int64()
    assert np.array_equal(got.column("availability").to_numpy(), want)
    assert 0 < want.sum() < 288  # worn by day, not at night
    step = 300 * NS
    assert np.array_equal(times_ns(got), int(lo.timestamp()) * NS + np.arange(288) * step)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_heartrate_availability_at_resolution(emu, rc, fmt):
    pid, dev, _, hr = watch(emu)
    lo, hi = DAY + timedelta(hours=6), DAY + timedelta(hours=9)  # the watch goes on
    got = table(
        rc.v1.heartrate(
            pid, hr.device_id, lo, hi, expression="availability(bpm)", resolution=60, fmt=fmt
        )
    )
    want = _availability(truth(emu, hr, lo, hi)[0], lo, hi, 60)
    assert np.array_equal(got.column("availability").to_numpy(), want)
    assert 0 < want.sum() < len(want)


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


@pytest.mark.parametrize("interp", ["", "null", "zero", "previous", "linear"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_heartrate_resolution_and_interpolation(emu, rc, interp, fmt):
    pid, dev, _, hr = watch(emu)
    lo, hi = DAY + timedelta(hours=6, minutes=50), DAY + timedelta(hours=7, minutes=20)
    got = table(
        rc.v1.heartrate(
            pid, dev, lo, hi, resolution=2, interpolation=interp, fmt=fmt, page_size=250
        )
    )
    t, bpm = truth(emu, hr, lo, hi)
    want_t, want_v = _binned(t, bpm, lo, hi, 2, interp)
    assert np.array_equal(times_ns(got), want_t)
    col = got.column("bpm")
    assert col.type == pa.float64()
    values = col.to_numpy(zero_copy_only=False)  # null -> NaN
    assert np.allclose(values, want_v, equal_nan=True, rtol=0, atol=1e-9)
    if interp in ("", "zero"):
        assert col.null_count == 0
    else:
        assert col.null_count == np.isnan(want_v).sum() > 0  # the watch is off before ~07:00


def test_frequency_is_resolution_reciprocal(emu, rc):
    pid, dev, _, hr = watch(emu)
    hi = LO + timedelta(minutes=10)
    a = table(rc.v1.heartrate(pid, hr.device_id, LO, hi, frequency=0.1, fmt="json"))
    b = table(rc.v1.heartrate(pid, hr.device_id, LO, hi, resolution=10, fmt="json"))
    assert a.equals(b) and a.num_rows > 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize(
    ("timestamp", "timezone"),
    [("iso", None), ("iso", -28800), ("datetime", None), ("datetime", 19800)],
)
def test_timestamp_formats_give_the_same_instants(emu, rc, fmt, timestamp, timezone):
    pid, dev, _, hr = watch(emu)
    hi = LO + timedelta(minutes=30)
    unix = table(rc.v1.heartrate(pid, hr.device_id, LO, hi, fmt=fmt, page_size=200))
    other = table(
        rc.v1.heartrate(
            pid, dev, LO, hi, fmt=fmt, page_size=200, timestamp=timestamp, timezone=timezone
        )
    )
    assert other.equals(unix) and unix.num_rows > 200
    assert np.array_equal(times_ns(unix), truth(emu, hr, LO, hi)[0])


def test_iso_with_offset_on_the_wire(emu, rc):
    pid, dev, _, _ = watch(emu)
    params = dict(
        patient_id=pid, device_id=dev, start_time=LO.timestamp(),
        end_time=(LO + timedelta(seconds=1)).timestamp(), timestamp="iso", timezone=-28800,
    )  # fmt: skip
    body = rc.http.get(rc.v1.url("accel", "csv"), params=params).content.decode()
    assert body.splitlines()[1].startswith("2026-10-31T02:00:00.000000-08:00,")


@pytest.mark.parametrize("resource", ["accel", "heartrate"])
def test_partition_size_is_flattened(emu, rc, resource):
    pid, dev, _, _ = watch(emu)
    hi = LO + timedelta(minutes=3)
    read = getattr(rc.v1, resource)
    flat = table(read(pid, dev, LO, hi, fmt="json", page_size=1000))
    parts = table(read(pid, dev, LO, hi, fmt="json", page_size=1000, partition_size=7))
    assert parts.equals(flat) and flat.num_rows > 7
    doc = rc.http.get(
        rc.v1.url(resource, "json"),
        params=dict(patient_id=pid, device_id=dev, start_time=LO.timestamp(),
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
    pid, dev, _, _ = watch(emu)
    lo, hi = DAY - timedelta(days=1), DAY + timedelta(days=1)
    got = list(rc.v1.events(pid, dev, lo, hi, event=prefix, paging=paging, page_size=2))
    want = _truth_events(emu, pid, lo, hi, prefix or "")
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
    pid, dev, _, _ = watch(emu)
    evs = list(rc.v1.events(pid, dev, DAY, DAY + timedelta(days=1)))
    first = datetime.fromtimestamp(evs[0]["time"], UTC)
    again = list(rc.v1.events(pid, dev, first, first + timedelta(microseconds=1)))
    assert [e["id"] for e in again] == [evs[0]["id"]]
    assert list(rc.v1.events(pid, dev, first - timedelta(seconds=1), first)) == []


# ------------------------------------------------------------------- auth and errors


def test_client_key_infers_patient(emu, rc):
    pid = emu.cohort.client_key_patient_id
    patient = [p.id for p in emu.cohort.patients].index(pid)
    _, dev, acc, _ = watch(emu, patient)
    hi = LO + timedelta(minutes=1)
    with RuneClient(emu_settings(emu, "client_keys")) as c:
        for fmt in ("csv", "json"):
            got = table(c.v1.accel(None, dev, LO, hi, fmt=fmt, paging="token", page_size=1000))
            assert np.array_equal(got.column("x").to_numpy(), truth(emu, acc["x"], LO, hi)[1])
        evs = list(c.v1.events(None, dev, DAY, DAY + timedelta(days=1)))
        assert [e["id"] for e in evs] == _truth_events(emu, pid, DAY, DAY + timedelta(days=1))


def test_client_key_cannot_read_another_patient(emu):
    other = next(
        i for i, p in enumerate(emu.cohort.patients) if p.id != emu.cohort.client_key_patient_id
    )
    pid, dev, _, _ = watch(emu, other)
    with RuneClient(emu_settings(emu, "client_keys")) as c:
        with pytest.raises((AuthError, NotFound)) as ei:
            list(c.v1.accel(pid, dev, LO, LO + timedelta(minutes=1)))
    assert ei.value.status in (403, 404)


def test_page_with_next_page_token_is_400(emu, rc):
    pid, dev, _, _ = watch(emu)
    params = dict(
        patient_id=pid, device_id=dev, start_time=LO.timestamp(),
        end_time=(LO + timedelta(minutes=1)).timestamp(), page_size=1000,
    )  # fmt: skip
    url = rc.v1.url("accel", "json")
    token = rc.http.get(url, params=params).headers["X-Rune-Next-Page-Token"]
    assert rc.http.get(url, params={**params, "next_page_token": token}).json()["success"]
    with pytest.raises(BadRequest) as ei:
        rc.http.get(url, params={**params, "next_page_token": token, "page": 1})
    assert ei.value.status == 400 and "page" in str(ei.value)
    with pytest.raises(ValueError, match="set by the reader"):  # the reader never sends both
        list(rc.v1.accel(pid, dev, LO, LO + timedelta(minutes=1), paging="token", page=1))


@pytest.mark.parametrize("resource", ["accel", "heartrate"])
def test_frequency_and_resolution_together_is_400(emu, rc, fake_sleep, resource):
    pid, dev, _, _ = watch(emu)
    with pytest.raises(BadRequest) as ei:
        list(getattr(rc.v1, resource)(pid, dev, LO, LO + timedelta(minutes=1), frequency=1,
                                      resolution=1))  # fmt: skip
    assert ei.value.status == 400 and "frequency" in str(ei.value)
    assert fake_sleep.waits == []  # a 400 is not retried


def test_bad_expression_is_400(emu, rc):
    pid, dev, _, hr = watch(emu)
    with pytest.raises(BadRequest):
        list(rc.v1.heartrate(pid, hr.device_id, LO, LO + timedelta(minutes=1), expression="accel"))


def test_chaos_v1_equals_clean(emu, fake_sleep):
    pid, dev, _, _ = watch(emu)
    hi = LO + timedelta(minutes=4)

    def run():
        with RuneClient(emu_settings(emu, max_attempts=12), sleep=fake_sleep) as c:
            return [
                table(c.v1.accel(pid, dev, LO, hi, fmt=fmt, paging=paging, page_size=1000))
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
