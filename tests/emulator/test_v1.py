"""V1 endpoints of the seed reference: accel, heartrate (JSON/CSV), event (JSON)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from .conftest import CLIENT_HEADERS, USER_HEADERS, busy_day, stream_of

HOUR = 3600


def _watch(emu, i=0):
    return next(d for d in emu.cohort.patients[i].devices if d.alias == "Apple Watch")


def _base(emu, i, spec, hours=1):
    a = busy_day(emu, spec) + 10 * HOUR  # mid-morning: the watch is worn
    if spec.kind == "motion":  # 50 Hz motion exists in recording sessions: start at one
        t = emu.expected_table(spec.id, a - 10 * HOUR, a + 14 * HOUR).column("time")
        a = float(t[0].as_py() // 10**9)
    return {
        "patient_id": emu.cohort.patients[i].id,
        "device_id": _watch(emu, i).id,
        "start_time": a,
        "end_time": a + hours * HOUR,
    }


def get(http, emu, resource, params, headers=USER_HEADERS):
    return http.get(f"{emu.url}/v1/{resource}", params=params, headers=headers)


def test_accel_csv_pages_until_empty_body(emu, http):
    spec = stream_of(emu, "motion", 1, measurement="user", axis="x")
    gravity = stream_of(emu, "motion", 1, measurement="gravity", axis="x")
    base = _base(emu, 1, spec)
    frames, page = [], 0
    while True:
        r = get(http, emu, "accel.csv", {**base, "page": page, "page_size": 50_000})
        assert r.status_code == 200
        if not r.content:
            break
        frames.append(pd.read_csv(io.StringIO(r.text)))
        page += 1
    df = pd.concat(frames)
    assert list(df.columns) == ["time", "x", "y", "z"]
    exp = emu.expected_table(spec.id, base["start_time"], base["end_time"])
    grav = emu.expected_table(gravity.id, base["start_time"], base["end_time"])
    assert len(df) == exp.num_rows > 50_000 and page == -(-exp.num_rows // 50_000)
    total = exp.column("acceleration").to_numpy() + grav.column("acceleration").to_numpy()
    np.testing.assert_array_equal(df["x"].to_numpy(), total)  # V1 accel = user + gravity


def test_accel_json_next_page_and_token(emu, http):
    spec = stream_of(emu, "motion", 1, measurement="user", axis="x")
    base = _base(emu, 1, spec, hours=0.1)  # ~18,000 points
    n = emu.expected_table(spec.id, base["start_time"], base["end_time"]).num_rows
    assert 10_000 < n < 20_000
    r = get(http, emu, "accel.json", base)
    body = r.json()
    assert body["success"] and body["next_page"] == 1 and body["result"]["cardinality"] == 10_000
    assert set(body["result"]) == {"cardinality", "time", "x", "y", "z"}
    token = r.headers["X-Rune-Next-Page-Token"]
    r2 = get(http, emu, "accel.json", {**base, "next_page_token": token})
    assert r2.json()["result"]["cardinality"] == n - 10_000 and "next_page" not in r2.json()
    assert "X-Rune-Next-Page-Token" not in r2.headers
    r3 = get(http, emu, "accel.json", {**base, "page": 1})
    assert r3.json()["result"] == r2.json()["result"]
    bad = get(http, emu, "accel.json", {**base, "next_page_token": token, "page": 1})
    assert bad.status_code == 400


def test_page_size_limits(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    base = _base(emu, 1, spec)
    assert get(http, emu, "heartrate.json", {**base, "page_size": 10_001}).status_code == 400
    assert get(http, emu, "heartrate.csv", {**base, "page_size": 3_600_001}).status_code == 400
    assert get(http, emu, "heartrate.csv", {**base, "page_size": 3_600_000}).status_code == 200
    r = get(http, emu, "heartrate.json", {**base, "page_size": 0})
    assert r.status_code == 200 and r.json()["result"]["cardinality"] > 0


def test_heartrate_csv_and_json(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    base = _base(emu, 1, spec)
    df = pd.read_csv(io.StringIO(get(http, emu, "heartrate.csv", base).text))
    assert list(df.columns) == ["time", "bpm"]
    exp = emu.expected_table(spec.id, base["start_time"], base["end_time"]).to_pandas()
    np.testing.assert_allclose(df["time"], exp["time"] / 1e9)
    np.testing.assert_array_equal(df["bpm"], exp["rate"])
    body = get(http, emu, "heartrate.json", {**base, "partition_size": 100}).json()
    assert all(len(p) <= 100 for p in body["result"]["bpm"])
    assert sum(len(p) for p in body["result"]["bpm"]) == len(df)


def test_expressions_user_gravity(emu, http):
    spec = stream_of(emu, "motion", 1, measurement="user", axis="x")
    base = {**_base(emu, 1, spec, hours=0.01), "page_size": 500}
    acc = get(http, emu, "accel.json", base).json()["result"]
    grav = get(http, emu, "accel.json", {**base, "expression": "gravity"}).json()["result"]
    user = get(http, emu, "accel.json", {**base, "expression": "user"}).json()["result"]
    np.testing.assert_allclose(np.add(grav["x"], user["x"]), acc["x"], atol=1e-12)
    truth = emu.expected_table(spec.id, base["start_time"], base["end_time"])
    assert user["x"] == truth.column("acceleration").to_pylist()[:500]
    assert get(http, emu, "accel.json", {**base, "expression": "bpm"}).status_code == 400


def test_availability_expression_default_5min(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    a = busy_day(emu, spec)
    base = {**_base(emu, 1, spec), "start_time": a, "end_time": a + 86_400}
    r = get(http, emu, "heartrate.csv", {**base, "expression": "availability(bpm)"})
    df = pd.read_csv(io.StringIO(r.text))
    assert list(df.columns) == ["time", "availability"] and len(df) == 288
    assert set(df["availability"]) == {0, 1}
    assert df["availability"].iloc[:12].sum() == 0  # 00:00-01:00: watch off


def test_resolution_interpolation(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    a = busy_day(emu, spec)
    base = {**_base(emu, 1, spec), "start_time": a, "end_time": a + 86_400}
    res = {"resolution": 3600}
    skip = pd.read_csv(io.StringIO(get(http, emu, "heartrate.csv", {**base, **res}).text))
    assert 10 <= len(skip) < 24
    for interp in ("null", "zero", "previous", "linear"):
        r = get(http, emu, "heartrate.csv", {**base, **res, "interpolation": interp})
        df = pd.read_csv(io.StringIO(r.text))
        assert len(df) == 24, interp
        if interp == "zero":
            assert (df["bpm"] == 0).sum() == 24 - len(skip)
        if interp == "null":
            assert df["bpm"].isna().sum() == 24 - len(skip)
    freq = get(http, emu, "heartrate.csv", {**base, "frequency": 1 / 3600})
    assert freq.text == get(http, emu, "heartrate.csv", {**base, **res}).text
    both = get(http, emu, "heartrate.csv", {**base, "frequency": 1, "resolution": 1})
    assert both.status_code == 400
    bad = get(http, emu, "heartrate.csv", {**base, **res, "interpolation": "cubic"})
    assert bad.status_code == 400


@pytest.mark.parametrize("fmt", ["unix", "iso", "datetime"])
def test_v1_timestamp_formats(emu, http, fmt):
    spec = stream_of(emu, "hk_heart_rate", 1)
    base = {**_base(emu, 1, spec), "page_size": 2, "timestamp": fmt, "timezone": 3600}
    t0 = get(http, emu, "heartrate.json", base).json()["result"]["time"][0]
    ns = emu.expected_table(spec.id, base["start_time"], base["end_time"]).column("time")[0]
    exp = pd.Timestamp(ns.as_py() // 1000 * 1000, tz="UTC")  # V1 times: microseconds
    assert ns.as_py() % 1000 != 0  # a sub-microsecond sample time: the floor is visible
    if fmt == "unix":  # the float seconds of the floored microsecond, not of the ns time
        assert t0 == ns.as_py() // 1000 / 1e6
    elif fmt == "iso":
        assert t0.endswith("+01:00") and pd.Timestamp(t0) == exp
    else:
        assert pd.Timestamp(t0) == exp.tz_localize(None) + pd.Timedelta(hours=1)


def test_event_prefix_and_paging(emu, http):
    pid = emu.cohort.patients[0].id
    truth = emu.cohort.events(pid)
    base = {"patient_id": pid, "start_time": emu.cohort.data_start.timestamp(), "end_time": 2e9}
    allr = get(http, emu, "event.json", base).json()["result"]
    assert allr["cardinality"] == len(truth)
    meds = get(http, emu, "event.json", {**base, "event": "device.medication"}).json()["result"]
    assert meds["cardinality"] == sum(e.category == "medication" for e in truth) > 0
    assert all(ev["type"].startswith("device.medication.") for ev in meds["events"])
    drug = meds["events"][0]["type"]
    one = get(http, emu, "event.json", {**base, "event": drug}).json()["result"]
    assert one["cardinality"] == meds["cardinality"]
    assert (
        get(http, emu, "event.json", {**base, "event": "device.med"}).json()["result"][
            "cardinality"
        ]
        == 0
    )
    p0 = get(http, emu, "event.json", {**base, "page_size": 2}).json()
    assert p0["next_page"] == 1 and p0["result"]["cardinality"] == 2
    assert isinstance(p0["result"]["events"][0]["payload"], dict)


def test_v1_client_key_infers_patient(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 0)
    pid = emu.cohort.client_key_patient_id
    base = {"device_id": _watch(emu, 0).id, "start_time": busy_day(emu, spec), "page_size": 5}
    base["end_time"] = base["start_time"] + 86_400
    r = get(http, emu, "heartrate.json", base, headers=CLIENT_HEADERS)
    assert r.status_code == 200 and r.json()["result"]["cardinality"] == 5
    other = emu.cohort.patients[1]
    r = get(http, emu, "heartrate.json", {**base, "patient_id": other.id}, headers=CLIENT_HEADERS)
    assert r.status_code in (403, 404)
    r = get(http, emu, "event.json", {"patient_id": pid}, headers=CLIENT_HEADERS)
    assert r.status_code == 200


def test_v1_errors(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    base = _base(emu, 1, spec)
    assert get(http, emu, "heartrate.csv", {**base, "device_id": "nope"}).status_code == 404
    assert (
        get(
            http, emu, "heartrate.csv", {k: v for k, v in base.items() if k != "device_id"}
        ).status_code
        == 400
    )
    assert (
        get(
            http, emu, "heartrate.csv", {k: v for k, v in base.items() if k != "end_time"}
        ).status_code
        == 400
    )
    assert get(http, emu, "event.csv", base).status_code == 404
    assert get(http, emu, "lfp.xml", base).status_code == 404
    assert get(http, emu, "heartrate.csv", base, headers={}).status_code == 401
