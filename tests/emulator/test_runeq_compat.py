"""The public SDK (runeq 0.18.1), unmodified, against the emulator over HTTP: every
public call a researcher uses, on the real stream-type catalog."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

runeq = pytest.importorskip("runeq")

from runeq import initialize  # noqa: E402
from runeq.resources.event import get_patient_events  # noqa: E402
from runeq.resources.org import get_org, get_orgs, set_active_org  # noqa: E402
from runeq.resources.patient import (  # noqa: E402
    get_all_devices,
    get_all_patients,
    get_device,
    get_patient,
    get_patient_devices,
)
from runeq.resources.project import (  # noqa: E402
    get_cohort_patients,
    get_project,
    get_project_patients,
    get_projects,
)
from runeq.resources.stream import (  # noqa: E402
    get_stream_aggregate_window,
    get_stream_availability,
    get_stream_daily_aggregate,
    get_stream_data,
)
from runeq.resources.stream_metadata import (  # noqa: E402
    get_all_stream_types,
    get_patient_stream_metadata,
    get_stream_availability_dataframe,
    get_stream_metadata,
)
from runeq.resources.user import get_current_user  # noqa: E402

from rune_emulator import (  # noqa: E402
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    DEMO_CLIENT_ACCESS_KEY,
    DEMO_CLIENT_KEY_ID,
    EmulatorConfig,
    running_emulator,
)

from .conftest import busy_day, iso_to_ns, stream_of  # noqa: E402

DAY = 86_400


def _init(url: str) -> None:
    """Point runeq's global clients at an emulator."""
    initialize(
        access_token_id=DEMO_ACCESS_TOKEN_ID,
        access_token_secret=DEMO_ACCESS_TOKEN_SECRET,
        stream_url=url,
        graph_url=url,
    )


@pytest.fixture(scope="module")
def remu():
    """Own emulator (set_active_org mutates server state); 5 patients: lists page."""
    cfg = EmulatorConfig(seed=5, patients=5, days=3, page_size=30_000, motion_hours=0.5)
    with running_emulator(cfg) as e:
        _init(e.url)
        yield e


def test_user_orgs_and_org(remu):
    user = get_current_user()
    assert user.id == remu.cohort.user_id  # "user-<40 hex>,user", as the live API
    assert user.active_org_name == "Rune Demo"
    orgs = get_orgs()
    assert {o.id for o in orgs} == {o.id.removeprefix("org-") for o in remu.cohort.orgs}
    org = get_org(remu.cohort.orgs[1].id)
    assert org.name == remu.cohort.orgs[1].name


def test_patients_and_devices(remu):
    patients = get_all_patients()
    assert {p.id for p in patients} == {p.id for p in remu.cohort.patients}
    for p in patients:
        assert {d.id for d in p.devices} == {d.id for d in remu.cohort.patient(p.id).devices}
    one = get_patient(remu.cohort.patients[1].id)
    assert len(one.devices) == 3
    devices = get_patient_devices(one.id)
    watch = next(d for d in devices if d.name == "Apple Watch")
    assert get_device(one.id, watch.id).id == watch.id
    assert len(get_all_devices()) == 3 * len(remu.cohort.patients)


def test_projects_and_patient_lists_over_several_pages(remu):
    projects = get_projects()
    assert len(projects) == 1
    truth = remu.cohort.projects[0]
    proj = get_project(truth.id)
    assert proj.title == truth.title and len(proj.cohorts) == 2
    before = remu.stats.count("/graphql")
    pps = get_project_patients(truth.id)
    assert remu.stats.count("/graphql") - before == 3  # 5 patients, 2 a page
    assert {p.id for p in pps} == {p.id for p in remu.cohort.patients}
    for c in truth.cohorts:
        got = get_cohort_patients(c.id)
        assert {p.id for p in got} == set(remu.cohort.cohort_patients[c.id])


def test_stream_types(remu):
    types = get_all_stream_types()
    assert len(types) == 27
    span = types.get("span")
    assert [d.id for d in span.dimensions][:4] == [
        "start_time_min",
        "start_time",
        "end_time",
        "end_time_max",
    ]
    assert types.get("voltage-spectrum").name == "FFT Time-Domain"


def test_stream_metadata_with_every_filter(remu):
    pid = remu.cohort.patients[0].id
    streams = get_patient_stream_metadata(pid)
    assert len(streams) == len(remu.cohort.streams_of(pid)) == 37
    watch = next(d.id for d in remu.cohort.patient(pid).devices if d.alias == "Apple Watch")
    assert len(get_patient_stream_metadata(pid, device_id=watch)) == 24
    md = "ingest-strive-applewatch-md.0"
    assert len(get_patient_stream_metadata(pid, algorithm=md, measurement="tremor")) == 14
    tremor_all = get_patient_stream_metadata(
        pid, algorithm=md, measurement="tremor", severity="all", stream_type_id="duration"
    )
    assert len(tremor_all) == 1
    assert len(get_patient_stream_metadata(pid, category="motion", axis="z")) == 2
    assert len(get_patient_stream_metadata(pid, stream_type_id="acceleration")) == 6
    hk = get_patient_stream_metadata(pid, algorithm="ingest-strive-healthkit.1")
    assert "step_count" in set(hk.to_dataframe()["measurement"])
    assert len(streams.filter(category="symptom", measurement="dyskinesia")) == 2
    one = get_stream_metadata(next(iter(tremor_all.ids())))
    assert one.stream_type.id == "duration" and one.parameters["severity"] == "all"


def test_get_stream_dataframe_on_every_served_stream_type(remu):
    pid = remu.cohort.patients[1].id
    a = remu.cohort.data_start.timestamp()
    b = a + 3 * DAY
    seen: dict[str, str] = {}
    for spec in remu.cohort.streams_of(pid):
        seen.setdefault(spec.meta.stream_type.id, spec.id)
    assert len(seen) >= 14
    for type_id, sid in seen.items():
        if type_id == "acceleration":
            b2 = busy_day(remu, remu.cohort.specs[sid])
            lo, hi = b2, b2 + DAY
        else:
            lo, hi = a, b
        df = get_stream_metadata(sid).get_stream_dataframe(start_time=lo, end_time=hi)
        truth = remu.expected_table(sid, lo, hi)
        assert len(df) == truth.num_rows, type_id
        assert set(truth.column_names) <= set(df.columns), type_id
        if not len(df):
            continue
        first_ts = truth.schema.names[0]
        if truth.schema.field(first_ts).type == "int64" and first_ts != "offset":
            assert iso_to_ns(df[first_ts].iloc[0]) == truth.column(first_ts)[0].as_py()
        if "event" in df.columns:
            cell = df["event"].iloc[0]
            payload = cell if isinstance(cell, dict) else json.loads(cell)
            assert payload == json.loads(truth.column("event")[0].as_py())
    assert {"span", "event", "voltage-spectrum", "boolean", "count"} <= set(seen)


def test_get_stream_dataframe_on_every_catalog_type(remu):
    """``all_stream_types``: runeq reads a stream of every timed type of the catalog."""
    cfg = EmulatorConfig(seed=9, patients=1, days=1, all_stream_types=True)
    with running_emulator(cfg) as e:
        _init(e.url)
        try:
            a = e.cohort.data_start.timestamp()
            pid = e.cohort.patients[0].id
            streams = get_patient_stream_metadata(pid)
            types = {s.stream_type.id for s in streams}
            assert len(types) == 26  # all 27 but bytes, which has no time to window by
            for s in streams.filter(algorithm="rune-test-tour.0"):
                df = s.get_stream_dataframe(start_time=a, end_time=a + DAY)
                truth = e.expected_table(s.id, a, a + DAY)
                assert len(df) == truth.num_rows > 0 and set(truth.column_names) <= set(df.columns)
        finally:
            _init(remu.url)


def test_stream_dataframe_over_several_pages(remu):
    spec = stream_of(remu, "motion", 1, measurement="user", axis="x")
    a = busy_day(remu, spec)
    sm = get_stream_metadata(spec.id)
    before = remu.stats.count(f"/v2/streams/{spec.id}")
    df = sm.get_stream_dataframe(start_time=a, end_time=a + DAY, timestamp="unixns")
    pages = remu.stats.count(f"/v2/streams/{spec.id}") - before
    exp = remu.expected_table(spec.id, a, a + DAY).to_pandas()
    assert pages >= 2 and len(df) == len(exp) > 30_000
    assert (df["acceleration"].to_numpy() == exp["acceleration"].to_numpy()).all()
    assert (df["time"].to_numpy() == exp["time"].to_numpy()).all()
    assert set(df["axis"]) == {"x"} and set(df["patient_id"]) == {spec.meta.patient_id}


def test_raw_stream_data_csv_pages(remu):
    spec = stream_of(remu, "symptom", 0, measurement="tremor", severity="all")
    a = remu.cohort.data_start.timestamp()
    pages = list(get_stream_data(spec.id, start_time=a, end_time=a + 3 * DAY, limit=50))
    df = pd.read_csv(io.StringIO(pages[0]))
    assert list(df.columns) == ["time", "duration", "measurement_duration_ns"] and len(df) == 50


def test_availability_single_batch_and_json(remu):
    pid = remu.cohort.patients[2].id
    streams = get_patient_stream_metadata(pid)
    lfp_and_tremor = streams.filter(category="neural", measurement="lfp_trend_log_power")
    lfp_and_tremor.update(streams.filter(measurement="tremor", severity="all"))
    start = remu.cohort.data_start.timestamp()
    end = start + 3 * DAY
    df = lfp_and_tremor.get_stream_dataframe(start_time=start, end_time=end)
    expected = sum(remu.expected_table(s, start, end).num_rows for s in lfp_and_tremor.ids())
    assert len(df) == expected
    avail = lfp_and_tremor.get_batch_availability_dataframe(
        start_time=start, end_time=end, resolution=3600, batch_operation="any"
    )
    assert list(avail.columns) == ["time", "availability"] and len(avail) == 72
    assert avail["availability"].sum() > 0
    sid = next(iter(lfp_and_tremor.ids()))
    single = get_stream_availability_dataframe(sid, start, end, resolution=DAY)
    assert len(single) == 3
    (body,) = list(get_stream_availability(sid, start, end, resolution=DAY, format="json"))
    assert set(body) == {"approx_available_duration_s", "cardinality", "data"}
    assert body["approx_available_duration_s"] == sum(body["data"]["availability"]) * DAY


def test_aggregate_window_and_daily_aggregate(remu):
    spec = stream_of(remu, "hk_heart_rate", 0)
    a = remu.cohort.data_start.timestamp()
    agg = get_stream_aggregate_window(
        spec.id, a, a + DAY, resolution=3600, aggregate_function="mean"
    )
    assert set(agg["data"]) == {"time", "aggregate_values", "duration_sum"}
    assert len(agg["data"]["aggregate_values"]) == 24 and "value_mean" in agg["summary"]
    daily = get_stream_daily_aggregate(spec.id, a, resolution=3600, n_days=2)
    assert len(daily["data"]["aggregate_values"]) == 24


def test_events(remu):
    pid = remu.cohort.patients[0].id
    start = remu.cohort.data_start.timestamp()
    now = remu.now_ns() / 1e9
    events = get_patient_events(pid, start, now)
    assert len(events) == len(remu.cohort.events(pid)) > 0
    assert set(events.to_dataframe()["category"]) >= {"medication"}
    assert len(get_patient_events(pid, start, start + 3600)) == 0  # null eventList


def test_client_key_reads_its_patient_only(remu):
    from runeq.errors import APIError

    initialize(
        client_key_id=DEMO_CLIENT_KEY_ID,
        client_access_key=DEMO_CLIENT_ACCESS_KEY,
        stream_url=remu.url,
        graph_url=remu.url,
    )
    try:
        pid = remu.cohort.client_key_patient_id
        streams = get_patient_stream_metadata(pid, category="vitals", measurement="heart_rate")
        assert len(streams) == 1
        assert len(streams.get_stream_dataframe(limit=10)) == 10
        with pytest.raises((APIError, Exception)):
            get_current_user()
    finally:
        _init(remu.url)


def test_set_active_org_last(remu):
    other = remu.cohort.orgs[1]
    org = set_active_org(other.id.removeprefix("org-"))
    assert org.name == other.name
    assert {p.id for p in get_all_patients()} == set(remu.cohort.org_patients[other.id])
    set_active_org(remu.cohort.orgs[0].id)
    assert get_current_user().active_org_name == "Rune Demo"
