"""V2 availability, single stream and batch (any/all, resolution bounds, stream cap)."""

from __future__ import annotations

import io

import pandas as pd

from rune_emulator import MAX_BATCH_STREAMS

from .conftest import USER_HEADERS, stream_of

DAY = 86_400


def _get(http, emu, path, params):
    return http.get(f"{emu.url}{path}", params=params, headers=USER_HEADERS)


def test_single_stream_availability(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    a = emu.cohort.data_start.timestamp()
    r = _get(
        http,
        emu,
        f"/v2/streams/{spec.id}/availability",
        {"start_time": a, "end_time": a + 3 * DAY, "resolution": 3600, "timestamp": "unix"},
    )
    df = pd.read_csv(io.StringIO(r.text))
    assert list(df.columns) == ["time", "availability"] and len(df) == 72
    for _, row in df.iterrows():
        n = emu.state.store.count(spec, int(row.time * 1e9), int((row.time + 3600) * 1e9))
        assert row.availability == int(n > 0)


def test_batch_any_all(emu, http):
    hr = stream_of(emu, "hk_heart_rate", 1)
    lfp = stream_of(emu, "lfp", 1, hemisphere="left")
    a = emu.cohort.data_start.timestamp()
    base = {
        "stream_id": [hr.id, lfp.id],
        "start_time": a,
        "end_time": a + 3 * DAY,
        "resolution": 3600,
    }
    anyr = pd.read_csv(
        io.StringIO(
            _get(http, emu, "/v2/batch/availability", {**base, "batch_operation": "any"}).text
        )
    )
    allr = pd.read_csv(
        io.StringIO(
            _get(http, emu, "/v2/batch/availability", {**base, "batch_operation": "all"}).text
        )
    )
    single = [
        pd.read_csv(
            io.StringIO(
                _get(
                    http,
                    emu,
                    f"/v2/streams/{s}/availability",
                    {k: v for k, v in base.items() if k != "stream_id"},
                ).text
            )
        )
        for s in base["stream_id"]
    ]
    assert (anyr.availability == (single[0].availability | single[1].availability)).all()
    assert (allr.availability == (single[0].availability & single[1].availability)).all()
    assert allr.availability.sum() < anyr.availability.sum()


def test_batch_errors(emu, http):
    hr = stream_of(emu, "hk_heart_rate", 1)
    a = emu.cohort.data_start.timestamp()
    base = {"stream_id": [hr.id, hr.id], "start_time": a, "end_time": a + DAY, "resolution": 3600}
    assert _get(http, emu, "/v2/batch/availability", base).status_code == 400  # no batch_operation
    ok = {**base, "batch_operation": "all"}
    assert _get(http, emu, "/v2/batch/availability", ok).status_code == 200
    assert _get(http, emu, "/v2/batch/availability", {**ok, "resolution": 299}).status_code == 400
    assert (
        _get(http, emu, "/v2/batch/availability", {**ok, "resolution": 86_401}).status_code == 400
    )
    assert (
        _get(http, emu, "/v2/batch/availability", {**ok, "resolution": 86_400}).status_code == 200
    )
    many = {**ok, "stream_id": [hr.id] * (MAX_BATCH_STREAMS + 1)}
    r = _get(http, emu, "/v2/batch/availability", many)
    assert r.status_code == 400 and "too many" in r.json()["error"]["message"]
    cap = {**ok, "stream_id": [hr.id] * MAX_BATCH_STREAMS}
    assert _get(http, emu, "/v2/batch/availability", cap).status_code == 200


def test_availability_paging(fresh_emu, http):
    emu = fresh_emu  # page_size 20,000: use a tiny page via limit-free paging of many bins
    spec = stream_of(emu, "lfp", 0)
    a = emu.cohort.data_start.timestamp() - 200 * DAY
    params = {"start_time": a, "end_time": a + 100 * DAY, "resolution": 300, "format": "json"}
    n, pages = 0, 0
    while True:
        r = _get(http, emu, f"/v2/streams/{spec.id}/availability", params)
        n += r.json()["cardinality"]
        pages += 1
        tok = r.headers.get("X-Rune-Next-Page-Token")
        if not tok:
            break
        params["page_token"] = tok
    assert n == 100 * 288 and pages == 2


def test_aggregate_window(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    a = emu.cohort.data_start.timestamp()
    r = _get(
        http,
        emu,
        f"/v2/streams/{spec.id}/aggregate_window",
        {"start_time": a, "end_time": a + 3 * DAY, "resolution": DAY, "aggregate_function": "mean"},
    )
    body = r.json()
    assert body["cardinality"] == 3
    assert set(body["data"]) == {"time", "aggregate_values", "duration_sum"}
    assert set(body["summary"]) == {
        "value_mean",
        "value_min",
        "value_max",
        "value_med",
        "value_std",
    }
    exp = emu.expected_table(spec.id, a, a + DAY).column("rate").to_numpy()
    got = body["data"]["aggregate_values"][0]
    assert (got is None and len(exp) == 0) or abs(got - exp.mean()) < 1e-9


def test_aggregate_window_sums_symptom_seconds(emu, http):
    spec = stream_of(emu, "symptom", 1, measurement="tremor", severity="all")
    a = emu.cohort.data_start.timestamp()
    params = {"start_time": a, "end_time": a + DAY, "resolution": DAY, "aggregate_function": "sum"}
    body = _get(http, emu, f"/v2/streams/{spec.id}/aggregate_window", params).json()
    exp = emu.expected_table(spec.id, a, a + DAY)
    assert abs(body["data"]["aggregate_values"][0] - sum(exp.column("duration").to_pylist())) < 1e-6
    assert body["data"]["duration_sum"][0] == exp.num_rows * 60.0  # 60 s windows


def test_daily_aggregate(emu, http):
    spec = stream_of(emu, "hk_pressure", 0)
    a = emu.cohort.data_start.timestamp()
    params = {"start_time": a, "resolution": 6 * 3600, "n_days": 2}
    body = _get(http, emu, f"/v2/streams/{spec.id}/daily_aggregate", params).json()
    assert body["cardinality"] == 4 and len(body["data"]["aggregate_values"]) == 4
    t = emu.expected_table(spec.id, a, a + 2 * DAY)
    tod = (t.column("time").to_numpy() // 10**9 - int(a)) % DAY
    vals = t.column("pressure").to_numpy()
    assert (
        abs(
            body["data"]["aggregate_values"][1] - vals[(tod >= 6 * 3600) & (tod < 12 * 3600)].mean()
        )
        < 1e-9
    )
    bad = http.get(
        f"{emu.url}/v2/streams/{spec.id}/daily_aggregate",
        params={**params, "resolution": 7 * 3600},
        headers=USER_HEADERS,
    )
    assert bad.status_code == 400
