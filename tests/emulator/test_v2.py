"""V2 stream data over real HTTP: formats, windows, paging, limit, timestamps."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from .conftest import USER_HEADERS, busy_day, gql, iso_to_ns, stream_of

DAY = 86_400


def fetch_all(http, emu, stream_id, params, headers=USER_HEADERS):
    """Follow X-Rune-Next-Page-Token; returns the list of responses."""
    params = dict(params)
    pages = []
    while True:
        r = http.get(f"{emu.url}/v2/streams/{stream_id}", params=params, headers=headers)
        assert r.status_code == 200, r.text
        pages.append(r)
        token = r.headers.get("X-Rune-Next-Page-Token")
        if not token:
            return pages
        params["page_token"] = token


def read_csv(text: str) -> pa.Table:
    opts = pcsv.ConvertOptions(column_types={"time": pa.int64()})
    return pcsv.read_csv(io.BytesIO(text.encode()), convert_options=opts)


def test_csv_unixns_pages_match_expected_table(emu, http):
    spec = stream_of(emu, "motion", 1, measurement="user", axis="y")
    a = busy_day(emu, spec)
    pages = fetch_all(
        http, emu, spec.id, {"start_time": a, "end_time": a + DAY, "timestamp": "unixns"}
    )
    assert len(pages) > 2
    for r in pages:
        assert r.text.startswith("time,acceleration,measurement_duration_ns\n")  # every page
    got = pa.concat_tables([read_csv(r.text) for r in pages])
    exp = emu.expected_table(spec.id, a, a + DAY)
    assert got.num_rows == exp.num_rows > 100_000
    np.testing.assert_array_equal(got.column("time").to_numpy(), exp.column("time").to_numpy())
    np.testing.assert_array_equal(
        got.column("acceleration").to_numpy(), exp.column("acceleration").to_numpy()
    )
    assert len(pages[-1].content) > 0 and "X-Rune-Next-Page-Token" not in pages[-1].headers


def test_start_inclusive_end_exclusive_and_ns_params(emu, http):
    spec = stream_of(emu, "lfp", 0)
    a = busy_day(emu, spec)
    exp = emu.expected_table(spec.id, a, a + DAY)
    t = exp.column("time").to_numpy()
    lo, hi = int(t[3]), int(t[7])
    (r,) = fetch_all(
        http, emu, spec.id, {"start_time_ns": lo, "end_time_ns": hi, "timestamp": "unixns"}
    )
    got = read_csv(r.text).column("time").to_numpy()
    np.testing.assert_array_equal(got, t[3:7])
    (r,) = fetch_all(
        http, emu, spec.id, {"start_time": lo / 1e9, "end_time": hi / 1e9, "timestamp": "unixns"}
    )
    np.testing.assert_array_equal(read_csv(r.text).column("time").to_numpy(), t[3:7])
    r = http.get(
        f"{emu.url}/v2/streams/{spec.id}",
        params={"start_time": a, "start_time_ns": lo},
        headers=USER_HEADERS,
    )
    assert r.status_code == 400 and r.json()["success"] is False


def test_empty_window_is_header_only_csv(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 0)
    a = emu.cohort.data_start.timestamp() + 2 * 3600  # 02:00: watch is off at night
    (r,) = fetch_all(http, emu, spec.id, {"start_time": a, "end_time": a + 60})
    assert r.text == "time,rate,measurement_duration_ns\n"
    (r,) = fetch_all(http, emu, spec.id, {"start_time": a, "end_time": a + 60, "format": "json"})
    empty = {"time": [], "rate": [], "measurement_duration_ns": []}
    assert r.json() == {"cardinality": 0, "data": empty}


def test_json_format_and_limit_across_pages(emu, http):
    spec = stream_of(emu, "motion", 1, measurement="gravity", axis="x")
    a = busy_day(emu, spec)
    pages = fetch_all(
        http,
        emu,
        spec.id,
        {"start_time": a, "end_time": a + DAY, "format": "json", "limit": 100_001},
    )
    assert [p.json()["cardinality"] for p in pages] == [50_000, 50_000, 1]
    body = pages[0].json()
    assert set(body["data"]) == {"time", "acceleration", "measurement_duration_ns"}
    assert body["data"]["time"][0].endswith("Z")
    exp = emu.expected_table(spec.id, a, a + DAY).slice(0, 100_001)
    vals = sum((p.json()["data"]["acceleration"] for p in pages), [])
    assert vals == exp.column("acceleration").to_pylist()


def test_limit_smaller_than_page(emu, http):
    spec = stream_of(emu, "hk_heart_rate", 1)
    a = busy_day(emu, spec)
    (r,) = fetch_all(http, emu, spec.id, {"start_time": a, "end_time": a + DAY, "limit": 5})
    assert len(r.text.strip().splitlines()) == 6


def test_timestamp_formats_and_timezones(emu, http):
    spec = stream_of(emu, "motion", 1, measurement="user", axis="x")
    a = busy_day(emu, spec)
    exp = emu.expected_table(spec.id, a, a + DAY).slice(0, 3)
    first_ns = exp.column("time")[0].as_py()
    base = {"start_time": a, "end_time": a + DAY, "limit": 3}
    (r,) = fetch_all(http, emu, spec.id, {**base, "timestamp": "iso"})
    iso = r.text.splitlines()[1].split(",")[0]
    assert iso.endswith("Z") and iso_to_ns(iso) == first_ns
    (r,) = fetch_all(http, emu, spec.id, {**base, "timestamp": "unix"})
    assert float(r.text.splitlines()[1].split(",")[0]) == first_ns / 1e9
    (r,) = fetch_all(http, emu, spec.id, {**base, "timezone": -28800})
    local = r.text.splitlines()[1].split(",")[0]
    assert local.endswith("-08:00") and iso_to_ns(local) == first_ns
    (r,) = fetch_all(http, emu, spec.id, {**base, "timezone_name": "Asia/Kolkata"})
    local = r.text.splitlines()[1].split(",")[0]
    assert local.endswith("+05:30") and iso_to_ns(local) == first_ns
    r = http.get(
        f"{emu.url}/v2/streams/{spec.id}",
        params={**base, "timezone_name": "Mars/Olympus"},
        headers=USER_HEADERS,
    )
    assert r.status_code == 400


def test_symptom_duration_and_percentage_columns(emu, http):
    dur = stream_of(emu, "symptom", 1, measurement="tremor", severity="all")
    pct = next(
        s
        for s in emu.cohort.streams_of(dur.meta.patient_id)
        if s.meta.stream_type.id == "percentage" and s.meta.params == dur.meta.params
    )
    a = busy_day(emu, dur)
    frames = []
    for spec in (dur, pct):
        (r,) = fetch_all(http, emu, spec.id, {"start_time": a, "end_time": a + DAY})
        frames.append(pd.read_csv(io.StringIO(r.text)))
    assert list(frames[0].columns) == ["time", "duration", "measurement_duration_ns"]
    assert list(frames[1].columns) == ["time", "percentage", "measurement_duration_ns"]
    assert (frames[0]["measurement_duration_ns"] == 60_000_000_000).all()
    assert frames[0]["time"].iloc[0].endswith(":00Z")  # one row a minute, on the minute
    assert (frames[0]["duration"] > 0).any() and frames[0]["duration"].max() <= 60
    np.testing.assert_allclose(frames[1]["percentage"], frames[0]["duration"] / 60, atol=1e-6)


def test_page_token_is_bound_to_query(emu, http):
    spec = stream_of(emu, "motion", 1, measurement="user", axis="z")
    a = busy_day(emu, spec)
    params = {"start_time": a, "end_time": a + DAY}
    r = http.get(f"{emu.url}/v2/streams/{spec.id}", params=params, headers=USER_HEADERS)
    token = r.headers["X-Rune-Next-Page-Token"]
    r2 = http.get(
        f"{emu.url}/v2/streams/{spec.id}",
        params={**params, "end_time": a + DAY - 1, "page_token": token},
        headers=USER_HEADERS,
    )
    assert r2.status_code == 400
    r3 = http.get(
        f"{emu.url}/v2/streams/{spec.id}",
        params={**params, "page_token": "not-a-token"},
        headers=USER_HEADERS,
    )
    assert r3.status_code == 400


@pytest.mark.parametrize(
    "params",
    [{"format": "xml"}, {"timestamp": "epoch"}, {"limit": "-1"}, {"start_time": "abc"}],
)
def test_bad_params_are_400(emu, http, params):
    spec = stream_of(emu, "hk_heart_rate", 0)
    r = http.get(f"{emu.url}/v2/streams/{spec.id}", params=params, headers=USER_HEADERS)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "BadRequest"


def test_unknown_stream_is_404(emu, http):
    r = http.get(f"{emu.url}/v2/streams/{'0' * 64}", headers=USER_HEADERS)
    assert r.status_code == 404
    assert r.json() == {
        "success": False,
        "error": {"message": r.json()["error"]["message"], "type": "NotFound"},
    }


def test_data_is_stable_between_requests(emu, http):
    spec = stream_of(emu, "motion", 2, measurement="user", axis="x")
    a = busy_day(emu, spec)
    params = {"start_time": a, "end_time": a + DAY}
    r1 = http.get(f"{emu.url}/v2/streams/{spec.id}", params=params, headers=USER_HEADERS)
    emu.state.cache._items.clear()  # re-render from scratch
    emu.state.text_cache.clear()
    r2 = http.get(f"{emu.url}/v2/streams/{spec.id}", params=params, headers=USER_HEADERS)
    assert r1.content == r2.content


def test_cached_day_text_equals_directly_formatted_text(emu, http):
    spec = stream_of(emu, "motion", 0, measurement="gravity", axis="y")
    a = busy_day(emu, spec)
    t = emu.expected_table(spec.id, a, a + DAY).column("time").to_numpy()
    lo, hi = int(t[1000]), int(t[1100])
    for ts in ("iso", "unix", "unixns"):
        whole = fetch_all(
            http, emu, spec.id, {"start_time": a, "end_time": a + DAY, "timestamp": ts}
        )
        lines = [x for r in whole for x in r.text.splitlines()[1:]]  # from the day cache
        (part,) = fetch_all(
            http, emu, spec.id, {"start_time_ns": lo, "end_time_ns": hi, "timestamp": ts}
        )
        assert part.text.splitlines()[1:] == lines[1000:1100], ts  # formatted directly


def test_no_data_beyond_now_and_clock_advances(fresh_emu, http):
    emu = fresh_emu
    spec = stream_of(emu, "lfp", 0)
    now = emu.config.now.timestamp()
    params = {"start_time": now - 3 * DAY, "end_time": now + 5 * DAY, "timestamp": "unixns"}
    before = sum(len(read_csv(r.text)) for r in fetch_all(http, emu, spec.id, params))
    assert stream_max_time(emu, spec.id) <= now
    emu.set_now(datetime.fromtimestamp(now + DAY, tz=UTC))
    after = fetch_all(http, emu, spec.id, params)
    times = pa.concat_tables([read_csv(r.text) for r in after]).column("time").to_numpy()
    assert times.max() < (now + DAY) * 1e9
    implant_missing = emu.state.store.count(spec, int(now * 1e9), int((now + DAY) * 1e9)) == 0
    assert len(times) == before + (0 if implant_missing else 144)
    assert stream_max_time(emu, spec.id) == now + DAY


def stream_max_time(emu, stream_id: str) -> float:
    q = "query($ids: [String]) { streamListByIds(streamIds: $ids) { streams { maxTime } } }"
    body = gql(emu, q, {"ids": [stream_id]})
    return body["data"]["streamListByIds"]["streams"][0]["maxTime"]


def test_json_error_body_shape(emu, http):
    r = http.get(f"{emu.url}/v2/streams/x")
    assert r.status_code == 401
    assert json.loads(r.text)["error"]["type"] == "Unauthorized"
