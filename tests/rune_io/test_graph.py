"""GraphQL metadata against the emulator: typed records equal its ground truth.

The emulator keeps its own records (``rune_emulator.models``); :func:`as_served` maps
them to ``rune_io.api.models`` with the ids in the forms the wire serves, which the client
keeps as they are (as the vendor SDK ``runeq`` does): an org is ``org-<x>,org`` while a
project's ``organizationId`` is the short ``org-<x>`` (public evidence).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

import rune_emulator.models as emu_models
import rune_io.api.graph as graph_mod
import rune_io.api.models as io_models
from rune_emulator import ChaosConfig
from rune_io.api.client import RuneClient
from rune_io.api.models import Event, Patient, StreamMeta
from rune_io.errors import NotFound

from .conftest import emu_settings


def as_served(record):
    """An emulator record (or a list/tuple of them) as the client must read it off the wire."""
    if isinstance(record, list | tuple):
        return type(record)(as_served(r) for r in record)
    if not dataclasses.is_dataclass(record):
        return record
    assert type(record) is getattr(emu_models, type(record).__name__)
    target = getattr(io_models, type(record).__name__)
    values = {f.name: as_served(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if target is io_models.Org:
        assert values["id"].startswith("org-") and "," not in values["id"]
        values["id"] += ",org"  # GraphQL org ids: "org-<x>,org"
    return target(**values)


def test_as_served_maps_every_field():
    """The mapping above drops nothing: both packages' records have the same fields."""
    names = ("Dimension", "StreamType", "StreamMeta", "Device", "Patient", "Org", "Cohort")
    for name in (*names, "Project", "Event"):
        emu_fields = {f.name for f in dataclasses.fields(getattr(emu_models, name))}
        assert emu_fields == {f.name for f in dataclasses.fields(getattr(io_models, name))}


def test_current_user_and_orgs(emu, rc):
    user = rc.graph.current_user()
    orgs = rc.graph.orgs()
    assert orgs == as_served(list(emu.cohort.orgs))
    assert all(o.id.endswith(",org") for o in orgs)
    assert user.active_org_id == as_served(emu.cohort.org(emu.cohort.active_org_id)).id
    assert user.active_org_id in {o.id for o in orgs} and user.display_name


def test_set_active_org(emu, rc):
    first, second = rc.graph.orgs()[:2]  # ids as served
    try:
        assert rc.graph.set_active_org(second.id) == second == as_served(emu.cohort.orgs[1])
        assert rc.graph.current_user().active_org_id == second.id
        assert [p.title for p in rc.graph.projects()] == ["DBS Outcomes"]
    finally:
        rc.graph.set_active_org(first.id)
    assert rc.graph.current_user().active_org_id == first.id


def test_projects_cohorts_and_members(emu, rc):
    projects = rc.graph.projects()  # the active org's
    active = emu.cohort.org(rc.graph.current_user().active_org_id)  # "org-<x>,org"
    want = as_served([p for p in emu.cohort.projects if p.org_id == active.id])
    assert projects == want and want
    assert all(p.org_id == active.id for p in projects)  # organizationId: short "org-<x>"
    for p in projects:
        assert rc.graph.project(p.id) == p
        members = rc.graph.project_patients(p.id)
        assert members and all(isinstance(m, Patient) for m in members)
        assert {m.id for m in members} <= {x.id for x in emu.cohort.patients}
        for c in p.cohorts:
            cohort_members = rc.graph.cohort_patients(c.id)
            assert {m.id for m in cohort_members} <= {m.id for m in members}


def test_patients_with_all_devices(emu, rc):
    # device_page_size=2 and 3 devices a patient: nested device paging is exercised
    assert rc.graph.patients() == as_served(list(emu.cohort.patients))
    p = emu.cohort.patients[1]
    assert rc.graph.patient(p.id) == as_served(p)
    assert rc.graph.patient("patient-" + p.id) == as_served(p)
    assert len(p.devices) > 2


def test_unknown_ids_are_not_found(rc):
    with pytest.raises(NotFound):
        rc.graph.patient("f" * 32)
    with pytest.raises(NotFound):
        rc.graph.streams_by_ids(["0" * 64])


def test_stream_types(emu, rc):
    types = rc.graph.stream_types()
    assert as_served(list(emu.cohort.stream_types)) == types


def test_stream_list_follows_cursors(emu, rc):
    # graph_page_size=8 < stream count: several pages
    got = rc.graph.streams()
    assert len(emu.cohort.streams) > 8
    want = as_served(sorted(emu.cohort.streams, key=lambda s: s.id))
    assert sorted(got, key=lambda s: s.id) == want
    assert all(isinstance(s, StreamMeta) for s in got)


def test_stream_filters(emu, rc):
    truth = list(emu.cohort.streams)
    s0 = truth[0]
    cases = [
        (dict(patient_id=s0.patient_id), lambda s: s.patient_id == s0.patient_id),
        (
            dict(patient_id=s0.patient_id, device_id=s0.device_id),
            lambda s: s.patient_id == s0.patient_id and s.device_id == s0.device_id,
        ),
        (dict(stream_type_id="rate-per-min"), lambda s: s.stream_type.id == "rate-per-min"),
        (dict(algorithm=s0.algorithm), lambda s: s.algorithm == s0.algorithm),
        (dict(parameters={"category": "neural"}), lambda s: s.category == "neural"),
        (
            dict(parameters={"category": s0.category, "measurement": s0.measurement}),
            lambda s: (s.category, s.measurement) == (s0.category, s0.measurement),
        ),
    ]
    for kwargs, keep in cases:
        want = as_served(sorted((s for s in truth if keep(s)), key=lambda s: s.id))
        assert want, kwargs
        assert sorted(rc.graph.streams(**kwargs), key=lambda s: s.id) == want, kwargs
    with pytest.raises(ValueError, match="needs patient_id"):
        rc.graph.streams(device_id=s0.device_id)


def test_streams_by_ids_in_chunks(emu, rc, monkeypatch):
    ids = [s.id for s in emu.cohort.streams]
    monkeypatch.setattr(graph_mod, "MAX_IDS_PER_CALL", 4)
    emu.stats.reset()
    got = rc.graph.streams_by_ids(list(reversed(ids)))
    assert [s.id for s in got] == list(reversed(ids))
    assert emu.stats.count(path_prefix="/graphql") == -(-len(ids) // 4)


def test_events_split_into_90_day_windows(emu, rc):
    pid = emu.cohort.patients[0].id
    truth = emu.cohort.events(pid)
    assert truth
    start = min(e.start_time for e in truth) - timedelta(days=200)
    end = max(e.start_time for e in truth) + timedelta(seconds=1)
    emu.stats.reset()
    got = rc.graph.events(pid, start, end)
    assert all(isinstance(e, Event) for e in got)
    key = lambda e: (e.start_time, e.id)  # noqa: E731
    assert sorted(got, key=key) == as_served(sorted(truth, key=key))
    assert emu.stats.count(path_prefix="/graphql") >= 3  # >= 3 windows of <= 90 days


def test_metadata_survives_chaos(emu, fake_sleep):
    emu.set_chaos(ChaosConfig.uniform(0.3, seed=3, delay_s=0.01))
    try:
        with RuneClient(emu_settings(emu, max_attempts=12), sleep=fake_sleep) as c:
            assert c.graph.patients() == as_served(list(emu.cohort.patients))
            assert len(c.graph.streams()) == len(emu.cohort.streams)
    finally:
        emu.set_chaos(None)
