"""The public SDK (runeq 0.18.1), unmodified, against the emulator over HTTP."""

from __future__ import annotations

import pandas as pd
import pytest

runeq = pytest.importorskip("runeq")

from runeq import initialize  # noqa: E402
from runeq.resources.event import get_patient_events  # noqa: E402
from runeq.resources.org import get_orgs, set_active_org  # noqa: E402
from runeq.resources.patient import get_all_patients, get_patient  # noqa: E402
from runeq.resources.project import get_project, get_project_patients, get_projects  # noqa: E402
from runeq.resources.stream_metadata import (  # noqa: E402
    get_all_stream_types,
    get_patient_stream_metadata,
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

from .conftest import busy_day, stream_of  # noqa: E402


@pytest.fixture(scope="module")
def remu():
    """Own emulator: set_active_org mutates server state."""
    with running_emulator(EmulatorConfig(seed=5, patients=3, days=3, page_size=30_000)) as e:
        initialize(
            access_token_id=DEMO_ACCESS_TOKEN_ID,
            access_token_secret=DEMO_ACCESS_TOKEN_SECRET,
            stream_url=e.url,
            graph_url=e.url,
        )
        yield e


def test_user_and_orgs(remu):
    user = get_current_user()
    assert user.id == remu.cohort.user_id
    assert user.active_org_id == remu.cohort.active_org_id  # User does not normalize
    orgs = get_orgs()
    assert {"org-" + o.id for o in orgs} == {o.id for o in remu.cohort.orgs}


def test_all_patients_with_device_paging(remu):
    patients = get_all_patients()
    assert {p.id for p in patients} == {p.id for p in remu.cohort.patients}
    for p in patients:
        truth = remu.cohort.patient(p.id)
        assert {d.id for d in p.devices} == {d.id for d in truth.devices}
    one = get_patient(remu.cohort.patients[1].id)
    assert len(one.devices) == 3


def test_projects(remu):
    projects = get_projects()
    assert len(projects) == 1
    proj = get_project(remu.cohort.projects[0].id)
    assert proj.title == remu.cohort.projects[0].title and len(proj.cohorts) == 2
    pps = get_project_patients(remu.cohort.projects[0].id)
    assert {p.id for p in pps} == {p.id for p in remu.cohort.patients}


def test_stream_metadata_and_filter(remu):
    pid = remu.cohort.patients[0].id
    streams = get_patient_stream_metadata(pid)
    assert len(streams) == 9
    watch = next(d.id for d in remu.cohort.patients[0].devices if "#" in d.id)
    assert len(streams.filter(device_id=watch)) == 6
    assert len(streams.filter(category="neural", measurement="lfp_trend_log_power")) == 2
    assert len(streams.filter(category="symptom", stream_type_id="duration")) == 2
    assert len(get_patient_stream_metadata(pid, category="kinematics", axis="z")) == 1
    assert len(get_all_stream_types()) == 5
    one = get_stream_metadata(list(streams.filter(category="vitals").ids())[0])
    assert one.stream_type.id == "heart_rate"


def test_stream_dataframe_over_several_pages(remu):
    spec = stream_of(remu, "accel", 1, axis="x")
    a = busy_day(remu, spec)
    sm = get_stream_metadata(spec.id)
    before = remu.stats.count(f"/v2/streams/{spec.id}")
    df = sm.get_stream_dataframe(start_time=a, end_time=a + 4 * 3600 + 36 * 3600 // 3)
    pages = remu.stats.count(f"/v2/streams/{spec.id}") - before
    exp = remu.expected_table(spec.id, a, a + 4 * 3600 + 36 * 3600 // 3).to_pandas()
    assert pages >= 2 and len(df) == len(exp) > 0
    assert (df["acceleration"].to_numpy() == exp["acceleration"].to_numpy()).all()
    assert pd.to_datetime(df["time"]).iloc[0] == exp["time"].iloc[0]
    assert set(df["axis"]) == {"x"} and set(df["patient_id"]) == {spec.meta.patient_id}


def test_set_stream_dataframe_and_batch_availability(remu):
    pid = remu.cohort.patients[2].id
    streams = get_patient_stream_metadata(pid)
    lfp_and_tremor = streams.filter(category="neural")
    lfp_and_tremor.update(streams.filter(category="symptom", measurement="tremor"))
    start = remu.cohort.data_start.timestamp()
    end = remu.config.now.timestamp()
    df = lfp_and_tremor.get_stream_dataframe(start_time=start, end_time=end)
    expected = sum(remu.expected_table(s, start, end).num_rows for s in lfp_and_tremor.ids())
    assert len(df) == expected
    avail = lfp_and_tremor.get_batch_availability_dataframe(
        start_time=start, end_time=end, resolution=3600, batch_operation="any"
    )
    assert list(avail.columns) == ["time", "availability"] and len(avail) == 72
    assert avail["availability"].sum() > 0


def test_events(remu):
    pid = remu.cohort.patients[0].id
    start = remu.cohort.data_start.timestamp()
    events = get_patient_events(pid, start, remu.config.now.timestamp())
    assert len(events) == len(remu.cohort.events(pid)) > 0
    df = events.to_dataframe()
    assert set(df["category"]) >= {"medication"}


def test_set_active_org_last(remu):
    other = remu.cohort.orgs[1]
    org = set_active_org(other.id.removeprefix("org-"))
    assert org.name == other.name
    assert {p.id for p in get_all_patients()} == set(remu.cohort.org_patients[other.id])
    set_active_org(remu.cohort.orgs[0].id)


def test_client_key_auth(remu):
    from runeq.resources.client import initialize as init2

    init2(
        client_key_id=DEMO_CLIENT_KEY_ID,
        client_access_key=DEMO_CLIENT_ACCESS_KEY,
        stream_url=remu.url,
        graph_url=remu.url,
    )
    try:
        pid = remu.cohort.client_key_patient_id
        streams = get_patient_stream_metadata(pid, category="vitals")
        assert len(streams) == 1
        df = streams.get_stream_dataframe(limit=10)
        assert len(df) == 10
    finally:
        initialize(
            access_token_id=DEMO_ACCESS_TOKEN_ID,
            access_token_secret=DEMO_ACCESS_TOKEN_SECRET,
            stream_url=remu.url,
            graph_url=remu.url,
        )
